package forwarder

import (
	"context"
	"testing"
	"time"

	"github.com/cardgate/cardgate/canary"
	"github.com/cardgate/cardgate/internal/redistest"
)

// TestCheckCanaryWatcherNoTimer: the gateway's canary.Watcher answers from
// its snapshot in memory, so checkCanary asks it without arming a timer
// per token (a timer cost more than the lookup); it still refuses when the
// snapshot is stale. Other Canaries keep their
// timeout (TestCanary* with the test double).
func TestCheckCanaryWatcherNoTimer(t *testing.T) {
	srv := redistest.Start(t)
	set, err := canary.NewSet(srv.Client(), "cardgate:canaries", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Add(context.Background(), "tok_canaryaaaaaaaaaaaaaaaaaaaaaaaaaa"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	w, err := canary.NewWatcher(canary.WatcherOptions{Set: set, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	f := &Forwarder{canaries: w, checkTO: time.Second}
	ctx := context.Background()

	t.Run("no allocation for a token that is not a canary", func(t *testing.T) {
		fw := &forward{token: testToken2}
		if got := testing.AllocsPerRun(100, func() { _ = f.checkCanary(ctx, fw, &Request{}) }); got != 0 {
			t.Errorf("checkCanary: %v allocations per call, want 0 (no timer)", got)
		}
		if fw.canary {
			t.Error("a token that is not a canary was marked as one")
		}
	})
	t.Run("stale snapshot refuses", func(t *testing.T) {
		now = now.Add(time.Hour)
		e := f.checkCanary(ctx, &forward{token: testToken2}, &Request{})
		if e == nil || e.Code != CodeStoreUnavailable {
			t.Fatalf("checkCanary with a stale snapshot: %v, want %s", e, CodeStoreUnavailable)
		}
	})
}

// BenchmarkCheckCanaryWatcher is checkCanary's per-forward cost with the
// gateway's Watcher and one token.
func BenchmarkCheckCanaryWatcher(b *testing.B) {
	srv := redistest.Start(b)
	set, err := canary.NewSet(srv.Client(), "cardgate:canaries", time.Second)
	if err != nil {
		b.Fatal(err)
	}
	w, err := canary.NewWatcher(canary.WatcherOptions{Set: set})
	if err != nil {
		b.Fatal(err)
	}
	if err := w.Refresh(context.Background()); err != nil {
		b.Fatal(err)
	}
	f := &Forwarder{canaries: w, checkTO: time.Second}
	fw := &forward{token: testToken2}
	ctx, cancel := context.WithCancel(context.Background()) // a request's context is cancelable
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		_ = f.checkCanary(ctx, fw, &Request{})
	}
}
