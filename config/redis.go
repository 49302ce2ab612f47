package config

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// Redis topologies (store.redis.mode).
const (
	// RedisSingle is one Redis server (or one address that fronts a
	// managed primary).
	RedisSingle = "single"
	// RedisSentinel is a primary with replicas watched by Redis Sentinel:
	// addrs are the Sentinels and master_name the monitored primary. The
	// client follows a failover on its own.
	RedisSentinel = "sentinel"
	// RedisCluster is a Redis Cluster: addrs are seed nodes, the rest of
	// the cluster is discovered.
	RedisCluster = "cluster"
)

// Redis defaults.
const (
	DefaultRedisMode = RedisSingle
	// DefaultRedisDialTimeout bounds one connection attempt.
	DefaultRedisDialTimeout = 2 * time.Second
	// DefaultRedisTimeout bounds reading or writing one command. A forward
	// waits at most a few of these for the store before it fails closed
	// with store_unavailable, so keep it short.
	DefaultRedisTimeout = 2 * time.Second
)

// EnvRedisSentinelPassword overrides store.redis.sentinel_password, the
// Sentinels' own password.
const EnvRedisSentinelPassword = "CARDGATE_REDIS_SENTINEL_PASSWORD"

func defaultRedis() Redis {
	return Redis{
		Mode:        DefaultRedisMode,
		Prefix:      DefaultRedisPrefix,
		DialTimeout: DefaultRedisDialTimeout,
		Timeout:     DefaultRedisTimeout,
	}
}

// Redis configures the go-redis client shared by the card store, the
// allowlist state and the audit stream.
type Redis struct {
	// Mode is "single" (the default; exactly one address), "sentinel" or
	// "cluster".
	Mode string `yaml:"mode"`
	// Addrs is the server (single), the Sentinels (sentinel; list at
	// least three in production) or seed nodes (cluster).
	Addrs []string `yaml:"addrs"`
	// MasterName is the primary's name in the Sentinels' configuration;
	// required in sentinel mode, refused otherwise.
	MasterName string `yaml:"master_name"`
	Username   string `yaml:"username"`
	// Password is better set through CARDGATE_REDIS_PASSWORD.
	Password string `yaml:"password" secret:"true"`
	// SentinelUsername and SentinelPassword authenticate to the Sentinels
	// themselves when they require it (sentinel mode only). The password
	// is better set through CARDGATE_REDIS_SENTINEL_PASSWORD.
	SentinelUsername string `yaml:"sentinel_username"`
	SentinelPassword string `yaml:"sentinel_password" secret:"true"`
	// DB is the database number; a Redis Cluster has only database 0.
	DB     int    `yaml:"db"`
	Prefix string `yaml:"prefix"`
	// DialTimeout bounds one connection attempt; Timeout bounds reading
	// or writing one command.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	Timeout     time.Duration `yaml:"timeout"`
	TLS         RedisTLS      `yaml:"tls"`
}

// RedisTLS turns on TLS to Redis (and, in sentinel mode, to the
// Sentinels). Certificate verification is never optional.
type RedisTLS struct {
	// Enabled turns TLS on with the system roots; setting any other field
	// turns it on too.
	Enabled bool `yaml:"enabled"`
	// CAFile replaces the system roots with this PEM bundle.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate, for a Redis that
	// requires one (tls-auth-clients yes).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name checked in the server's certificate, when it
	// is not the host in addrs (for example when addrs are IP addresses).
	ServerName string `yaml:"server_name"`
}

// On reports whether TLS to Redis is on.
func (t RedisTLS) On() bool {
	return t.Enabled || t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != ""
}

// validate checks the store.redis section; bad records each problem.
func (r *Redis) validate(bad func(key, format string, args ...any)) {
	switch r.Mode {
	case RedisSingle:
		if len(r.Addrs) > 1 {
			bad("store.redis.addrs", "single mode takes one address, not %d: for a primary with replicas use mode: %s with the Sentinels' addresses; for a Redis Cluster use mode: %s", len(r.Addrs), RedisSentinel, RedisCluster)
		}
	case RedisSentinel:
		if r.MasterName == "" {
			bad("store.redis.master_name", "required in sentinel mode: the name the Sentinels monitor the primary under (their `sentinel monitor NAME …` line)")
		}
	case RedisCluster:
		if r.DB != 0 {
			bad("store.redis.db", "must be 0 in cluster mode: a Redis Cluster has only database 0; separate deployments with store.redis.prefix")
		}
	default:
		bad("store.redis.mode", "%q is not a mode: use %q, %q or %q", r.Mode, RedisSingle, RedisSentinel, RedisCluster)
	}
	if len(r.Addrs) == 0 {
		bad("store.redis.addrs", "required for the redis store: list host:port addresses, or set %s", EnvRedisAddrs)
	}
	for i, a := range r.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			// Not echoed: a mistyped address can be a whole redis:// URL
			// with its password.
			bad(fmt.Sprintf("store.redis.addrs[%d]", i), "is not host:port (write 10.0.0.5:6379, without a scheme or credentials)")
		}
	}
	if r.Mode != RedisSentinel {
		if r.MasterName != "" {
			bad("store.redis.master_name", "only used in sentinel mode: remove it, or set store.redis.mode: %s", RedisSentinel)
		}
		if r.SentinelUsername != "" || r.SentinelPassword != "" {
			bad("store.redis.sentinel_password", "only used in sentinel mode: remove sentinel_username and sentinel_password (and %s)", EnvRedisSentinelPassword)
		}
	}
	if r.DB < 0 {
		bad("store.redis.db", "%d is not a database number: use 0 or more", r.DB)
	}
	if strings.ContainsAny(r.Prefix, "{}") {
		bad("store.redis.prefix", "%q must not contain { or }: cardgate adds its own hash tags so a card's keys share one Cluster slot", r.Prefix)
	}
	if r.DialTimeout <= 0 {
		bad("store.redis.dial_timeout", "must be a positive duration such as \"2s\" (default %v)", DefaultRedisDialTimeout)
	}
	if r.Timeout <= 0 {
		bad("store.redis.timeout", "must be a positive duration such as \"2s\" (default %v)", DefaultRedisTimeout)
	}
	if (r.TLS.CertFile == "") != (r.TLS.KeyFile == "") {
		bad("store.redis.tls", "cert_file and key_file go together: set both for a client certificate, or neither")
	}
}
