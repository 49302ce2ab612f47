package config

import (
	"strings"
	"time"
)

// Defaults of the forward path's reliability sections.
const (
	DefaultAuditTimeout           = 2 * time.Second
	DefaultIdempotencyTTL         = 24 * time.Hour
	DefaultIdempotencyLease       = 2 * time.Minute
	DefaultIdempotencyWait        = 5 * time.Second
	DefaultKillSwitchPollInterval = 250 * time.Millisecond
	DefaultKillSwitchMaxStaleness = time.Second
	DefaultRetryMaxAttempts       = 3
	DefaultRetryBackoff           = 100 * time.Millisecond
	DefaultRetryMaxBackoff        = time.Second
	// MaxRetryAttempts bounds egress.retry.max_attempts.
	MaxRetryAttempts = 10
)

// Audit selects where the hash-chained audit log goes. At least one sink is
// required outside dev mode. With both, the file is the primary and the
// stream a mirror kept equal to it: an intent must reach both or the
// forward is refused, and intents are refused while the stream lacks any
// record the file holds (see package audit, "Two sinks").
type Audit struct {
	// File is a JSON-lines file, fsynced per record.
	File string `yaml:"file"`
	// RedisStream is the key of a Redis stream on the store's Redis (the
	// redis store only). Run that Redis with appendonly yes.
	RedisStream string `yaml:"redis_stream"`
	// Timeout bounds one append.
	Timeout time.Duration `yaml:"timeout"`
	// Checkpoint signs the file's Merkle tree (config/checkpoint.go).
	Checkpoint Checkpoint `yaml:"checkpoint"`
}

// Limits are the forward budgets, kept in Redis with the redis store and
// in memory with bolt. A zero rate means no limit.
type Limits struct {
	PerCaller            Limit `yaml:"per_caller"`
	PerCallerDestination Limit `yaml:"per_caller_destination"`
}

// Limit admits Rate requests per Per on average, and Burst at once.
type Limit struct {
	Rate  int           `yaml:"rate"`
	Per   time.Duration `yaml:"per"`
	Burst int           `yaml:"burst"`
}

// Idempotency configures Idempotency-Key handling (the redis store only;
// with bolt, a request carrying the header is refused).
type Idempotency struct {
	// TTL is how long a key and its stored answer are kept.
	TTL time.Duration `yaml:"ttl"`
	// Lease is how long a request may hold a key in one stage before the
	// key counts as abandoned. It must exceed the longest forward.
	Lease time.Duration `yaml:"lease"`
	// Wait is how long a concurrent duplicate waits for the first
	// request's answer before idempotency_in_progress.
	Wait time.Duration `yaml:"wait"`
}

// KillSwitch configures the operators' kill switch.
type KillSwitch struct {
	// File holds the state without the redis store (required then,
	// outside dev mode); with the redis store the state is in Redis.
	File string `yaml:"file"`
	// PollInterval is how often each replica reads the state.
	PollInterval time.Duration `yaml:"poll_interval"`
	// MaxStaleness is how old the last good read may be before every
	// forward is refused.
	MaxStaleness time.Duration `yaml:"max_staleness"`
}

// Retry bounds the gateway's own retries, which happen only when nothing
// was sent (no connection could be made).
type Retry struct {
	MaxAttempts int           `yaml:"max_attempts"`
	Backoff     time.Duration `yaml:"backoff"`
	MaxBackoff  time.Duration `yaml:"max_backoff"`
}

func defaultRetry() Retry {
	return Retry{MaxAttempts: DefaultRetryMaxAttempts, Backoff: DefaultRetryBackoff, MaxBackoff: DefaultRetryMaxBackoff}
}

// setForwardingDefaults fills the sections this file owns.
func (c *Config) setForwardingDefaults() {
	c.Audit = Audit{Timeout: DefaultAuditTimeout, Checkpoint: defaultCheckpoint()}
	c.Idempotency = Idempotency{TTL: DefaultIdempotencyTTL, Lease: DefaultIdempotencyLease, Wait: DefaultIdempotencyWait}
	c.KillSwitch = KillSwitch{PollInterval: DefaultKillSwitchPollInterval, MaxStaleness: DefaultKillSwitchMaxStaleness}
	c.Egress.Retry = defaultRetry()
}

