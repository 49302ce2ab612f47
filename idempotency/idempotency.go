package idempotency

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// Codes of the errors this package returns. They are API.
const (
	CodeKeyReused      = "idempotency_key_reused"
	CodeInProgress     = "idempotency_in_progress"
	CodeOutcomeUnknown = "idempotency_outcome_unknown"
	CodeUnavailable    = "idempotency_unavailable"
)

// Defaults for RedisOptions.
const (
	DefaultTTL          = 24 * time.Hour
	DefaultLease        = 2 * time.Minute
	DefaultWait         = 5 * time.Second
	DefaultPollInterval = 50 * time.Millisecond
	DefaultTimeout      = 2 * time.Second
)

// Error is every error this package returns. Code and Message are API;
// Err is the cause, for errors.Is and errors.As.
type Error struct {
	Code    string
	Message string
	Err     error
	op      string // what failed, for Error: "claim", "complete", …
}

// Error returns the code, the message and the class of the cause, never
// the cause's text: a Redis or key-backend error may quote bytes of a
// stored answer or of a request, and this text reaches logs.
func (e *Error) Error() string {
	s := "idempotency: " + e.Code + ": " + e.Message
	if e.Err != nil {
		s += " (" + e.op + ": " + causeClass(e.Err) + ")"
	}
	return s
}
func (e *Error) Unwrap() error         { return e.Err }
func (e *Error) ErrorCode() string     { return e.Code }
func (e *Error) PublicMessage() string { return e.Message }

// causeClass names what kind of failure err is, from a fixed list.
func causeClass(err error) string {
	var (
		rerr redis.Error
		nerr net.Error
	)
	switch {
	case errors.Is(err, ErrSealBroken):
		return "stored answer does not open"
	case errors.Is(err, errKeyBackend):
		return "key backend unavailable"
	case errors.Is(err, errLost):
		return "claim lost"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &rerr):
		return "redis error reply"
	case errors.As(err, &nerr):
		return "network error"
	}
	return "store error"
}

func unavailable(op string, err error) *Error {
	return &Error{Code: CodeUnavailable, Message: "the idempotency store is unavailable; nothing was sent", Err: err, op: op}
}

// outcomeUnknownMessage is the public message of CodeOutcomeUnknown.
const outcomeUnknownMessage = "the request with this Idempotency-Key may have reached the processor and its answer was lost; reconcile with the processor before sending again under a new key"

// errLost is the cause when a holder finds its claim gone.
var errLost = errors.New("claim lost")

// RedisOptions configures a RedisStore.
type RedisOptions struct {
	Client redis.UniversalClient // required
	// Keys wraps the data keys that stored answers are sealed under;
	// required: nothing a processor sent is stored in the clear.
	Keys KeyWrapper
	// DataKeyLifetime is how long one data key seals new answers; 0 means
	// DefaultDataKeyLifetime.
	DataKeyLifetime time.Duration
	// Prefix starts every key, e.g. "cardgate:idempotency:".
	Prefix string
	// TTL is how long a key and its answer are kept after the first use;
	// 0 means DefaultTTL.
	TTL time.Duration
	// Lease is how long a holder may stay in one stage before the key is
	// treated as abandoned; 0 means DefaultLease. It must exceed the
	// longest forward.
	Lease time.Duration
	// Wait is how long a concurrent duplicate waits for the holder's
	// answer before idempotency_in_progress; 0 means DefaultWait.
	Wait time.Duration
	// PollInterval is how often a waiting duplicate looks again; 0 means
	// DefaultPollInterval.
	PollInterval time.Duration
	// Timeout bounds one Redis call; 0 means DefaultTimeout.
	Timeout time.Duration
}

// RedisStore implements the forwarder's IdempotencyStore on Redis.
type RedisStore struct {
	c                          redis.UniversalClient
	prefix                     string
	ttl, lease, wait, poll, to time.Duration
	seal                       *sealer
}

