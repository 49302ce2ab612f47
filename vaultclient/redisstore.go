package vaultclient

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore is a Store in Redis (standalone, Sentinel or Cluster, through
// go-redis's UniversalClient). Each token has two keys:
//
//	<prefix>{<token>}:card   the card record, no TTL
//	<prefix>{<token>}:cvc    the sealed CVC, with a TTL (SET … PX)
//
// The braces are a Cluster hash tag: both keys land in the same slot, so
// the scripts and MGET may touch both. GetRecord reads the card key alone.
type RedisStore struct {
	c      redis.UniversalClient
	prefix string
	put    *redis.Script
	swap   *redis.Script
	take   *redis.Script
	life   redisLife   // lifecycle scripts and retention (redisstore_lifecycle.go)
	gets   *getBatcher // GetRecord's reads, pipelined across concurrent callers (redisbatch.go)
}

// putScript writes the CVC, then the record, unless the record exists.
//
// Atomicity: Redis runs a script without interleaving other commands, and
// the "#!lua" shebang (Redis 7+) makes Redis refuse the whole script up
// front when it is out of memory, rather than fail half-way through; OOM is
// the only way a SET with valid arguments can fail. The CVC goes first so
// that if anything still failed between the two writes, what is left is a
// CVC without a record, which its TTL removes, never a record that claims
// a CVC it lacks.
//
// KEYS[1] record key, KEYS[2] CVC key; ARGV[1] record, ARGV[2] CVC or "",
// ARGV[3] CVC TTL in milliseconds, ARGV[4] the record's retention in
// milliseconds or "" for none. Returns 1 if written, 0 if the record
// exists.
const putScript = `#!lua
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
end
if ARGV[4] ~= '' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1
`

// NewRedisStore returns a Store that uses c, with every key under prefix
// (for example "cardgate:"). The prefix must not contain '{' or '}', which
// would change the Cluster hash tag. c is not closed by the store.
func NewRedisStore(c redis.UniversalClient, prefix string) *RedisStore {
	return &RedisStore{c: c, prefix: prefix, put: redis.NewScript(putScript), swap: redis.NewScript(swapScript), take: redis.NewScript(takeScript), life: newRedisLife(), gets: &getBatcher{c: c}}
}

func (s *RedisStore) cardKey(token string) string { return s.prefix + "{" + token + "}:card" }
func (s *RedisStore) cvcKey(token string) string  { return s.prefix + "{" + token + "}:cvc" }

// Put implements Store.
func (s *RedisStore) Put(ctx context.Context, token string, e Entry, cvcTTL time.Duration) error {
	if len(e.Record) == 0 {
		return fmt.Errorf("vaultclient: redis put %s: empty record", token)
	}
	ttl := ""
	if e.CVC != nil {
		if cvcTTL < time.Millisecond {
			return fmt.Errorf("vaultclient: redis put %s: cvc ttl %v is below 1ms", token, cvcTTL)
		}
		ttl = strconv.FormatInt(cvcTTL.Milliseconds(), 10)
	}
	n, err := s.put.Run(ctx, s.c, []string{s.cardKey(token), s.cvcKey(token)}, e.Record, e.CVC, ttl, s.life.retentionArg()).Int()
	if err != nil {
		return fmt.Errorf("vaultclient: redis put %s: %w", token, err)
	}
	if n == 0 {
		return fmt.Errorf("vaultclient: redis put %s: %w", token, ErrExists)
	}
	return nil
}

// GetRecord implements Store, with one GET of the record key: the CVC key
// is not read. Concurrent calls' GETs share a pipeline (redisbatch.go).
func (s *RedisStore) GetRecord(ctx context.Context, token string) ([]byte, error) {
	rec, err := s.gets.get(ctx, s.cardKey(token))
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("vaultclient: redis get record %s: %w", token, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("vaultclient: redis get record %s: %w", token, err)
	}
	return rec, nil
}

// Get implements Store, with one MGET.
func (s *RedisStore) Get(ctx context.Context, token string) (Entry, error) {
	vals, err := s.c.MGet(ctx, s.cardKey(token), s.cvcKey(token)).Result()
	if err != nil {
		return Entry{}, fmt.Errorf("vaultclient: redis get %s: %w", token, err)
	}
	if len(vals) != 2 {
		return Entry{}, fmt.Errorf("vaultclient: redis get %s: MGET returned %d values", token, len(vals))
	}
	rec, ok := vals[0].(string)
	if !ok {
		return Entry{}, fmt.Errorf("vaultclient: redis get %s: %w", token, ErrNotFound)
	}
	e := Entry{Record: []byte(rec)}
	if cvc, ok := vals[1].(string); ok {
		e.CVC = []byte(cvc)
	}
	return e, nil
}

// takeScript reads the record and the CVC and deletes the CVC, as one
// command: Redis runs a script without interleaving, so two forwards that
// race for the same CVC cannot both read it. Both keys share the {token}
// hash tag, so the script may touch both on a Cluster.
//
// KEYS[1] record key, KEYS[2] CVC key. Returns nil when there is no record
// (and deletes nothing), else {record, CVC or nil}.
const takeScript = `#!lua
local rec = redis.call('GET', KEYS[1])
if not rec then
  return false
end
local cvc = redis.call('GET', KEYS[2])
if cvc then
  redis.call('DEL', KEYS[2])
end
return {rec, cvc}
`

// GetAndDeleteCVC implements Store, in one script.
func (s *RedisStore) GetAndDeleteCVC(ctx context.Context, token string) (Entry, error) {
	vals, err := s.take.Run(ctx, s.c, []string{s.cardKey(token), s.cvcKey(token)}).Slice()
	if errors.Is(err, redis.Nil) {
		return Entry{}, fmt.Errorf("vaultclient: redis take cvc %s: %w", token, ErrNotFound)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("vaultclient: redis take cvc %s: %w", token, err)
	}
	if len(vals) == 0 {
		return Entry{}, fmt.Errorf("vaultclient: redis take cvc %s: script returned no record", token)
	}
	rec, ok := vals[0].(string)
	if !ok {
		return Entry{}, fmt.Errorf("vaultclient: redis take cvc %s: %w", token, ErrNotFound)
	}
	e := Entry{Record: []byte(rec)}
	if len(vals) > 1 {
		if cvc, ok := vals[1].(string); ok {
			e.CVC = []byte(cvc)
		}
	}
	return e, nil
}

// DeleteCVC implements Store.
func (s *RedisStore) DeleteCVC(ctx context.Context, token string) error {
	if err := s.c.Del(ctx, s.cvcKey(token)).Err(); err != nil {
		return fmt.Errorf("vaultclient: redis delete cvc %s: %w", token, err)
	}
	return nil
}

// Ping implements Store.
func (s *RedisStore) Ping(ctx context.Context) error {
	if err := s.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("vaultclient: redis ping: %w", err)
	}
	return nil
}

