package forwarder

import (
	"context"
	"math/rand/v2"
	"time"
)

// retryable reports whether a failed send may be tried again: only when no
// connection was ever handed to the request, so not one byte of it can
// have been written. A TLS failure is not retried (a certificate does not
// fix itself in a second), nor is a DNS failure or an address refusal
// (the answer would be the same).
func retryable(e *Error) bool {
	return e.Outcome == NotSent && e.Code == CodeUpstreamConnectFailed
}

// sleepBackoff waits before attempt+1: RetryBackoff doubled per attempt,
// capped at RetryMaxBackoff, with full jitter so that replicas retrying
// against one processor do not retry in step. It returns false if ctx
// ended first.
func (f *Forwarder) sleepBackoff(ctx context.Context, attempt int) bool {
	d := f.backoff
	for i := 1; i < attempt && d < f.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, f.maxBackoff)
	d = time.Duration(rand.Int64N(int64(d)) + 1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