// NewRedisStore returns a store.
func NewRedisStore(o RedisOptions) (*RedisStore, error) {
	if o.Client == nil {
		return nil, errors.New("idempotency: no client")
	}
	if o.Keys == nil {
		return nil, errors.New("idempotency: no key wrapper: stored answers must be sealed")
	}
	for _, d := range []time.Duration{o.TTL, o.Lease, o.Wait, o.PollInterval, o.Timeout, o.DataKeyLifetime} {
		if d < 0 {
			return nil, errors.New("idempotency: negative duration")
		}
	}
	def := func(v, d time.Duration) time.Duration {
		if v == 0 {
			return d
		}
		return v
	}
	s := &RedisStore{c: o.Client, prefix: o.Prefix,
		ttl: def(o.TTL, DefaultTTL), lease: def(o.Lease, DefaultLease), wait: def(o.Wait, DefaultWait),
		poll: def(o.PollInterval, DefaultPollInterval), to: def(o.Timeout, DefaultTimeout),
		seal: newSealer(o.Keys, def(o.DataKeyLifetime, DefaultDataKeyLifetime), time.Now)}
	if s.lease >= s.ttl {
		return nil, errors.New("idempotency: lease must be shorter than ttl")
	}
	return s, nil
}

// key is the Redis key of (scope, key): a digest, so neither the caller's
// identity nor its key appears in Redis, and any key fits.
func (s *RedisStore) key(scope, key string) string {
	sum := sha256.Sum256([]byte(scope + "\x00" + key))
	return s.prefix + hex.EncodeToString(sum[:])
}

// claimScript: KEYS[1] the record; ARGV 1 fingerprint, 2 owner, 3 lease
// ms, 4 ttl ms. Returns {"claimed"}, {"done", answer}, {"reused"},
// {"busy"} or {"unknown"}.
var claimScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local r = redis.call('HMGET', KEYS[1], 'state', 'fp', 'stage', 'lease', 'answer')
if not r[1] then
  redis.call('HSET', KEYS[1], 'state', 'pending', 'fp', ARGV[1], 'owner', ARGV[2], 'stage', 'claimed', 'lease', string.format('%.0f', now + tonumber(ARGV[3])))
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return {'claimed'}
end
if r[2] ~= ARGV[1] then return {'reused'} end
if r[1] == 'done' then return {'done', r[5]} end
if tonumber(r[4]) > now then return {'busy'} end
if r[3] == 'claimed' then
  redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'lease', string.format('%.0f', now + tonumber(ARGV[3])))
  return {'claimed'}