// swapScript replaces the record if it still holds ARGV[1], keeping the
// record's retention TTL, and the CVC, keeping its TTL, if it is still
// there and holds ARGV[3]. Returns 1 if the record was replaced, 0 if it
// changed or is gone.
//
// KEYS[1] record key, KEYS[2] CVC key; ARGV[1] old record, ARGV[2] new
// record, ARGV[3] old CVC or "", ARGV[4] new CVC.
const swapScript = `#!lua
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[3] ~= '' and redis.call('GET', KEYS[2]) == ARGV[3] then
  redis.call('SET', KEYS[2], ARGV[4], 'KEEPTTL')
end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
`

// Scan implements RewrapStore with SCAN over this store's card keys. The
// cursor is Redis's. SCAN may return a token twice; Rewrap is idempotent.
// A Redis Cluster has one cursor per master, which this store does not
// track: Scan refuses a cluster client.
func (s *RedisStore) Scan(ctx context.Context, cursor string, limit int) ([]string, string, error) {
	if _, ok := s.c.(*redis.ClusterClient); ok {
		return nil, "", errors.New("vaultclient: redis scan: not supported on a Redis Cluster yet; run rewrap against each master as a standalone store")
	}
	var cur uint64
	if cursor != "" {
		var err error
		if cur, err = strconv.ParseUint(cursor, 10, 64); err != nil {
			return nil, "", fmt.Errorf("vaultclient: redis scan: cursor %q is not a number", cursor)
		}
	}
	keys, next, err := s.c.Scan(ctx, cur, escapeGlob(s.prefix)+"{tok_*}:card", int64(limit)).Result()
	if err != nil {
		return nil, "", fmt.Errorf("vaultclient: redis scan: %w", err)
	}
	tokens := make([]string, 0, len(keys))
	for _, k := range keys {
		tok := strings.TrimSuffix(strings.TrimPrefix(k, s.prefix+"{"), "}:card")
		if ValidToken(tok) {
			tokens = append(tokens, tok)
		}
	}
	if next == 0 {
		return tokens, "", nil
	}
	return tokens, strconv.FormatUint(next, 10), nil
}

// escapeGlob quotes the characters SCAN's MATCH treats specially.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Swap implements RewrapStore in one script.
func (s *RedisStore) Swap(ctx context.Context, token string, old, new Entry) error {
	n, err := s.swap.Run(ctx, s.c, []string{s.cardKey(token), s.cvcKey(token)}, old.Record, new.Record, old.CVC, new.CVC).Int()
	if err != nil {
		return fmt.Errorf("vaultclient: redis swap %s: %w", token, err)
	}
	if n == 0 {
		return fmt.Errorf("vaultclient: redis swap %s: %w", token, ErrConflict)
	}
	return nil
}
