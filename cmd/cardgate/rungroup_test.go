package main

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Stop returns only once every actor has returned, including one that
// takes a while to notice its context ended (a Redis command in flight).
func TestRunGroupStopWaits(t *testing.T) {
	r := newRunGroup(context.Background())
	var returned atomic.Int32
	for _, name := range []string{"fast", "slow", "slower"} {
		delay := map[string]time.Duration{"fast": 0, "slow": 50 * time.Millisecond, "slower": 150 * time.Millisecond}[name]
		r.Go(name, func(ctx context.Context) {
			<-ctx.Done()
			time.Sleep(delay)
			returned.Add(1)
		})
	}
	if err := r.Stop(10 * time.Second); err != nil {
		t.Fatalf("Stop = %v, want nil", err)
	}
	if n := returned.Load(); n != 3 {
		t.Errorf("Stop returned with %d of 3 actors returned, want all", n)
	}
}

// A loop that ignores its context cannot hold the shutdown forever: Stop
// gives up after its bound and names it, and a second Stop does not wait
// again.
func TestRunGroupStopBounded(t *testing.T) {
	r := newRunGroup(context.Background())
	release := make(chan struct{})
	defer close(release)
	r.Go("wedged poll", func(context.Context) { <-release })
	r.Go("good poll", func(ctx context.Context) { <-ctx.Done() })
	err := r.Stop(50 * time.Millisecond)
	if !errors.Is(err, errLoopsStuck) || !strings.Contains(err.Error(), "wedged poll") || strings.Contains(err.Error(), "good poll") {
		t.Fatalf("Stop = %v, want errLoopsStuck naming only the wedged poll", err)
	}
	start := time.Now()
	if err2 := r.Stop(10 * time.Second); err2 == nil || err2.Error() != err.Error() {
		t.Errorf("second Stop = %v, want %v", err2, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second Stop waited %v, want it to return at once", d)
	}
}

// An actor that returns before Stop is reported, so the gateway stops
// rather than run without, say, its kill switch poll; one stopped by Stop
// is not.
func TestRunGroupEnded(t *testing.T) {
	r := newRunGroup(context.Background())
	r.Go("steady", func(ctx context.Context) { <-ctx.Done() })
	r.Go("quitter", func(context.Context) {})
	select {
	case name := <-r.Ended():
		if name != "quitter" {
			t.Errorf("Ended = %q, want quitter", name)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an actor that returned on its own was not reported")
	}
	if err := r.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case name := <-r.Ended():
		t.Errorf("Ended = %q after Stop, want nothing", name)
	default:
	}
	// After Stop, Go starts nothing.
	var ran atomic.Bool
	r.Go("late", func(context.Context) { ran.Store(true) })
	if err := r.Stop(time.Second); err != nil {
		t.Fatal(err)
	}
	if ran.Load() {
		t.Error("an actor added after Stop ran")
	}
}

// The group's context survives the parent's cancellation (SIGTERM), so the
// loops outlive the drain; only Stop ends it.
func TestRunGroupOutlivesParent(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	r := newRunGroup(parent)
	got := make(chan error, 1)
	r.Go("watch", func(ctx context.Context) {
		<-ctx.Done()
		got <- ctx.Err()
	})
	cancel()
	select {
	case err := <-got:
		t.Fatalf("actor stopped with the parent context: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := r.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Errorf("actor's context ended with %v, want context.Canceled", err)
	}
}