end
return {'unknown'}
`)

// Claim takes the key for owner, or returns the stored answer, opened, or
// an *Error. While another holder's request is pending it waits up to Wait
// (or until ctx ends). A stored answer that does not open (altered, moved
// from another caller or key, or sealed under a data key that can no
// longer be unwrapped) is idempotency_outcome_unknown with ErrSealBroken:
// the request may have been sent, and is never sent again.
func (s *RedisStore) Claim(ctx context.Context, scope, key, fingerprint, owner string) ([]byte, error) {
	rk := s.key(scope, key)
	deadline := time.Now().Add(s.wait)
	for {
		cctx, cancel := context.WithTimeout(ctx, s.to)
		res, err := claimScript.Run(cctx, s.c, []string{rk}, fingerprint, owner, s.lease.Milliseconds(), s.ttl.Milliseconds()).StringSlice()
		cancel()
		if err != nil || len(res) == 0 {
			return nil, unavailable("claim", err)
		}
		switch res[0] {
		case "claimed":
			return nil, nil
		case "done":
			if len(res) < 2 || res[1] == "" {
				return nil, unavailable("claim", errors.New("done without an answer"))
			}
			answer, err := s.seal.open(ctx, scope, key, []byte(res[1]))
			switch {
			case errors.Is(err, ErrSealBroken):
				return nil, &Error{Code: CodeOutcomeUnknown, Message: outcomeUnknownMessage, Err: err, op: "open answer"}
			case err != nil:
				return nil, unavailable("open answer", err)
			}
			return answer, nil
		case "reused":
			return nil, &Error{Code: CodeKeyReused, Message: "this Idempotency-Key was used for a different request; use a new key for a new request"}
		case "unknown":
			return nil, &Error{Code: CodeOutcomeUnknown, Message: outcomeUnknownMessage}
		case "busy":
		default:
			return nil, unavailable("claim", fmt.Errorf("unexpected answer %q", res[0]))
		}
		if time.Now().Add(s.poll).After(deadline) {
			return nil, &Error{Code: CodeInProgress, Message: "a request with this Idempotency-Key is still in progress; retry with the same key later"}
		}
		t := time.NewTimer(s.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, &Error{Code: CodeInProgress, Message: "a request with this Idempotency-Key is still in progress; retry with the same key later", Err: ctx.Err(), op: "claim"}
		case <-t.C:
		}
	}
}

// markScript: KEYS[1]; ARGV 1 owner, 2 lease ms. Returns 1, or 0 when
// owner no longer holds a pending claim.
var markScript = redis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'state', 'owner')
if r[1] ~= 'pending' or r[2] ~= ARGV[1] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'stage', 'sending', 'lease', string.format('%.0f', now + tonumber(ARGV[2])))
return 1
`)

// MarkSending moves owner's claim to the "sending" stage. After it
// returns nil, the key can never be claimed again.
func (s *RedisStore) MarkSending(ctx context.Context, scope, key, owner string) error {
	ctx, cancel := context.WithTimeout(ctx, s.to)
	defer cancel()
	n, err := markScript.Run(ctx, s.c, []string{s.key(scope, key)}, owner, s.lease.Milliseconds()).Int()
	if err != nil {
		return unavailable("mark sending", err)
	}
	if n != 1 {
		// Our lease ran out before the send and another request took the
		// key: it sends, we must not.
		return &Error{Code: CodeInProgress, Message: "a request with this Idempotency-Key is still in progress; retry with the same key later", Err: errLost, op: "mark sending"}
	}
	return nil
}

// completeScript: KEYS[1]; ARGV 1 owner, 2 answer, 3 ttl ms.
var completeScript = redis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'state', 'owner')
if r[1] ~= 'pending' or r[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'done', 'answer', ARGV[2])
redis.call('HDEL', KEYS[1], 'lease', 'stage')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

// Complete seals owner's answer for (scope, key) and stores it for TTL
// from now. When sealing fails nothing is stored, and the key answers
// idempotency_outcome_unknown once its lease runs out.
func (s *RedisStore) Complete(ctx context.Context, scope, key, owner string, answer []byte) error {
	sealed, err := s.seal.seal(ctx, scope, key, answer)
	if err != nil {
		return unavailable("seal answer", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.to)
	defer cancel()
	n, err := completeScript.Run(ctx, s.c, []string{s.key(scope, key)}, owner, sealed, s.ttl.Milliseconds()).Int()
	if err != nil {
		return unavailable("complete", err)
	}
	if n != 1 {
		return unavailable("complete", errLost)
	}
	return nil
}

// releaseScript: KEYS[1]; ARGV 1 owner.
var releaseScript = redis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'state', 'owner')
if r[1] ~= 'pending' or r[2] ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`)

// Release deletes owner's claim: nothing was sent, so the key is free.
// Releasing a claim that is no longer owner's does nothing.
func (s *RedisStore) Release(ctx context.Context, scope, key, owner string) error {
	ctx, cancel := context.WithTimeout(ctx, s.to)
	defer cancel()
	if err := releaseScript.Run(ctx, s.c, []string{s.key(scope, key)}, owner).Err(); err != nil {
		return unavailable("release", err)
	}
	return nil
}
