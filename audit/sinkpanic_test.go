package audit

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// panicSink panics on its first write, then stores like memSink.
type panicSink struct {
	memSink
	panicked atomic.Bool
}

func (s *panicSink) Write(ctx context.Context, batch []Entry) error {
	if s.panicked.CompareAndSwap(false, true) {
		panic("sink bug")
	}
	return s.memSink.Write(ctx, batch)
}

// A sink that panics fails the append (ErrUnavailable: the forward is
// refused) and leaves the log usable, with one sink or several.
func TestPanickingSinkFailsTheAppendOnly(t *testing.T) {
	for _, n := range []int{1, 2} {
		sinks := []Sink{&panicSink{}}
		if n == 2 {
			sinks = append(sinks, &memSink{})
		}
		l, err := New(Options{Sinks: sinks})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(context.Background(), intent(1)); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("%d sinks: Append through a panicking sink = %v, want ErrUnavailable", n, err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := l.Append(context.Background(), intent(2))
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%d sinks: Append after the panic = %v", n, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d sinks: Append after a sink panic never returned: the log is wedged", n)
		}
	}
}
