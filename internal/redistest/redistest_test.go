package redistest

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestStartDumpRestart(t *testing.T) {
	ctx := context.Background()
	s := StartWith(t, Options{Persist: true})
	c := s.Client()
	if err := c.Set(ctx, "k1", "value-one", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if err := c.HSet(ctx, "h1", "field", "value-two").Err(); err != nil {
		t.Fatalf("HSET: %v", err)
	}
	dump := s.Dump()
	for _, want := range []string{"k1", "value-one", "h1", "field", "value-two"} {
		if !bytes.Contains(dump, []byte(want)) {
			t.Errorf("Dump() does not contain %q:\n%s", want, dump)
		}
	}
	if rdb := s.RDB(); !bytes.Contains(rdb, []byte("value-one")) {
		t.Errorf("RDB() does not contain %q", "value-one")
	}

	s.Stop()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("Ping after Stop succeeded, want an error")
	}
	s.Restart()
	got, err := c.Get(ctx, "k1").Result()
	if err != nil || got != "value-one" {
		t.Fatalf("GET k1 after Restart = %q, %v; want %q (saved by RDB)", got, err, "value-one")
	}
}

func TestNoPersistenceByDefault(t *testing.T) {
	ctx := context.Background()
	s := Start(t)
	c := s.Client()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	s.Restart()
	if n, err := c.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS k after Restart = %d, %v; want 0 (no persistence)", n, err)
	}
}

func TestTwoServersAreIndependent(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("two servers share %s", a.Addr())
	}
}

func TestCluster(t *testing.T) {
	ctx := context.Background()
	cl := StartCluster(t)
	c := cl.Client()
	// Keys that hash to every node.
	for i := range 30 {
		k := "k" + strconv.Itoa(i)
		if err := c.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
	}
	for _, n := range cl.Nodes {
		if size, err := n.Client().DBSize(ctx).Result(); err != nil || size == 0 {
			t.Errorf("node %s holds %d keys (%v), want some: the slots are not spread", n.Addr(), size, err)
		}
	}
	if err := c.MSet(ctx, "{tag}a", "1", "{tag}b", "2").Err(); err != nil {
		t.Errorf("MSET within one hash tag: %v", err)
	}
	if err := c.Do(ctx, "MSET", "k1", "1", "k2", "2").Err(); err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Errorf("MSET across slots = %v, want CROSSSLOT (a real cluster)", err)
	}
	if !bytes.Contains(cl.Dump(), []byte("{tag}a")) {
		t.Errorf("Dump() misses {tag}a")
	}
}

func TestSentinelFailover(t *testing.T) {
	ctx := context.Background()
	s := StartSentinel(t, SentinelOptions{Sentinels: 3})
	c := s.Client()
	if err := c.Set(ctx, "k", "before", 0).Err(); err != nil {
		t.Fatalf("SET before failover: %v", err)
	}
	// WAIT makes the replica hold k before the master dies.
	if n, err := c.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 = %d, %v; want the replica to acknowledge", n, err)
	}
	old := s.Master()
	promoted := s.Failover()
	if promoted == old {
		t.Fatalf("Failover kept %s as master", old.Addr())
	}
	// The client finds the new master through the Sentinels.
	var got string
	var err error
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if got, err = c.Get(ctx, "k").Result(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got != "before" {
		t.Fatalf("GET k after failover = %q, %v; want %q from the promoted replica", got, err, "before")
	}
	if err := c.Set(ctx, "k", "after", 0).Err(); err != nil {
		t.Errorf("SET after failover: %v", err)
	}
}
