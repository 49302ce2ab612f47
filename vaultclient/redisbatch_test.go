package vaultclient

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/cardgate/cardgate/internal/redistest"
)

// gateHook holds the first GET sent alone until release is closed, and
// counts what reaches Redis: GETs sent alone, and the GETs of each
// pipeline.
type gateHook struct {
	entered chan struct{} // closed when the first GET is held
	release chan struct{}
	once    sync.Once

	mu        sync.Mutex
	single    int
	pipelines []int
}

func newGateHook() *gateHook {
	return &gateHook{entered: make(chan struct{}), release: make(chan struct{})}
}

func (h *gateHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *gateHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "get" {
			h.mu.Lock()
			h.single++
			h.mu.Unlock()
			h.once.Do(func() { close(h.entered); <-h.release })
		}
		return next(ctx, cmd)
	}
}

func (h *gateHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		gets := 0
		for _, cmd := range cmds {
			if cmd.Name() == "get" {
				gets++
			}
		}
		if gets > 0 { // not the connection's own HELLO and CLIENT SETINFO
			h.mu.Lock()
			h.pipelines = append(h.pipelines, gets)
			h.mu.Unlock()
		}
		return next(ctx, cmds)
	}
}

func (h *gateHook) counts() (single int, pipelines []int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.single, append([]int(nil), h.pipelines...)
}

// queued is how many GETs wait for the pipeline in flight.
func (b *getBatcher) queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGetRecordPipelinesConcurrentReads: reads that arrive while one is in
// flight reach Redis as one pipeline, and each caller gets its own record
// (or ErrNotFound), as with one GET each.
func TestGetRecordPipelinesConcurrentReads(t *testing.T) {
	srv := redistest.Start(t)
	setup := srv.Client()
	c := srv.Client()
	hook := newGateHook()
	c.AddHook(hook)
	s := NewRedisStore(c, "cardgate:")
	ctx := context.Background()

	const n = 9
	want := map[string]string{"tok_first": "record first"}
	if err := setup.Set(ctx, s.cardKey("tok_first"), "record first", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		tok := fmt.Sprintf("tok_%d", i)
		if i%3 == 2 {
			want[tok] = "not found" // never stored
			continue
		}
		want[tok] = fmt.Sprintf("record %d", i)
		if err := setup.Set(ctx, s.cardKey(tok), want[tok], 0).Err(); err != nil {
			t.Fatal(err)
		}
	}

	var mu sync.Mutex
	got := map[string]string{}
	read := func(tok string) {
		rec, err := s.GetRecord(ctx, tok)
		v := string(rec)
		switch {
		case errors.Is(err, ErrNotFound):
			v = "not found"
		case err != nil:
			v = "error: " + err.Error()
		}
		mu.Lock()
		got[tok] = v
		mu.Unlock()
	}
	var wg sync.WaitGroup
	wg.Go(func() { read("tok_first") })
	<-hook.entered // the first read is in flight, alone
	for i := range n {
		wg.Go(func() { read(fmt.Sprintf("tok_%d", i)) })
	}
	waitFor(t, "every other read queued behind the first", func() bool { return s.gets.queued() == n })
	close(hook.release)
	wg.Wait()

	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records read (-want +got):\n%s", diff)
	}
	single, pipelines := hook.counts()
	if single != 1 || !cmp.Equal(pipelines, []int{n}) {
		t.Errorf("Redis saw %d lone GETs and pipelines %v; want 1 and [%d]: the queued reads were not sent together", single, pipelines, n)
	}
}

// TestGetRecordCallerGoneWhileQueued: a caller whose context ends while
// its read waits returns at once with its context's error, its GET is not
// sent, and the others are answered.
func TestGetRecordCallerGoneWhileQueued(t *testing.T) {
	srv := redistest.Start(t)
	setup := srv.Client()
	c := srv.Client()
	hook := newGateHook()
	c.AddHook(hook)
	s := NewRedisStore(c, "cardgate:")
	ctx := context.Background()
	for _, tok := range []string{"tok_a", "tok_b", "tok_c"} {
		if err := setup.Set(ctx, s.cardKey(tok), "record "+tok, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}

	var wg sync.WaitGroup
	var errA, errC error
	wg.Go(func() { _, errA = s.GetRecord(ctx, "tok_a") })
	<-hook.entered
	gone, cancel := context.WithCancel(ctx)
	goneErr := make(chan error, 1)
	go func() { _, err := s.GetRecord(gone, "tok_b"); goneErr <- err }()
	waitFor(t, "the read to be canceled queued", func() bool { return s.gets.queued() == 1 })
	wg.Go(func() { _, errC = s.GetRecord(ctx, "tok_c") })
	waitFor(t, "both reads queued", func() bool { return s.gets.queued() == 2 })
	cancel()
	select {
	case err := <-goneErr:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("GetRecord of the canceled caller = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the canceled caller still waits behind the held read")
	}
	close(hook.release)
	wg.Wait()
	if errA != nil || errC != nil {
		t.Errorf("reads of the callers still waiting: %v, %v; want both answered", errA, errC)
	}
	if single, pipelines := hook.counts(); single != 2 || len(pipelines) != 0 {
		t.Errorf("Redis saw %d lone GETs and pipelines %v; want 2 and none: the canceled caller's GET was sent", single, pipelines)
	}
}
