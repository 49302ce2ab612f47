package idempotency

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardgate/cardgate/internal/redistest"
)

func code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err != nil {
		return "untyped"
	}
	return ""
}

func newStore(t *testing.T, srv *redistest.Server, o RedisOptions) *RedisStore {
	t.Helper()
	o.Client = srv.Client()
	o.Prefix = "test:idem:"
	if o.Keys == nil {
		o.Keys = testKeys(t)
	}
	s, err := NewRedisStore(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLifecycle(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	type step struct {
		name string
		run  func(s *RedisStore) (string, error) // returns the answer, if any
		want string                              // code, or "answer:<text>", or "" for a claim/ok
	}
	tests := []struct {
		name  string
		lease time.Duration
		steps []step
	}{
		{"claim, complete, replay", time.Minute, []step{
			{"first claims", func(s *RedisStore) (string, error) { return claim(s, "k", "fp1", "a") }, ""},
			{"mark", func(s *RedisStore) (string, error) { return "", s.MarkSending(ctx, "caller", "k", "a") }, ""},
			{"complete", func(s *RedisStore) (string, error) { return "", s.Complete(ctx, "caller", "k", "a", []byte("ANSWER")) }, ""},
			{"replay", func(s *RedisStore) (string, error) { return claim(s, "k", "fp1", "b") }, "answer:ANSWER"},
			{"other request", func(s *RedisStore) (string, error) { return claim(s, "k", "fp2", "c") }, CodeKeyReused},
			{"other caller, same key", func(s *RedisStore) (string, error) {
				a, err := s.Claim(ctx, "someone-else", "k", "fp2", "d")
				return string(a), err
			}, ""},
		}},
		{"release frees the key", time.Minute, []step{
			{"claim", func(s *RedisStore) (string, error) { return claim(s, "k", "fp1", "a") }, ""},
			{"release", func(s *RedisStore) (string, error) { return "", s.Release(ctx, "caller", "k", "a") }, ""},
			{"claim again", func(s *RedisStore) (string, error) { return claim(s, "k", "fp1", "b") }, ""},
			{"stale release does nothing", func(s *RedisStore) (string, error) { return "", s.Release(ctx, "caller", "k", "a") }, ""},
			{"still held by b", func(s *RedisStore) (string, error) { return claim(s, "k", "fp1", "c") }, CodeInProgress},
		}},
		{"abandoned before sending is taken over", 150 * time.Millisecond, []step{
			{"claim", func(s *RedisStore) (string, error) { return claim(s, "k", "fp1", "a") }, ""},
			{"lease runs out", func(s *RedisStore) (string, error) { time.Sleep(300 * time.Millisecond); return "", nil }, ""},
			{"b takes over", func(s *RedisStore) (string, error) { return claim(s, "k", "fp1", "b") }, ""},
			{"a may no longer send", func(s *RedisStore) (string, error) { return "", s.MarkSending(ctx, "caller", "k", "a") }, CodeInProgress},
		}},
		{"abandoned after sending is never sent again", 150 * time.Millisecond, []step{
			{"claim", func(s *RedisStore) (string, error) { return claim(s, "k", "fp1", "a") }, ""},
			{"mark", func(s *RedisStore) (string, error) { return "", s.MarkSending(ctx, "caller", "k", "a") }, ""},
			{"lease runs out", func(s *RedisStore) (string, error) { time.Sleep(300 * time.Millisecond); return "", nil }, ""},
			{"b learns the outcome is unknown", func(s *RedisStore) (string, error) { return claim(s, "k", "fp1", "b") }, CodeOutcomeUnknown},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.Client().FlushAll(ctx)
			s := newStore(t, srv, RedisOptions{Lease: tt.lease, Wait: 100 * time.Millisecond})
			for _, st := range tt.steps {
				ans, err := st.run(s)
				got := code(err)
				if ans != "" {
					got = "answer:" + ans
				}
				if got != st.want {
					t.Fatalf("%s: got %q (%v), want %q", st.name, got, err, st.want)
				}
			}
		})
	}
}

func claim(s *RedisStore, key, fp, owner string) (string, error) {
	a, err := s.Claim(context.Background(), "caller", key, fp, owner)
	return string(a), err
}

// TestConcurrentClaims: 20 claimants, as many gateways, on one key: exactly
// one wins; the others wait and get its answer.
func TestConcurrentClaims(t *testing.T) {
	srv := redistest.Start(t)
	keys := testKeys(t) // one key backend, as gateways sharing a Redis share one
	stores := []*RedisStore{
		newStore(t, srv, RedisOptions{Wait: 5 * time.Second, Keys: keys}),
		newStore(t, srv, RedisOptions{Wait: 5 * time.Second, Keys: keys}),
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	answers := make([]string, 20)
	for i := range 20 {
		wg.Go(func() {
			s := stores[i%2]
			owner := "o" + string(rune('a'+i))
			a, err := s.Claim(context.Background(), "caller", "k", "fp", owner)
			if err != nil {
				t.Errorf("claimant %d: %v", i, err)
				return
			}
			if a == nil {
				wins.Add(1)
				time.Sleep(100 * time.Millisecond) // the "forward"
				if err := s.MarkSending(context.Background(), "caller", "k", owner); err != nil {
					t.Errorf("winner mark: %v", err)
				}
				if err := s.Complete(context.Background(), "caller", "k", owner, []byte("the answer")); err != nil {
					t.Errorf("winner complete: %v", err)
				}
				answers[i] = "the answer"
				return
			}
			answers[i] = string(a)
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("%d claimants won the key, want exactly 1", wins.Load())
	}
	for i, a := range answers {
		if a != "the answer" {
			t.Errorf("claimant %d got %q, want the winner's answer", i, a)
		}
	}
}

func TestRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv, RedisOptions{Timeout: 300 * time.Millisecond})
	srv.Stop()
	if _, err := s.Claim(context.Background(), "caller", "k", "fp", "a"); code(err) != CodeUnavailable {
		t.Errorf("Claim with Redis down = %v, want %s", err, CodeUnavailable)
	}
}
