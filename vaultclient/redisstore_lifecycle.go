package vaultclient

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The Redis side of LifecycleStore. A third key per token holds the
// last-use marker, under the same hash tag as the other two:
//
//	<prefix>{<token>}:used   Unix milliseconds of the last use, as decimal
//	<prefix>{<token>}:tomb   "1": the tombstone (TombstoneStore), no TTL
//
// Retention is Redis's own key expiry: with a retention set, the record
// and the marker carry it as their TTL, and every use (Put, Touch,
// Replace, PutCVC) restarts it. Redis then deletes an unused record on its
// own; no sweep runs. A CVC keeps its own, shorter TTL.
type redisLife struct {
	retention time.Duration // 0: records do not expire
	meta      *redis.Script
	replace   *redis.Script
	putCVC    *redis.Script
	touch     *redis.Script
	del       *redis.Script
	putNew    *redis.Script
}

func newRedisLife() redisLife {
	return redisLife{
		meta:    redis.NewScript(metaScript),
		replace: redis.NewScript(replaceScript),
		putCVC:  redis.NewScript(putCVCScript),
		touch:   redis.NewScript(touchScript),
		del:     redis.NewScript(deleteScript),
		putNew:  redis.NewScript(putNewScript),
	}
}

// retentionArg is the retention in milliseconds as the scripts take it, or
// "" for none.
func (l *redisLife) retentionArg() string {
	if l.retention <= 0 {
		return ""
	}
	return strconv.FormatInt(l.retention.Milliseconds(), 10)
}

// SetRetention makes every record written or used from now on expire d
// after its last use (0: never). Call it before the store is shared; it is
// not safe to call concurrently with other methods. Records already held
// take the retention at their next use.
func (s *RedisStore) SetRetention(d time.Duration) {
	if d < 0 {
		d = 0
	}
	s.life.retention = d
}

func (s *RedisStore) usedKey(token string) string { return s.prefix + "{" + token + "}:used" }

func (s *RedisStore) tombKey(token string) string { return s.prefix + "{" + token + "}:tomb" }

func (s *RedisStore) keys3(token string) []string {
	return []string{s.cardKey(token), s.cvcKey(token), s.usedKey(token)}
}

// markUsedLua marks a use: KEYS[1] record, KEYS[3] marker; ARGV[1] now in
// ms, ARGV[2] retention in ms or "". Without a retention the record is
// made persistent, so turning retention off takes effect at the next use.
const markUsedLua = `
if ARGV[2] ~= '' then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
else
  redis.call('PERSIST', KEYS[1])
  redis.call('SET', KEYS[3], ARGV[1])
end
`

// metaScript returns {record, CVC held (0 or 1), marker or false}, or
// false when there is no record.
const metaScript = `#!lua
local rec = redis.call('GET', KEYS[1])
if not rec then
  return false
end
return {rec, redis.call('EXISTS', KEYS[2]), redis.call('GET', KEYS[3])}
`

// touchScript marks a use. Returns 0, writing nothing, when there is no
// record.
const touchScript = `#!lua
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end` + markUsedLua + `return 1
`

// replaceScript replaces the record (keeping its TTL, then restarting it
// as a use) if it still holds ARGV[3]. ARGV[4] is the new record. Returns
// -1 when there is no record, 0 when it changed, 1 when replaced.
const replaceScript = `#!lua
local cur = redis.call('GET', KEYS[1])
if not cur then
  return -1
end
if cur ~= ARGV[3] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[4], 'KEEPTTL')` + markUsedLua + `return 1
`

// putCVCScript stores ARGV[3] as the CVC for ARGV[4] ms, replacing any,
// if there is a record. Returns 0 when there is none, else 1.
const putCVCScript = `#!lua
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])` + markUsedLua + `return 1
`

// deleteScript removes the three keys. Returns 0 when there was no record
// (a CVC or marker left without one is removed all the same). It leaves a
// tombstone in place.
const deleteScript = `#!lua
local n = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2], KEYS[3])
return n
`

// putNewScript is putScript for PutNew: KEYS[3] is the tombstone. It is
// written before the record, so that a write cut short leaves a token
// that refuses a new card, never a record without its tombstone. Returns
// 1 if written, 0 if the record exists, -1 if the token is tombstoned.
const putNewScript = `#!lua
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  return -1
end
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
end
redis.call('SET', KEYS[3], '1')
if ARGV[4] ~= '' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1
`

// Meta implements LifecycleStore, in one script.
func (s *RedisStore) Meta(ctx context.Context, token string) (StoreMeta, error) {
	vals, err := s.life.meta.Run(ctx, s.c, s.keys3(token)).Slice()
	if errors.Is(err, redis.Nil) {
		return StoreMeta{}, fmt.Errorf("vaultclient: redis meta %s: %w", token, ErrNotFound)
	}
	if err != nil {
		return StoreMeta{}, fmt.Errorf("vaultclient: redis meta %s: %w", token, err)
	}
	if len(vals) < 2 {
		return StoreMeta{}, fmt.Errorf("vaultclient: redis meta %s: script returned %d values", token, len(vals))
	}
	rec, ok := vals[0].(string)
	if !ok {
		return StoreMeta{}, fmt.Errorf("vaultclient: redis meta %s: %w", token, ErrNotFound)
	}
	m := StoreMeta{Record: []byte(rec)}
	if n, ok := vals[1].(int64); ok && n == 1 {
		m.CVCHeld = true
	}
	if len(vals) > 2 {
		if u, ok := vals[2].(string); ok {
			m.LastUsed = parseMillis(u)
		}
	}
	return m, nil
}

