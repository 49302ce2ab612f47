package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidateRedis(t *testing.T) {
	base := func() Config {
		c, err := Parse(mustRead(t, "testdata/dev.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		c.Store.Backend = StoreRedis
		c.Store.Redis.Addrs = []string{"127.0.0.1:6379"}
		return c
	}
	if c := base(); c.Store.Redis.Mode != RedisSingle || c.Store.Redis.Timeout != DefaultRedisTimeout || c.Store.Redis.DialTimeout != DefaultRedisDialTimeout {
		t.Errorf("store.redis defaults = mode %q timeout %v dial_timeout %v, want %q %v %v",
			c.Store.Redis.Mode, c.Store.Redis.Timeout, c.Store.Redis.DialTimeout, RedisSingle, DefaultRedisTimeout, DefaultRedisDialTimeout)
	}
	three := []string{"10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"}
	tests := []struct {
		name    string
		mutate  func(*Redis)
		wantKey string // "" means valid
	}{
		{"single", func(r *Redis) {}, ""},
		{"sentinel", func(r *Redis) { r.Mode, r.Addrs, r.MasterName = RedisSentinel, three, "cards" }, ""},
		{"sentinel with its own password", func(r *Redis) {
			r.Mode, r.Addrs, r.MasterName, r.SentinelPassword = RedisSentinel, three, "cards", "s"
		}, ""},
		{"cluster", func(r *Redis) { r.Mode, r.Addrs = RedisCluster, three }, ""},
		{"tls with system roots", func(r *Redis) { r.TLS.Enabled = true }, ""},
		{"tls with a client certificate", func(r *Redis) { r.TLS = RedisTLS{CAFile: "ca", CertFile: "c", KeyFile: "k", ServerName: "redis"} }, ""},
		{"unknown mode", func(r *Redis) { r.Mode = "replicated" }, "store.redis.mode"},
		{"single with two addresses", func(r *Redis) { r.Addrs = three[:2] }, "store.redis.addrs"},
		{"sentinel without master_name", func(r *Redis) { r.Mode, r.Addrs = RedisSentinel, three }, "store.redis.master_name"},
		{"master_name outside sentinel", func(r *Redis) { r.MasterName = "cards" }, "store.redis.master_name"},
		{"sentinel password outside sentinel", func(r *Redis) { r.SentinelPassword = "s" }, "store.redis.sentinel_password"},
		{"cluster with a db", func(r *Redis) { r.Mode, r.Addrs, r.DB = RedisCluster, three, 2 }, "store.redis.db"},
		{"negative db", func(r *Redis) { r.DB = -1 }, "store.redis.db"},
		{"no addrs", func(r *Redis) { r.Addrs = nil }, "store.redis.addrs"},
		{"bad addr", func(r *Redis) { r.Mode, r.Addrs = RedisCluster, []string{"10.0.0.1:6379", "redis"} }, "store.redis.addrs[1]"},
		{"hash tag in the prefix", func(r *Redis) { r.Prefix = "{cg}:" }, "store.redis.prefix"},
		{"zero timeout", func(r *Redis) { r.Timeout = 0 }, "store.redis.timeout"},
		{"negative dial timeout", func(r *Redis) { r.DialTimeout = -time.Second }, "store.redis.dial_timeout"},
		{"client cert without key", func(r *Redis) { r.TLS.CertFile = "c" }, "store.redis.tls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mutate(&c.Store.Redis)
			err := c.Validate()
			if tt.wantKey == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate() = %v, want a *FieldError for %s", err, tt.wantKey)
			}
			if !strings.Contains(err.Error(), "config: "+tt.wantKey+":") {
				t.Errorf("Validate() = %v, want it to name %s", err, tt.wantKey)
			}
		})
	}
}

func TestParseRedisTopology(t *testing.T) {
	c, err := Parse([]byte(`store:
  redis:
    mode: sentinel
    addrs: [10.0.0.1:26379, 10.0.0.2:26379, 10.0.0.3:26379]
    master_name: cards
    timeout: 500ms
    tls:
      ca_file: /etc/cardgate/redis-ca.pem
      server_name: redis.internal
`))
	if err != nil {
		t.Fatalf("Parse = %v", err)
	}
	r := c.Store.Redis
	if r.Mode != RedisSentinel || r.MasterName != "cards" || len(r.Addrs) != 3 || r.Timeout != 500*time.Millisecond ||
		r.DialTimeout != DefaultRedisDialTimeout || !r.TLS.On() || r.TLS.ServerName != "redis.internal" || r.Prefix != DefaultRedisPrefix {
		t.Errorf("Parse store.redis = %+v, want the sentinel settings over the defaults", r)
	}
}

func TestRedisSentinelPasswordFromEnv(t *testing.T) {
	c := Default()
	c.applyEnv(func(k string) string {
		if k == EnvRedisSentinelPassword {
			return "s3cret"
		}
		return ""
	})
	if c.Store.Redis.SentinelPassword != "s3cret" {
		t.Errorf("store.redis.sentinel_password = %q, want it from %s", c.Store.Redis.SentinelPassword, EnvRedisSentinelPassword)
	}
}
