package audit

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/cardgate/cardgate/internal/redistest"
)

// The Redis stream sink on the two topologies other than a single node.
// Its append script touches the stream and the chain's head key, so on a
// Cluster both must hash to one slot (HeadKey); through a Sentinel
// failover a chain whose tail the replica holds continues, and a write
// lost in the failover starts a new chain rather than leave a hole.

func TestRedisStreamSinkCluster(t *testing.T) {
	ctx := context.Background()
	cl := redistest.StartCluster(t)
	c := cl.Client()
	// Streams with and without their own hash tag, landing on different
	// nodes.
	for _, stream := range []string{"cardgate:audit", "{audit}:stream", "cardgate:audit:eu", "x{y}z"} {
		t.Run(stream, func(t *testing.T) {
			for chain := range 3 {
				head := HeadKey(stream, "c"+strconv.Itoa(chain))
				a, errA := cl.Nodes[0].Client().ClusterKeySlot(ctx, stream).Result()
				b, errB := cl.Nodes[0].Client().ClusterKeySlot(ctx, head).Result()
				if err := errors.Join(errA, errB); err != nil || a != b {
					t.Fatalf("CLUSTER KEYSLOT %q = %d, %q = %d (%v); want one slot", stream, a, head, b, err)
				}
			}
			s, err := NewRedisStreamSink(RedisStreamOptions{Client: c, Key: stream})
			if err != nil {
				t.Fatal(err)
			}
			l := newTestLog(t, s)
			var last Record
			for i := range 5 {
				last = mustAppend(t, l, intent(i))
			}
			rep, err := VerifyStream(ctx, c, stream, Anchor{Hash: last.Hash, Last: true})
			if err != nil || !rep.OK() {
				t.Fatalf("VerifyStream(%s) = %v, problems %v", stream, err, rep)
			}
			if len(rep.Chains) != 1 || rep.Chains[0].Records != 5 {
				t.Errorf("VerifyStream(%s) chains = %+v, want one chain of 5", stream, rep.Chains)
			}
		})
	}
}

func TestRedisStreamSinkSentinelFailover(t *testing.T) {
	ctx := context.Background()
	s := redistest.StartSentinel(t, redistest.SentinelOptions{})
	c := s.Client()
	sink := newStreamSink(t, c, time.Second)
	l := newTestLog(t, sink)
	for i := range 3 {
		mustAppend(t, l, intent(i))
	}
	if got, err := c.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || got != 1 {
		t.Fatalf("WAIT 1 = %d, %v; want the replica to acknowledge", got, err)
	}
	s.Failover()

	// Appends fail, typed, until the client reaches the promoted replica;
	// then they succeed again.
	deadline := time.Now().Add(30 * time.Second)
	var last Record
	for n := 3; ; n++ {
		rec, err := l.Append(ctx, intent(n))
		if err == nil {
			last = rec
			break
		}
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Append during failover = %v, want ErrUnavailable", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("Append still failing 30s after the failover: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	mustAppend(t, l, intent(99))
	chain, seq, hash := l.Head()
	rep, err := VerifyStream(ctx, c, testStream, Anchor{Hash: hash, Last: true})
	if err != nil || !rep.OK() {
		t.Fatalf("VerifyStream after failover = %v, problems %v", err, rep)
	}
	var records int
	for _, ch := range rep.Chains {
		records += ch.Records
	}
	// The three before, the first that succeeded after, and one more; a
	// write that failed during the failover may or may not have landed.
	if records < 5 || seq < 2 || last.Chain != chain {
		t.Errorf("after failover: %d records in %d chains, head seq %d; want at least 5 records and the chain continuing", records, len(rep.Chains), seq)
	}
}
