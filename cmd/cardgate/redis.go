package main

import (
	"crypto/tls"
	"fmt"

	"github.com/redis/go-redis/v9"

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
