package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/cardgate/cardgate/cardscan"
	"github.com/cardgate/cardgate/config"
)

// newRedisClient builds the one Redis client the card store, the allowlist
// state and the audit stream share, for the topology cfg.Mode names. The
// constructor is chosen from the mode, not guessed from the number of
// addresses as redis.NewUniversalClient does, so that a primary listed
// next to its replica never silently becomes a cluster client.
//
// Context deadlines are honoured (ContextTimeoutEnabled): every store call
// already carries the request's deadline, and a forward must not wait for
// Redis longer than that.
func newRedisClient(cfg config.Redis) (redis.UniversalClient, error) {
	tlsConf, err := redisTLS(cfg.TLS)
	if err != nil {
		return nil, err
	}
	o := &redis.UniversalOptions{
		Addrs:                 cfg.Addrs,
		Username:              cfg.Username,
		Password:              cfg.Password,
		DB:                    cfg.DB,
		DialTimeout:           cfg.DialTimeout,
		ReadTimeout:           cfg.Timeout,
		WriteTimeout:          cfg.Timeout,
		ContextTimeoutEnabled: true,
		TLSConfig:             tlsConf,
	}
	switch cfg.Mode {
	case config.RedisSingle:
		return redis.NewClient(o.Simple()), nil
	case config.RedisSentinel:
		o.MasterName = cfg.MasterName
		o.SentinelUsername = cfg.SentinelUsername
		o.SentinelPassword = cfg.SentinelPassword
		return redis.NewFailoverClient(o.Failover()), nil
	case config.RedisCluster:
		return redis.NewClusterClient(o.Cluster()), nil
	}
	// Validate refuses any other mode; this guards a caller that skipped it.
	return nil, fmt.Errorf("store.redis.mode: %q is not a mode", cfg.Mode)
}

// redisTLS returns the TLS configuration for Redis, or nil when TLS is off.
// There is no way to skip verification.
func redisTLS(c config.RedisTLS) (*tls.Config, error) {
	if !c.On() {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	var err error
	if tc.RootCAs, err = certPool("store.redis.tls.ca_file", c.CAFile); err != nil {
		return nil, err
	}
	if c.CertFile != "" || c.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("store.redis.tls: client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// redisLog routes go-redis's internal log (reconnects, pool and Sentinel
// events) into the gateway's JSON log, instead of the plain "redis: …"
// lines go-redis prints to stderr by default, which break a log that is
// read as one JSON object per line.
//
// go-redis keeps this logger in a process-wide variable (redis.SetLogger),
// not per client. So it is set once, by main's wiring (runServe), before
// the first client is built, and by nothing else: a library package that
// set it would redirect every other client in the process, and tests that
// build several gateways in one process would race on it.
type redisLog struct{ log *slog.Logger }

// maxRedisLogBytes bounds one go-redis message in the log.
const maxRedisLogBytes = 1024

// Printf implements go-redis's internal logging interface. The text names
// Redis addresses and network or server errors; it is masked for card
// numbers all the same, like everything else that reaches the log.
func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	// Masked before it is cut, so that a cut cannot leave part of a
	// number the masker would no longer recognise.
	msg := string(cardscan.Redact(nil, []byte(strings.TrimSpace(fmt.Sprintf(format, v...)))))
	if len(msg) > maxRedisLogBytes {
		msg = strings.ToValidUTF8(msg[:maxRedisLogBytes], "") + "…"
	}
	l.log.LogAttrs(ctx, slog.LevelWarn, "redis client", slog.String("detail", msg))
}
