package audit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// StreamField is the name of the one field of each stream entry; its value
// is the record's stored form, byte for byte what FileSink writes on a line.
const StreamField = "record"

// DefaultRedisTimeout bounds one stream write when
// RedisStreamOptions.Timeout is zero.
const DefaultRedisTimeout = 2 * time.Second

// RedisStreamOptions configures a RedisStreamSink.
type RedisStreamOptions struct {
	// Client is required. A single node, Sentinel or Cluster client.
	Client redis.UniversalClient
	// Key is the stream key (required). Replicas share it; each writes its
	// own chain into it.
	Key string
	// Timeout bounds each write; zero means DefaultRedisTimeout.
	Timeout time.Duration
}

// RedisStreamSink appends records to a Redis stream with XADD (id "*"), the
// record in the field StreamField. It never trims the stream: trimming
// deletes the start of chains, which Verify would rightly report. Archive
// and trim deliberately, outside the gateway.
//
// Durable here means what the Redis deployment makes of an acknowledged
// write: with appendonly yes and appendfsync always, on the primary's disk;
// with everysec (the usual), up to a second of writes can be lost if the
// Redis host crashes; without the AOF, everything since the last snapshot.
// Run the audit stream's Redis with appendonly yes. A sink write does not
// wait for replicas. The FileSink, which fsyncs every record, is the
// durable copy; the stream is the shared, queryable one.
//
// Next to the stream the sink keeps, per chain, a head key holding
// "seq:hash" of the chain's last record (see HeadKey). The XADD and the
// head update run in one Lua script that appends only if the record
// continues the head. That makes a retried write harmless (the same record
// is not added twice if go-redis retries after a lost reply), and it makes
// a write fail, rather than leave a hole, when Redis lost the chain's tail
// (a restart without persistence, a failover to a lagging replica): the Log
// then starts a new chain.
type RedisStreamSink struct {
	c       redis.UniversalClient
	key     string
	timeout time.Duration
}

// NewRedisStreamSink returns a sink writing to o.Key.
func NewRedisStreamSink(o RedisStreamOptions) (*RedisStreamSink, error) {
	if o.Client == nil {
		return nil, errors.New("audit: redis stream sink: no client")
	}
	if o.Key == "" {
		return nil, errors.New("audit: redis stream sink: no key")
	}
	if o.Timeout < 0 {
		return nil, errors.New("audit: redis stream sink: negative timeout")
	}
	// The head key must land in the stream's Cluster slot. With a hash tag
	// HeadKey keeps it; without one it wraps the whole name in braces, which
	// only names the same slot when the name itself holds no brace.
	if _, tagged := hashTag(o.Key); !tagged && strings.ContainsAny(o.Key, "{}") {
		return nil, fmt.Errorf("audit: redis stream sink: key %q has braces but no non-empty {hash tag}; remove the braces or tag it like {audit}:stream", o.Key)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultRedisTimeout
	}
	return &RedisStreamSink{c: o.Client, key: o.Key, timeout: o.Timeout}, nil
}

// HeadKey returns the key holding chain's head next to stream. It shares
// stream's hash slot (same hash tag) so that one script can touch both in
// a Redis Cluster.
func HeadKey(stream, chain string) string {
	if _, tagged := hashTag(stream); tagged {
		// A suffix keeps the stream's own hash tag.
		return stream + ":head:" + chain
	}
	return "{" + stream + "}:head:" + chain
}

// hashTag applies Redis Cluster's rule: the slot comes from the text between
// the first '{' and the first '}' after it, when that text is not empty.
func hashTag(key string) (string, bool) {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return "", false
	}
	j := strings.IndexByte(key[i+1:], '}')
	if j <= 0 {
		return "", false
	}
	return key[i+1 : i+1+j], true
}

// appendScript appends a group of consecutive records of one chain to
// stream KEYS[1] if the chain head KEYS[2] is the first record's
// predecessor, and moves the head to the last record. It returns the number
// of entries added, or "dup" if the head already is the group's last record
// (a retried call whose first attempt was applied: the script is atomic, so
// a group is applied whole or not at all).
//
// ARGV: 1 field, 2 "seq:hash" of the predecessor of the first record, or ""
// for the first record of a chain, 3 "seq:hash" of the last record, then
// the lines in order.
var appendScript = redis.NewScript(`
local head = redis.call('GET', KEYS[2])
if head == ARGV[3] then
  return 'dup'
end
if (ARGV[2] == '' and head ~= false) or (ARGV[2] ~= '' and head ~= ARGV[2]) then
  return redis.error_reply('CHAINCONFLICT chain head is ' .. tostring(head))
end
for i = 4, #ARGV do
  redis.call('XADD', KEYS[1], '*', ARGV[1], ARGV[i])
end
redis.call('SET', KEYS[2], ARGV[3])
return #ARGV - 3
`)

// Write appends the record, and returns within the sink's timeout even if
// the client does not honour context deadlines (go-redis does so only with
// ContextTimeoutEnabled; without it a command waits for ReadTimeout). On a
// timeout the command may still complete after Write returned: the record
// may then be in the stream although Write failed, which the Log allows
// for by ending the chain.
func (s *RedisStreamSink) Write(ctx context.Context, batch []Entry) error {
	if len(batch) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	first, last := batch[0].Rec, batch[len(batch)-1].Rec
	pred := ""
	if first.Seq > 1 {
		pred = strconv.FormatUint(first.Seq-1, 10) + ":" + first.Prev
	}
	args := make([]any, 0, 3+len(batch))
	args = append(args, StreamField, pred, strconv.FormatUint(last.Seq, 10)+":"+last.Hash)
	for _, e := range batch {
		args = append(args, e.Line)
	}
	keys := []string{s.key, HeadKey(s.key, first.Chain)}
	done := make(chan error, 1) // buffered: the goroutine never blocks on a gone reader
	go func() {
		done <- appendScript.Run(ctx, s.c, keys, args...).Err()
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("audit: redis stream %s: xadd seq %d-%d of chain %s: %w", s.key, first.Seq, last.Seq, first.Chain, err)
	}
	return nil
}

// Check pings Redis within the sink's timeout; use it in a readiness check.
func (s *RedisStreamSink) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("audit: redis stream %s: ping: %w", s.key, err)
	}
	return nil
}

// Head returns the seq and hash of chain's last record in the stream, from
// its head key: 0 and "" when the stream holds none of the chain. It makes
// the sink a Mirror.
func (s *RedisStreamSink) Head(ctx context.Context, chain string) (uint64, string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	h, err := s.c.Get(ctx, HeadKey(s.key, chain)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return 0, "", nil
	case err != nil:
		return 0, "", fmt.Errorf("audit: redis stream %s: head of chain %s: %w", s.key, chain, err)
	}
	seqText, hash, ok := strings.Cut(h, ":")
	seq, perr := strconv.ParseUint(seqText, 10, 64)
	if !ok || perr != nil || !reSHA256.MatchString(hash) {
		return 0, "", fmt.Errorf("audit: redis stream %s: head of chain %s is not seq:hash", s.key, chain)
	}
	return seq, hash, nil
}
