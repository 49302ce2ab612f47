package vaultclient

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cardgate/cardgate/internal/redistest"
)

// slowPipelineHook holds every pipeline of GETs for hold (or until the
// pipeline's context ends): a Redis that answers a pipeline slowly. Lone
// GETs pass at once.
type slowPipelineHook struct{ hold time.Duration }

func (h slowPipelineHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h slowPipelineHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h slowPipelineHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			if cmd.Name() == "get" {
				t := time.NewTimer(h.hold)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
				}
				break
			}
		}
		return next(ctx, cmds)
	}
}

// TestGetRecordEveryCallerStopsAtItsDeadline: whichever caller finds no
// read in flight, and whatever was queued with it, a caller whose deadline
// passes returns by then. It must never be the one that waits out a
// pipeline bounded by another caller's later deadline.
//
// Concurrent callers start together, one with a long deadline and the
// others with a short one, over a Redis that answers pipelines slowly; the
// round is repeated, since which caller leads is up to the scheduler.
func TestGetRecordEveryCallerStopsAtItsDeadline(t *testing.T) {
	srv := redistest.Start(t)
	setup := srv.Client()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	const hold = 300 * time.Millisecond
	c.AddHook(slowPipelineHook{hold: hold})
	s := NewRedisStore(c, "cardgate:")
	ctx := context.Background()
	const callers = 8
	for i := range callers {
		if err := setup.Set(ctx, s.cardKey(fmt.Sprintf("tok_%d", i)), "record", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}

	const (
		short  = 20 * time.Millisecond
		rounds = 10
	)
	// Far below hold: a caller that returns this late waited for a
	// pipeline it should have stopped waiting for.
	const late = 200 * time.Millisecond
	for round := range rounds {
		start := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		var worst time.Duration
		for i := range callers {
			wg.Go(func() {
				d := short
				if i == 0 {
					d = 10 * time.Second
				}
				cctx, cancel := context.WithTimeout(ctx, d)
				defer cancel()
				<-start
				began := time.Now()
				_, _ = s.GetRecord(cctx, fmt.Sprintf("tok_%d", i))
				if i == 0 {
					return
				}
				took := time.Since(began)
				mu.Lock()
				worst = max(worst, took)
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		if worst > late {
			t.Fatalf("round %d: a caller with a %v deadline returned after %v: it was held by a pipeline bounded by another caller's deadline", round, short, worst)
		}
	}
}
