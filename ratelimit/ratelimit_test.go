package ratelimit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cardgate/cardgate/internal/redistest"
)

// allower is what both limiters implement.
type allower interface {
	Allow(ctx context.Context, caller, destination string) error
}

// fakeClock is a manual clock for the memory limiter.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

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

// codeScope is code, and for rate_limited the scope after a slash.
func codeScope(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code == CodeRateLimited {
		return e.Code + "/" + e.Scope
	}
	return code(err)
}

// Wanted refusals, by budget.
const (
	limCaller = CodeRateLimited + "/" + ScopeCaller
	limDest   = CodeRateLimited + "/" + ScopeCallerDestination
)

// TestBudgets runs the same table against the Redis and the memory
// limiter. Limits are slow (per hour) so that the real clock Redis uses
// cannot refill a budget while a case runs.
func TestBudgets(t *testing.T) {
	srv := redistest.Start(t)
	tests := []struct {
		name   string
		limits Limits
		// steps: caller, destination, want codeScope
		steps [][3]string
	}{
		{"burst then refused", Limits{PerCaller: Limit{Rate: 1, Per: time.Hour, Burst: 3}}, [][3]string{
			{"a", "x", ""}, {"a", "x", ""}, {"a", "y", ""}, {"a", "z", limCaller},
			{"b", "x", ""}, // another caller has its own budget
		}},
		{"per destination", Limits{PerCallerDestination: Limit{Rate: 1, Per: time.Hour, Burst: 2}}, [][3]string{
			{"a", "x", ""}, {"a", "x", ""}, {"a", "x", limDest},
			{"a", "y", ""}, {"b", "x", ""},
		}},
		{"both: caller budget spans destinations", Limits{
			PerCaller:            Limit{Rate: 1, Per: time.Hour, Burst: 3},
			PerCallerDestination: Limit{Rate: 1, Per: time.Hour, Burst: 2},
		}, [][3]string{
			{"a", "x", ""}, {"a", "x", ""}, {"a", "x", limDest},
			// the refusal above consumed nothing: y still fits once
			{"a", "y", ""}, {"a", "y", limCaller}, {"a", "z", limCaller},
		}},
		{"both spent: the budget that frees up last", Limits{
			PerCaller:            Limit{Rate: 1, Per: time.Hour, Burst: 2},
			PerCallerDestination: Limit{Rate: 1, Per: 2 * time.Hour, Burst: 2},
		}, [][3]string{
			// after two, the caller budget frees in 1h, x's in 2h
			{"a", "x", ""}, {"a", "x", ""}, {"a", "x", limDest}, {"a", "y", limCaller},
		}},
		{"unlimited", Limits{}, [][3]string{{"a", "x", ""}, {"a", "x", ""}, {"a", "x", ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := srv.Client()
			if err := c.FlushAll(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
			r, err := NewRedis(RedisOptions{Client: c, Prefix: "test:rl:", Limits: tt.limits})
			if err != nil {
				t.Fatal(err)
			}
			clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			m, err := NewMemory(tt.limits, clock.now)
			if err != nil {
				t.Fatal(err)
			}
			for _, impl := range []struct {
				name string
				l    allower
			}{{"redis", r}, {"memory", m}} {
				for i, s := range tt.steps {
					err := impl.l.Allow(context.Background(), s[0], s[1])
					if got := codeScope(err); got != s[2] {
						t.Errorf("%s: step %d Allow(%q, %q) = %q (%v), want %q", impl.name, i, s[0], s[1], got, err, s[2])
					}
					var e *Error
					if errors.As(err, &e) && e.Code == CodeRateLimited && (e.RetryAfter() <= 0 || e.RetryAfter() > 2*time.Hour) {
						t.Errorf("%s: step %d RetryAfter = %v, want within (0, 2h]", impl.name, i, e.RetryAfter())
					}
				}
			}
		})
	}
}

// TestMemoryRefills checks the arithmetic over time with a manual clock:
// 10 per second with a burst of 2.
func TestMemoryRefills(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	m, err := NewMemory(Limits{PerCaller: Limit{Rate: 10, Per: time.Second, Burst: 2}}, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 2 {
		if err := m.Allow(ctx, "a", "x"); err != nil {
			t.Fatalf("burst request %d: %v", i, err)
		}
	}
	err = m.Allow(ctx, "a", "x")
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeRateLimited {
		t.Fatalf("third request = %v, want rate_limited", err)
	}
	if e.RetryAfter() != 100*time.Millisecond {
		t.Errorf("RetryAfter = %v, want 100ms (one emission interval)", e.RetryAfter())
	}
	clock.add(e.RetryAfter())
	if err := m.Allow(ctx, "a", "x"); err != nil {
		t.Errorf("after RetryAfter: %v, want admitted", err)
	}
}

// TestRedisSharedAcrossInstances: two limiters (two gateways) on one Redis
// share one budget.
func TestRedisSharedAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	l := Limits{PerCaller: Limit{Rate: 1, Per: time.Hour, Burst: 4}}
	a, _ := NewRedis(RedisOptions{Client: srv.Client(), Prefix: "test:", Limits: l})
	b, _ := NewRedis(RedisOptions{Client: srv.Client(), Prefix: "test:", Limits: l})
	ctx := context.Background()
	var admitted int
	for i := range 10 {
		lim := a
		if i%2 == 1 {
			lim = b
		}
		if lim.Allow(ctx, "caller", "dest") == nil {
			admitted++
		}
	}
	if admitted != 4 {
		t.Errorf("admitted %d of 10 across two instances, want the burst of 4", admitted)
	}
}

// TestRedisDownFailsClosed: no Redis, no forward.
func TestRedisDownFailsClosed(t *testing.T) {
	srv := redistest.Start(t)
	r, _ := NewRedis(RedisOptions{Client: srv.Client(), Prefix: "test:", Limits: Limits{PerCaller: Limit{Rate: 100, Per: time.Second, Burst: 10}}, Timeout: 500 * time.Millisecond})
	srv.Stop()
	err := r.Allow(context.Background(), "a", "x")
	if got := code(err); got != CodeUnavailable {
		t.Errorf("Allow with Redis down = %q (%v), want %q", got, err, CodeUnavailable)
	}
}

func TestLimitValidate(t *testing.T) {
	tests := []struct {
		name string
		l    Limit
		ok   bool
	}{
		{"zero is unlimited", Limit{}, true},
		{"valid", Limit{Rate: 100, Per: time.Second, Burst: 20}, true},
		{"negative rate", Limit{Rate: -1}, false},
		{"no per", Limit{Rate: 1, Burst: 1}, false},
		{"no burst", Limit{Rate: 1, Per: time.Second}, false},
		{"rate beyond nanoseconds", Limit{Rate: 2_000_000_000, Per: time.Second, Burst: 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.l.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate(%+v) = %v, want ok=%v", tt.l, err, tt.ok)
			}
		})
	}
}
