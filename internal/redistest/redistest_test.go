package redistest

import (
	"bytes"
	"context"
	"testing"
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
