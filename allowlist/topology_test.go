package allowlist

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cardgate/cardgate/internal/redistest"
)

// The Redis high-water mark on the two topologies other than a single
// node. Advance is WATCH/MULTI/EXEC on one key, which a Cluster allows;
// through a Sentinel failover the mark must survive (when the replica had
// it) and keep refusing a rollback.

func TestRedisStateStoreCluster(t *testing.T) {
	c := redistest.StartCluster(t).Client()
	storeContract(t, NewRedisStateStore(c, "cardgate:allowlist:state:test"))
	concurrentContract(t, func() StateStore { return NewRedisStateStore(c, "cardgate:allowlist:state:race") })
}

func TestRedisStateStoreSentinelFailover(t *testing.T) {
	ctx := context.Background()
	s := redistest.StartSentinel(t, redistest.SentinelOptions{})
	c := s.Client()
	storeContract(t, NewRedisStateStore(c, "cardgate:allowlist:state:test"))

	st := NewRedisStateStore(c, "cardgate:allowlist:state:failover")
	for _, v := range []uint64{1, 2, 3} {
		if err := st.Advance(ctx, succ(v)); err != nil {
			t.Fatalf("Advance(%d) = %v", v, err)
		}
	}
	if got, err := c.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || got != 1 {
		t.Fatalf("WAIT 1 = %d, %v; want the replica to acknowledge", got, err)
	}
	s.Failover()
	waitPing(t, c, 30*time.Second)
	if got, err := st.Load(ctx); err != nil || got.Version != 3 {
		t.Fatalf("Load after failover = %v, %v; want version 3 from the promoted replica", got, err)
	}
	if err := st.Advance(ctx, succ(2)); err == nil {
		t.Error("Advance(2) after failover = nil; want the rollback refused")
	}
	if err := st.Advance(ctx, succ(4)); err != nil {
		t.Errorf("Advance(4) after failover = %v, want nil", err)
	}
}

// waitPing waits until c answers PING, or fails the test after limit.
func waitPing(t *testing.T, c redis.UniversalClient, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis did not answer within %v: %v", limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
