package client

import (
	"context"
	cryptorand "crypto/rand"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// retryNotSent are the codes of a forward answered not_sent that a later
// attempt may get past: a dependency of the gateway was briefly out, a
// budget was spent, or the processor could not be reached at all. Every
// other refusal would be answered the same way again.
var retryNotSent = map[Code]bool{
	ErrRateLimited:            true,
	ErrStoreUnavailable:       true,
	ErrKeyBackendUnavailable:  true,
	ErrAuditUnavailable:       true,
	ErrRateLimitUnavailable:   true,
	ErrKillSwitchUnavailable:  true,
	ErrIdempotencyUnavailable: true,
	ErrUpstreamConnectFailed:  true,
}

// retryTokenize are the codes of a tokenize that a later attempt may get
// past.
var retryTokenize = map[Code]bool{
	ErrRateLimited:           true,
	ErrStoreUnavailable:      true,
	ErrKeyBackendUnavailable: true,
}

// retryable decides whether the failed attempt e of cl may be tried again;
// wrote says whether its request may have reached the gateway.
func (c *Client) retryable(ctx context.Context, cl call, e *Error, wrote bool) bool {
	if ctx.Err() != nil {
		return false
	}
	if e.Code == "" {
		// No usable answer. Safe when the gateway cannot have acted on
		// the request, or when the key makes it replay or refuse rather
		// than send again; a dry run never sends; a read changes nothing.
		return !wrote || (cl.forward && (cl.key != "" || cl.dryRun)) || cl.method == http.MethodGet
	}
	if cl.card {
		return retryCards[e.Code]
	}
	if !cl.forward {
		return retryTokenize[e.Code]
	}
	if e.Code == ErrIdempotencyInProgress {
		// An earlier attempt of this call is still running; with the
		// same key the gateway answers with its result and sends nothing.
		return cl.key != ""
	}
	return e.Outcome == NotSent && retryNotSent[e.Code]
}

// backoffFor is the wait after attempt: the backoff doubled per earlier
// attempt, capped, with full jitter so that many callers turned away at
// once do not come back at once.
func (c *Client) backoffFor(attempt int) time.Duration {
	d := c.backoff
	for i := 1; i < attempt && d < c.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.maxBackoff)
	return time.Duration(rand.Int64N(int64(d))) + 1
}

// parseRetryAfter reads Retry-After as seconds or as an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// NewIdempotencyKey returns a random key (128 bits) in the form the
// gateway accepts: "cg-" and 26 characters of A-Z and 2-7. Keep it with
// the payment it belongs to, and set it in ForwardRequest.IdempotencyKey,
// to make a forward safe to repeat across restarts of the caller.
func NewIdempotencyKey() string {
	for {
		k := "cg-" + cryptorand.Text()
		// The gateway's card guard reads a long digit run as a card;
		// such a key (about one in a billion) is drawn again.
		if !hasDigitRun(k, 13) {
			return k
		}
	}
}

// ValidIdempotencyKey reports whether k is a key the gateway accepts:
// 1–128 of A-Z a-z 0-9 - _ . :
func ValidIdempotencyKey(k string) bool {
	if k == "" || len(k) > 128 {
		return false
	}
	for i := 0; i < len(k); i++ {
		ch := k[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_' || ch == '.' || ch == ':') {
			return false
		}
	}
	return true
}

func hasDigitRun(s string, n int) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			if run++; run >= n {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}
