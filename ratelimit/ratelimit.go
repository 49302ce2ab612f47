package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Codes of the errors Allow returns. They are API: the HTTP layer maps
// them to 429 and 503.
const (
	CodeRateLimited = "rate_limited"
	CodeUnavailable = "rate_limit_unavailable"
)

// Scopes name the budget that refused a request, in Error.Scope.
const (
	ScopeCaller            = "caller"
	ScopeCallerDestination = "caller_destination"
)

// Limit is one budget. The zero value is no limit.
type Limit struct {
	// Rate requests are admitted per Per, on average.
	Rate int
	Per  time.Duration
	// Burst is how many requests may arrive at once (at least 1 when Rate
	// is set).
	Burst int
}

// Unlimited reports whether l admits everything.
func (l Limit) Unlimited() bool { return l.Rate == 0 }

// Validate reports what is wrong with l, or nil.
func (l Limit) Validate() error {
	switch {
	case l.Rate < 0:
		return errors.New("ratelimit: rate must not be negative")
	case l.Rate == 0:
		return nil
	case l.Per <= 0:
		return errors.New("ratelimit: per must be a positive duration")
	case l.Burst < 1:
		return errors.New("ratelimit: burst must be at least 1")
	case l.interval() <= 0:
		return errors.New("ratelimit: rate is too high for per")
	}
	return nil
}

// interval is the GCRA emission interval T: the time one request costs.
func (l Limit) interval() time.Duration { return l.Per / time.Duration(l.Rate) }

// tolerance is τ = (Burst-1)·T: how far ahead of now the theoretical
// arrival time may run, so that Burst requests fit in one instant.
func (l Limit) tolerance() time.Duration { return time.Duration(l.Burst-1) * l.interval() }

// Limits are the two budgets every forward is checked against.
type Limits struct {
	PerCaller            Limit
	PerCallerDestination Limit
}

// Unlimited reports whether both budgets admit everything.
func (l Limits) Unlimited() bool {
	return l.PerCaller.Unlimited() && l.PerCallerDestination.Unlimited()
}

// Error is what Allow returns when it refuses.
type Error struct {
	Code    string
	Message string
	// Retry is how long until the request would be admitted (rate_limited
	// only).
	Retry time.Duration
	// Scope is the budget whose wait is Retry (rate_limited only): when
	// both are spent, the one that frees up last.
	Scope string
	Err   error
}

func (e *Error) Error() string {
	s := "ratelimit: " + e.Code + ": " + e.Message
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}
func (e *Error) Unwrap() error             { return e.Err }
func (e *Error) ErrorCode() string         { return e.Code }
func (e *Error) PublicMessage() string     { return e.Message }
func (e *Error) RetryAfter() time.Duration { return e.Retry }
func (e *Error) RateLimitScope() string    { return e.Scope }
func limited(retry time.Duration, scope string) *Error {
	return &Error{Code: CodeRateLimited, Message: "over the request budget; retry after the time in Retry-After", Retry: retry, Scope: scope}
}

// digest names a caller or destination in a key: fixed length, no
// characters Redis or a hash tag would read specially.
func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:12])
}

// DefaultTimeout bounds one Redis call when RedisOptions.Timeout is zero.
const DefaultTimeout = time.Second

// RedisOptions configures a Redis limiter.
type RedisOptions struct {
	Client redis.UniversalClient // required
	// Prefix starts every key, e.g. "cardgate:ratelimit:". It must not
	// contain { or }: the limiter adds its own hash tag.
	Prefix  string
	Limits  Limits
	Timeout time.Duration // per call; 0 means DefaultTimeout
}

// Redis keeps budgets in Redis, shared by every replica.
type Redis struct {
	c       redis.UniversalClient
	prefix  string
	limits  Limits
	timeout time.Duration
}

