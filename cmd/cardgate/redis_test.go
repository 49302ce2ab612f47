package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cardgate/cardgate/config"
	"github.com/cardgate/cardgate/internal/redistest"
	"github.com/cardgate/cardgate/internal/testpki"
)

func redisConfig(mode string, addrs ...string) config.Redis {
	return config.Redis{
		Mode: mode, Addrs: addrs, MasterName: "m",
		DialTimeout: config.DefaultRedisDialTimeout, Timeout: config.DefaultRedisTimeout,
	}
}

func TestNewRedisClientModes(t *testing.T) {
	tests := []struct {
		mode string
		want func(redis.UniversalClient) bool
	}{
		{config.RedisSingle, func(c redis.UniversalClient) bool { _, ok := c.(*redis.Client); return ok }},
		// Two seed addresses: the mode, not the count, picks the client.
		{config.RedisCluster, func(c redis.UniversalClient) bool { _, ok := c.(*redis.ClusterClient); return ok }},
		{config.RedisSentinel, func(c redis.UniversalClient) bool { _, ok := c.(*redis.Client); return ok }},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			c, err := newRedisClient(redisConfig(tt.mode, "127.0.0.1:1", "127.0.0.1:2"))
			if err != nil {
				t.Fatalf("newRedisClient(%s) = %v", tt.mode, err)
			}
			defer c.Close()
			if !tt.want(c) {
				t.Errorf("newRedisClient(%s) = %T, want the %s client", tt.mode, c, tt.mode)
			}
		})
	}
	if _, err := newRedisClient(redisConfig("replicated", "127.0.0.1:1")); err == nil || !strings.Contains(err.Error(), "store.redis.mode") {
		t.Errorf("newRedisClient(unknown mode) = %v, want an error naming store.redis.mode", err)
	}
}

// TestNewRedisClientTLS talks to a real redis-server over TLS with a client
// certificate, and checks that verification is on: a wrong name or wrong
// roots fail.
func TestNewRedisClientTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := testpki.NewCA("redis test CA")
	if err != nil {
		t.Fatal(err)
	}
	other, err := testpki.NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	srvCert, err := ca.Issue(testpki.Leaf{DNSNames: []string{"redis.cardgate.test"}})
	if err != nil {
		t.Fatal(err)
	}
	cliCert, err := ca.Issue(testpki.Leaf{Client: true})
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile, otherCA := write("ca.pem", ca.PEM()), write("other.pem", other.PEM())
	cert, key := write("client.crt", cliCert.CertPEM), write("client.key", cliCert.KeyPEM)
	srv := redistest.StartWith(t, redistest.Options{TLS: &redistest.TLS{
		CertFile: write("server.crt", srvCert.CertPEM), KeyFile: write("server.key", srvCert.KeyPEM), CAFile: caFile,
	}})

	good := config.RedisTLS{CAFile: caFile, CertFile: cert, KeyFile: key, ServerName: "redis.cardgate.test"}
	tests := []struct {
		name   string
		tls    config.RedisTLS
		wantOK bool
	}{
		{"verified with a client certificate", good, true},
		{"wrong server name", config.RedisTLS{CAFile: caFile, CertFile: cert, KeyFile: key}, false},
		{"other roots", config.RedisTLS{CAFile: otherCA, CertFile: cert, KeyFile: key, ServerName: good.ServerName}, false},
		{"no client certificate", config.RedisTLS{CAFile: caFile, ServerName: good.ServerName}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := redisConfig(config.RedisSingle, srv.TLSAddr())
			cfg.TLS = tt.tls
			c, err := newRedisClient(cfg)
			if err != nil {
				t.Fatalf("newRedisClient = %v", err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = c.Ping(ctx).Err()
			if tt.wantOK && err != nil {
				t.Errorf("PING over TLS = %v, want PONG", err)
			}
			if !tt.wantOK && err == nil {
				t.Errorf("PING over TLS succeeded, want it refused")
			}
		})
	}

	for _, tt := range []struct {
		name, wantKey string
		tls           config.RedisTLS
	}{
		{"missing ca file", "store.redis.tls.ca_file", config.RedisTLS{CAFile: filepath.Join(dir, "none.pem")}},
		{"ca file without a certificate", "store.redis.tls.ca_file", config.RedisTLS{CAFile: key}},
		{"key that does not match", "store.redis.tls", config.RedisTLS{CertFile: cert, KeyFile: write("other.key", srvCert.KeyPEM)}},
	} {
		cfg := redisConfig(config.RedisSingle, srv.TLSAddr())
		cfg.TLS = tt.tls
		if _, err := newRedisClient(cfg); err == nil || !strings.HasPrefix(err.Error(), tt.wantKey+":") {
			t.Errorf("newRedisClient(%s) = %v, want an error naming %s", tt.name, err, tt.wantKey)
		}
	}
}

// TestRedisLog: go-redis's messages become JSON log lines at WARN, masked
// for card numbers and bounded in size.
func TestRedisLog(t *testing.T) {
	var buf bytes.Buffer
	l := redisLog{log: slog.New(slog.NewJSONHandler(&buf, nil))}
	l.Printf(context.Background(), "redis: %s:%d: connection pool: failed to dial: %v\n", "127.0.0.1", 6379, errors.New("connect: connection refused"))
	l.Printf(context.Background(), "sentinel: odd reply %q", "4242424242424242")
	l.Printf(context.Background(), "%s", strings.Repeat("x", 5000))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d log lines, want 3:\n%s", len(lines), &buf)
	}
	var got []map[string]any
	for _, raw := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", raw, err)
		}
		got = append(got, m)
	}
	if got[0]["level"] != "WARN" || got[0]["msg"] != "redis client" || got[0]["detail"] != "redis: 127.0.0.1:6379: connection pool: failed to dial: connect: connection refused" {
		t.Errorf("first line = %v, want a WARN \"redis client\" line with the message, trimmed", got[0])
	}
	if d, _ := got[1]["detail"].(string); strings.Contains(d, "4242424242424242") || !strings.Contains(d, "4242") {
		t.Errorf("second line's detail = %q, want the card number masked", d)
	}
	if d, _ := got[2]["detail"].(string); len(d) > maxRedisLogBytes+len("…") {
		t.Errorf("third line's detail is %d bytes, want at most %d", len(d), maxRedisLogBytes+len("…"))
	}
}