// parseMillis reads a marker; one that does not parse reads as no marker.
func parseMillis(s string) time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

func millis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// Replace implements LifecycleStore, in one script.
func (s *RedisStore) Replace(ctx context.Context, token string, old, new []byte, now time.Time) error {
	n, err := s.life.replace.Run(ctx, s.c, s.keys3(token), millis(now), s.life.retentionArg(), old, new).Int()
	switch {
	case err != nil:
		return fmt.Errorf("vaultclient: redis replace %s: %w", token, err)
	case n < 0:
		return fmt.Errorf("vaultclient: redis replace %s: %w", token, ErrNotFound)
	case n == 0:
		return fmt.Errorf("vaultclient: redis replace %s: %w", token, ErrConflict)
	}
	return nil
}

// PutCVC implements LifecycleStore, in one script.
func (s *RedisStore) PutCVC(ctx context.Context, token string, cvc []byte, ttl time.Duration, now time.Time) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("vaultclient: redis put cvc %s: cvc ttl %v is below 1ms", token, ttl)
	}
	n, err := s.life.putCVC.Run(ctx, s.c, s.keys3(token), millis(now), s.life.retentionArg(), cvc, ttl.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("vaultclient: redis put cvc %s: %w", token, err)
	}
	if n == 0 {
		return fmt.Errorf("vaultclient: redis put cvc %s: %w", token, ErrNotFound)
	}
	return nil
}

// Touch implements LifecycleStore, in one script.
func (s *RedisStore) Touch(ctx context.Context, token string, now time.Time) error {
	n, err := s.life.touch.Run(ctx, s.c, s.keys3(token), millis(now), s.life.retentionArg()).Int()
	if err != nil {
		return fmt.Errorf("vaultclient: redis touch %s: %w", token, err)
	}
	if n == 0 {
		return fmt.Errorf("vaultclient: redis touch %s: %w", token, ErrNotFound)
	}
	return nil
}

// Delete implements LifecycleStore, in one script.
func (s *RedisStore) Delete(ctx context.Context, token string) error {
	n, err := s.life.del.Run(ctx, s.c, s.keys3(token)).Int()
	if err != nil {
		return fmt.Errorf("vaultclient: redis delete %s: %w", token, err)
	}
	if n == 0 {
		return fmt.Errorf("vaultclient: redis delete %s: %w", token, ErrNotFound)
	}
	return nil
}

// PutNew implements TombstoneStore, in one script.
func (s *RedisStore) PutNew(ctx context.Context, token string, e Entry, cvcTTL time.Duration) error {
	if len(e.Record) == 0 {
		return fmt.Errorf("vaultclient: redis put new %s: empty record", token)
	}
	ttl := ""
	if e.CVC != nil {
		if cvcTTL < time.Millisecond {
			return fmt.Errorf("vaultclient: redis put new %s: cvc ttl %v is below 1ms", token, cvcTTL)
		}
		ttl = strconv.FormatInt(cvcTTL.Milliseconds(), 10)
	}
	keys := []string{s.cardKey(token), s.cvcKey(token), s.tombKey(token)}
	n, err := s.life.putNew.Run(ctx, s.c, keys, e.Record, e.CVC, ttl, s.life.retentionArg()).Int()
	switch {
	case err != nil:
		return fmt.Errorf("vaultclient: redis put new %s: %w", token, err)
	case n == 0:
		return fmt.Errorf("vaultclient: redis put new %s: %w", token, ErrExists)
	case n < 0:
		return fmt.Errorf("vaultclient: redis put new %s: %w", token, ErrDeleted)
	}
	return nil
}

// lastUsesBatch is how many tokens LastUses reads per round trip.
const lastUsesBatch = 500

// LastUses implements LifecycleStore with Scan and one MGET of markers per
// batch; a record without a marker costs one more GET, for its creation
// time. A token SCAN returns twice is counted twice (SCAN's guarantee);
// counts are a report, not an invariant.
func (s *RedisStore) LastUses(ctx context.Context, fn func(time.Time)) error {
	cursor := ""
	for {
		tokens, next, err := s.Scan(ctx, cursor, lastUsesBatch)
		if err != nil {
			return err
		}
		if len(tokens) > 0 {
			keys := make([]string, len(tokens))
			for i, t := range tokens {
				keys[i] = s.usedKey(t)
			}
			vals, err := s.c.MGet(ctx, keys...).Result()
			if err != nil {
				return fmt.Errorf("vaultclient: redis last uses: %w", err)
			}
			for i, t := range tokens {
				if u, ok := vals[i].(string); ok {
					if ts := parseMillis(u); !ts.IsZero() {
						fn(ts)
						continue
					}
				}
				rec, err := s.c.Get(ctx, s.cardKey(t)).Bytes()
				if errors.Is(err, redis.Nil) {
					continue // expired or deleted since the scan
				}
				if err != nil {
					return fmt.Errorf("vaultclient: redis last uses: %w", err)
				}
				fn(createdAt(rec))
			}
		}
		if next == "" {
			return nil
		}
		cursor = next
	}
}