// NewRedis returns a Redis limiter.
func NewRedis(o RedisOptions) (*Redis, error) {
	if o.Client == nil {
		return nil, errors.New("ratelimit: redis: no client")
	}
	if err := o.Limits.PerCaller.Validate(); err != nil {
		return nil, fmt.Errorf("ratelimit: per caller: %w", err)
	}
	if err := o.Limits.PerCallerDestination.Validate(); err != nil {
		return nil, fmt.Errorf("ratelimit: per caller and destination: %w", err)
	}
	if o.Timeout < 0 {
		return nil, errors.New("ratelimit: redis: negative timeout")
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	return &Redis{c: o.Client, prefix: o.Prefix, limits: o.Limits, timeout: o.Timeout}, nil
}

// gcraScript applies GCRA to every key in KEYS at the server's clock. For
// key i, ARGV[2i-1] is its emission interval and ARGV[2i] its tolerance,
// in microseconds. Either every key admits the request and every key's
// theoretical arrival time (TAT) moves on and the script returns {0, 0},
// or none moves and it returns the longest wait, in microseconds, and the
// 1-based index of the key that imposes it. Values fit a Lua double
// exactly (unix microseconds are below 2^53).
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local wait = 0
local which = 0
local tats = {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  if tat - now > tolerance then
    local w = tat - tolerance - now
    if w > wait then wait = w; which = i end
  end
  tats[i] = tat + interval
end
if wait > 0 then return {wait, which} end
for i = 1, #KEYS do
  local ttl = math.ceil((tats[i] - now) / 1000) + 1
  redis.call('SET', KEYS[i], string.format('%.0f', tats[i]), 'PX', ttl)
end
return {0, 0}
`)

// Allow admits one request by caller to destination, or returns an
// *Error: rate_limited with the wait, or rate_limit_unavailable.
func (r *Redis) Allow(ctx context.Context, caller, destination string) error {
	if r.limits.Unlimited() {
		return nil
	}
	// One hash tag per caller: both keys of a request live in one slot.
	tag := r.prefix + "{" + digest(caller) + "}"
	var keys, scopes []string
	var args []any
	add := func(key, scope string, l Limit) {
		if l.Unlimited() {
			return
		}
		keys = append(keys, key)
		scopes = append(scopes, scope)
		args = append(args, l.interval().Microseconds(), l.tolerance().Microseconds())
	}
	add(tag+":caller", ScopeCaller, r.limits.PerCaller)
	add(tag+":dest:"+digest(destination), ScopeCallerDestination, r.limits.PerCallerDestination)

	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	res, err := gcraScript.Run(ctx, r.c, keys, args...).Int64Slice()
	if err == nil && (len(res) != 2 || res[1] < 0 || res[1] > int64(len(scopes)) || (res[0] > 0) != (res[1] > 0)) {
		err = fmt.Errorf("script answered %v", res)
	}
	if err != nil {
		return &Error{Code: CodeUnavailable, Message: "the rate limit store is unavailable; nothing was sent", Err: fmt.Errorf("ratelimit: redis: %w", err)}
	}
	if wait := res[0]; wait > 0 {
		return limited(time.Duration(wait)*time.Microsecond, scopes[res[1]-1])
	}
	return nil
}

// Memory keeps budgets in this process, for a single node.
type Memory struct {
	limits Limits
	now    func() time.Time

	mu   sync.Mutex
	tats map[string]time.Time
}

// maxMemoryKeys bounds the map; expired entries are swept when it fills.
const maxMemoryKeys = 100_000

// NewMemory returns an in-process limiter. now is the clock; nil means
// time.Now.
func NewMemory(l Limits, now func() time.Time) (*Memory, error) {
	if err := l.PerCaller.Validate(); err != nil {
		return nil, fmt.Errorf("ratelimit: per caller: %w", err)
	}
	if err := l.PerCallerDestination.Validate(); err != nil {
		return nil, fmt.Errorf("ratelimit: per caller and destination: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &Memory{limits: l, now: now, tats: map[string]time.Time{}}, nil
}

// Allow is Redis.Allow on this process's memory. It never fails for lack
// of a store; it refuses (rate_limit_unavailable) only when the key table
// is full of live budgets.
func (m *Memory) Allow(_ context.Context, caller, destination string) error {
	if m.limits.Unlimited() {
		return nil
	}
	type check struct {
		key, scope string
		l          Limit
	}
	var checks []check
	if !m.limits.PerCaller.Unlimited() {
		checks = append(checks, check{"c\x00" + caller, ScopeCaller, m.limits.PerCaller})
	}
	if !m.limits.PerCallerDestination.Unlimited() {
		checks = append(checks, check{"d\x00" + caller + "\x00" + destination, ScopeCallerDestination, m.limits.PerCallerDestination})
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	var wait time.Duration
	var scope string
	next := make([]time.Time, len(checks))
	for i, c := range checks {
		tat := m.tats[c.key]
		if tat.Before(now) {
			tat = now
		}
		if d := tat.Sub(now) - c.l.tolerance(); d > wait {
			wait, scope = d, c.scope
		}
		next[i] = tat.Add(c.l.interval())
	}
	if wait > 0 {
		return limited(wait, scope)
	}
	if len(m.tats)+len(checks) > maxMemoryKeys {
		for k, tat := range m.tats {
			if tat.Before(now) {
				delete(m.tats, k)
			}
		}
		if len(m.tats)+len(checks) > maxMemoryKeys {
			return &Error{Code: CodeUnavailable, Message: "too many live budgets; nothing was sent"}
		}
	}
	for i, c := range checks {
		m.tats[c.key] = next[i]
	}
	return nil
}
