package forwarder

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/internal/redistest"
	"github.com/cardgate/cardgate/ratelimit"
)

// oddLimiter refuses everything with a scope outside the documented two,
// built from the caller's input, as a careless Limiter might.
type oddLimiter struct{}

func (oddLimiter) Allow(_ context.Context, caller, destination string) error {
	return oddLimitError{scope: caller + "/" + destination}
}

type oddLimitError struct{ scope string }

func (e oddLimitError) Error() string             { return "odd: over budget" }
func (e oddLimitError) ErrorCode() string         { return CodeRateLimited }
func (e oddLimitError) PublicMessage() string     { return "over budget" }
func (e oddLimitError) RetryAfter() time.Duration { return time.Second }
func (e oddLimitError) RateLimitScope() string    { return e.scope }

// rateLimitedPoints returns the rate_limited counter's data points as
// "destination=… scope=… n", sorted.
func rateLimitedPoints(t *testing.T, reader *sdkmetric.ManualReader) []string {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "cardgate.forwarder.rate_limited" {
				continue
			}
			s, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("rate_limited is %T, want an int64 sum", m.Data)
			}
			for _, dp := range s.DataPoints {
				line := ""
				for _, kv := range dp.Attributes.ToSlice() {
					line += string(kv.Key) + "=" + kv.Value.Emit() + " "
				}
				got = append(got, fmt.Sprintf("%s%d", line, dp.Value))
			}
		}
	}
	slices.Sort(got)
	return got
}

// TestRateLimitedMetric: each refusal by a budget is counted once, under
// the budget that refused and the destination only if it is listed.
func TestRateLimitedMetric(t *testing.T) {
	perHour := ratelimit.Limit{Rate: 1, Per: time.Hour, Burst: 1}
	memory := func(l ratelimit.Limits) func(t *testing.T) Limiter {
		return func(t *testing.T) Limiter {
			lim, err := ratelimit.NewMemory(l, nil)
			if err != nil {
				t.Fatal(err)
			}
			return lim
		}
	}
	tests := []struct {
		name    string
		limiter func(t *testing.T) Limiter
		// steps: destination, and the error code of forwarding to it ("" is
		// admitted), in turn
		steps [][2]string
		want  []string
	}{
		{
			name:    "per caller and destination",
			limiter: memory(ratelimit.Limits{PerCallerDestination: perHour}),
			steps:   [][2]string{{"acme", ""}, {"acme", CodeRateLimited}, {"acme", CodeRateLimited}},
			want:    []string{"destination=acme scope=caller_destination 2"},
		},
		{
			name:    "per caller, redis",
			limiter: redisLimiter(ratelimit.Limits{PerCaller: perHour}),
			steps:   [][2]string{{"acme", ""}, {"acme", CodeRateLimited}},
			want:    []string{"destination=acme scope=caller 1"},
		},
		{
			name:    "a destination not on the allowlist is not a label",
			limiter: memory(ratelimit.Limits{PerCaller: perHour}),
			steps:   [][2]string{{"acme", ""}, {"nope", CodeRateLimited}, {"made-up-by-the-caller", CodeRateLimited}},
			want:    []string{"destination=unlisted scope=caller 2"},
		},
		{
			name:    "a scope outside the two is unknown",
			limiter: func(*testing.T) Limiter { return oddLimiter{} },
			steps:   [][2]string{{"acme", CodeRateLimited}, {"acme", CodeRateLimited}},
			want:    []string{"destination=acme scope=unknown 2"},
		},
		{
			name: "an unavailable budget store is not a rate limit",
			limiter: func(t *testing.T) Limiter {
				srv := redistest.Start(t)
				rl, err := ratelimit.NewRedis(ratelimit.RedisOptions{Client: srv.Client(), Limits: ratelimit.Limits{PerCaller: perHour}, Timeout: 300 * time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				srv.Stop()
				return rl
			},
			steps: [][2]string{{"acme", CodeRateLimitUnavailable}},
			want:  nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reader := sdkmetric.NewManualReader()
			lim := tt.limiter(t)
			e := newEnv(t, echo, func(o *Options, _ *allowlist.Destination) {
				o.Limiter = lim
				o.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			})
			for i, s := range tt.steps {
				req := e.jsonRequest(cardBody)
				req.Destination = s[0]
				_, err := e.f.Forward(context.Background(), req)
				if got := errCode(err); got != s[1] {
					t.Errorf("step %d Forward(destination %q) = %q (%v), want %q", i, s[0], got, err, s[1])
				}
			}
			if diff := cmp.Diff(tt.want, rateLimitedPoints(t, reader)); diff != "" {
				t.Errorf("rate_limited points (-want +got):\n%s", diff)
			}
		})
	}
}

// errCode is the code of a forward error, "" for none.
func errCode(err error) string {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Code
	}
	if err != nil {
		return "untyped"
	}
	return ""
}

func redisLimiter(l ratelimit.Limits) func(t *testing.T) Limiter {
	return func(t *testing.T) Limiter {
		srv := redistest.Start(t)
		rl, err := ratelimit.NewRedis(ratelimit.RedisOptions{Client: srv.Client(), Limits: l})
		if err != nil {
			t.Fatal(err)
		}
		return rl
	}
}