// validateForwarding checks audit, limits, idempotency, killswitch and
// egress.retry.
func (c *Config) validateForwarding(bad func(key, format string, args ...any)) {
	dev := c.Mode == ModeDev
	redisStore := c.Store.Backend == StoreRedis

	a := c.Audit
	if a.File == "" && !dev {
		// The stream alone is not durable: Redis acknowledges an XADD from
		// memory, so a crash or failover can lose the intent record of a
		// card that was sent. The fsynced file is the durable copy.
		bad("audit.file", "required outside dev mode: a JSON-lines file, fsynced per record group, that holds every forward's intent record before the card is sent; audit.redis_stream may be added as the shared, queryable copy")
	}
	if a.RedisStream != "" && !redisStore {
		bad("audit.redis_stream", "needs store.backend: redis (the stream lives on the store's Redis); use audit.file with the bolt store")
	}
	if a.Timeout <= 0 {
		bad("audit.timeout", "must be a positive duration such as \"2s\" (default %v)", DefaultAuditTimeout)
	}
	c.validateCheckpoint(bad)

	for key, l := range map[string]Limit{"limits.per_caller": c.Limits.PerCaller, "limits.per_caller_destination": c.Limits.PerCallerDestination} {
		switch {
		case l.Rate < 0:
			bad(key+".rate", "must not be negative: 0 means no limit")
		case l.Rate == 0:
		case l.Per <= 0:
			bad(key+".per", "must be a positive duration such as \"1s\" when rate is set")
		case l.Burst < 1:
			bad(key+".burst", "must be at least 1 when rate is set: the number of requests admitted at once")
		case l.Per/time.Duration(l.Rate) <= 0:
			bad(key+".rate", "%d per %v is more than one a nanosecond: lower the rate or lengthen per", l.Rate, l.Per)
		}
	}

	i := c.Idempotency
	if i.TTL < time.Minute {
		bad("idempotency.ttl", "must be at least 1m (default %v): callers retry with the same key for that long", DefaultIdempotencyTTL)
	}
	if longest := c.Egress.Timeout * time.Duration(max(1, c.Egress.Retry.MaxAttempts)); i.Lease <= longest {
		bad("idempotency.lease", "must be longer than egress.timeout × egress.retry.max_attempts (%v), or a slow forward's key would count as abandoned (default %v)", longest, DefaultIdempotencyLease)
	}
	if i.Lease >= i.TTL {
		bad("idempotency.lease", "must be shorter than idempotency.ttl")
	}
	if i.Wait < 0 {
		bad("idempotency.wait", "must not be negative: 0 answers a concurrent duplicate at once with idempotency_in_progress")
	}

	k := c.KillSwitch
	if !redisStore && k.File == "" && !dev {
		bad("killswitch.file", "required without the redis store: the JSON file `cardgate destinations` writes and every forward consults")
	}
	if redisStore && k.File != "" {
		bad("killswitch.file", "not used with the redis store (the state lives in Redis, shared by every replica): remove it")
	}
	if k.MaxStaleness <= 0 || k.MaxStaleness > 10*time.Second {
		bad("killswitch.max_staleness", "must be from 1ms to 10s (default %v): forwards are refused when the kill switch state is older than this", DefaultKillSwitchMaxStaleness)
	}
	if k.PollInterval <= 0 || 2*k.PollInterval > k.MaxStaleness {
		bad("killswitch.poll_interval", "must be positive and at most half of killswitch.max_staleness (default %v)", DefaultKillSwitchPollInterval)
	}

	r := c.Egress.Retry
	if r.MaxAttempts < 1 || r.MaxAttempts > MaxRetryAttempts {
		bad("egress.retry.max_attempts", "must be 1 (no retries) to %d (default %d)", MaxRetryAttempts, DefaultRetryMaxAttempts)
	}
	if r.Backoff <= 0 {
		bad("egress.retry.backoff", "must be a positive duration such as \"100ms\"")
	}
	if r.MaxBackoff < r.Backoff {
		bad("egress.retry.max_backoff", "must be at least egress.retry.backoff")
	}
	if strings.ContainsAny(a.RedisStream, " \t\n{}") {
		bad("audit.redis_stream", "must be a Redis key without whitespace or braces (cardgate adds its own hash tag)")
	}
}
