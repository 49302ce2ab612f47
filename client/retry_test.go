package client

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"testing"
	"time"
)

// TestForwardRetries runs each retry rule against a gateway that scripts
// its answers, and checks how many requests reached it, that every attempt
// carried the same key, the waits, and the error.
func TestForwardRetries(t *testing.T) {
	retryAfter := func(s string) map[string]string { return map[string]string{"Retry-After": s} }
	tests := []struct {
		name     string
		h2       bool
		noKeys   bool
		dryRun   bool
		steps    []step
		requests int
		wantCode Code // "" with wantErr: ErrNoAnswer
		wantErr  bool
		outcome  Outcome
		replayed bool
		minWaits []time.Duration // each wait must be at least this
	}{
		{name: "not_sent store_unavailable, then answered",
			steps:    []step{{status: 503, body: errAnswer("store_unavailable", "not_sent"), headers: retryAfter("5")}, {status: 200, body: forwardOK}},
			requests: 2, minWaits: []time.Duration{5 * time.Second}},
		{name: "rate_limited waits Retry-After",
			steps:    []step{{status: 429, body: errAnswer("rate_limited", "not_sent"), headers: retryAfter("2")}, {status: 200, body: forwardOK}},
			requests: 2, minWaits: []time.Duration{2 * time.Second}},
		{name: "every retryable not_sent code is retried",
			steps: []step{
				{status: 503, body: errAnswer("audit_unavailable", "not_sent")},
				{status: 502, body: errAnswer("upstream_connect_failed", "not_sent")},
				{status: 200, body: forwardOK}},
			requests: 3, minWaits: []time.Duration{0, 0}},
		{name: "attempts run out",
			steps: []step{
				{status: 503, body: errAnswer("key_backend_unavailable", "not_sent")},
				{status: 503, body: errAnswer("killswitch_unavailable", "not_sent")},
				{status: 503, body: errAnswer("idempotency_unavailable", "not_sent")},
				{status: 200, body: forwardOK}},
			requests: 3, wantErr: true, wantCode: ErrIdempotencyUnavailable, outcome: NotSent},
		{name: "sent_no_response upstream_timeout is not retried",
			steps:    []step{{status: 504, body: errAnswer("upstream_timeout", "sent_no_response")}, {status: 200, body: forwardOK}},
			requests: 1, wantErr: true, wantCode: ErrUpstreamTimeout, outcome: SentNoResponse},
		{name: "sent_no_response upstream_error is not retried",
			steps:    []step{{status: 502, body: errAnswer("upstream_error", "sent_no_response")}, {status: 200, body: forwardOK}},
			requests: 1, wantErr: true, wantCode: ErrUpstreamError, outcome: SentNoResponse},
		{name: "idempotency_outcome_unknown is not retried",
			steps:    []step{{status: 409, body: errAnswer("idempotency_outcome_unknown", "sent_no_response")}, {status: 200, body: forwardOK}},
			requests: 1, wantErr: true, wantCode: ErrIdempotencyOutcomeUnknown, outcome: SentNoResponse},
		{name: "a policy refusal is not retried",
			steps:    []step{{status: 403, body: errAnswer("destination_not_allowed", "not_sent")}, {status: 200, body: forwardOK}},
			requests: 1, wantErr: true, wantCode: ErrDestinationNotAllowed, outcome: NotSent},
		{name: "dns_failure is not retried",
			steps:    []step{{status: 502, body: errAnswer("dns_failure", "not_sent")}, {status: 200, body: forwardOK}},
			requests: 1, wantErr: true, wantCode: ErrDNSFailure, outcome: NotSent},
		{name: "a retryable code that says sent_no_response is not retried",
			steps:    []step{{status: 503, body: errAnswer("store_unavailable", "sent_no_response")}, {status: 200, body: forwardOK}},
			requests: 1, wantErr: true, wantCode: ErrStoreUnavailable, outcome: SentNoResponse},
		{name: "idempotency_in_progress is asked again with the key",
			steps:    []step{{status: 409, body: errAnswer("idempotency_in_progress", "sent_no_response")}, {status: 200, body: forwardOK, headers: map[string]string{"Idempotent-Replayed": "true"}}},
			requests: 2, replayed: true},
		{name: "no answer after the request with a key: retried, then replayed",
			steps:    []step{{abort: true}, {status: 200, body: forwardOK, headers: map[string]string{"Idempotent-Replayed": "true"}}},
			requests: 2, replayed: true},
		{name: "no answer over HTTP/2 with a key: retried", h2: true,
			steps:    []step{{abort: true}, {status: 200, body: forwardOK}},
			requests: 2},
		{name: "no answer after the request without a key: not retried", noKeys: true,
			steps:    []step{{abort: true}, {status: 200, body: forwardOK}},
			requests: 1, wantErr: true, outcome: SentNoResponse},
		{name: "no answer over HTTP/2 without a key: not retried", h2: true, noKeys: true,
			steps:    []step{{abort: true}, {status: 200, body: forwardOK}},
			requests: 1, wantErr: true, outcome: SentNoResponse},
		{name: "no answer to a dry run without a key: retried", noKeys: true, dryRun: true,
			steps:    []step{{abort: true}, {status: 200, body: forwardOK}},
			requests: 2},
		{name: "not_sent after an attempt without an answer is reported as sent_no_response",
			steps: []step{
				{abort: true},
				{status: 429, body: errAnswer("rate_limited", "not_sent"), headers: retryAfter("1")},
				{status: 429, body: errAnswer("rate_limited", "not_sent"), headers: retryAfter("1")}},
			requests: 3, wantErr: true, wantCode: ErrRateLimited, outcome: SentNoResponse},
		{name: "an answer not in the gateway's shape, with a key: retried",
			steps:    []step{{status: 502, body: "<html>bad gateway</html>"}, {status: 200, body: forwardOK}},
			requests: 2},
		{name: "an answer not in the gateway's shape, without a key: not retried", noKeys: true,
			steps:    []step{{status: 502, body: "<html>bad gateway</html>"}, {status: 200, body: forwardOK}},
			requests: 1, wantErr: true, outcome: SentNoResponse},
		{name: "Retry-After beyond the client's limit: not retried",
			steps:    []step{{status: 429, body: errAnswer("rate_limited", "not_sent"), headers: retryAfter("120")}, {status: 200, body: forwardOK}},
			requests: 1, wantErr: true, wantCode: ErrRateLimited, outcome: NotSent},
		{name: "a retry that finds the CVC used up ends with the first error",
			steps: []step{
				{status: 503, body: errAnswer("audit_unavailable", "not_sent")},
				{status: 422, body: errAnswer("cvc_not_available", "not_sent")},
				{status: 200, body: forwardOK}},
			requests: 2, wantErr: true, wantCode: ErrAuditUnavailable, outcome: NotSent},
		{name: "cvc_not_available on the first attempt is returned as it is",
			steps:    []step{{status: 422, body: errAnswer("cvc_not_available", "not_sent")}, {status: 200, body: forwardOK}},
			requests: 1, wantErr: true, wantCode: ErrCVCNotAvailable, outcome: NotSent},
		{name: "idempotency_not_supported is not retried",
			steps:    []step{{status: 501, body: errAnswer("idempotency_not_supported", "not_sent")}, {status: 200, body: forwardOK}},
			requests: 1, wantErr: true, wantCode: ErrIdempotencyNotSupported, outcome: NotSent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startScripted(t, tt.h2, tt.steps...)
			var opts []Option
			if tt.noKeys {
				opts = append(opts, WithoutIdempotencyKeys())
			}
			c, waits := s.client(t, opts...)
			req := sampleForward()
			req.DryRun = tt.dryRun
			resp, err := c.Forward(context.Background(), req)
			got := s.received()
			if len(got) != tt.requests {
				t.Fatalf("the gateway received %d requests, want %d (err %v)", len(got), tt.requests, err)
			}
			for i, r := range got {
				if want := map[bool]int{false: 1, true: 2}[tt.h2]; r.proto != want {
					t.Errorf("attempt %d came over HTTP/%d, want HTTP/%d", i+1, r.proto, want)
				}
				if tt.noKeys && r.key != "" {
					t.Errorf("attempt %d carried Idempotency-Key %q, want none", i+1, r.key)
				}
				if !tt.noKeys && (r.key == "" || r.key != got[0].key) {
					t.Errorf("attempt %d carried Idempotency-Key %q, want %q on every attempt", i+1, r.key, got[0].key)
				}
			}
			if len(*waits) != tt.requests-1 && !tt.wantErr {
				t.Errorf("waited %d times, want %d", len(*waits), tt.requests-1)
			}
			for i, min := range tt.minWaits {
				if i < len(*waits) && (*waits)[i] < min {
					t.Errorf("wait %d = %v, want at least %v", i+1, (*waits)[i], min)
				}
			}
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Forward: %v", err)
				}
				if resp.Replayed != tt.replayed {
					t.Errorf("Replayed = %v, want %v", resp.Replayed, tt.replayed)
				}
				if !tt.noKeys && resp.IdempotencyKey != got[0].key {
					t.Errorf("IdempotencyKey = %q, want the key sent, %q", resp.IdempotencyKey, got[0].key)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Forward error = %v (%T), want an *Error", err, err)
			}
			if e.Code != tt.wantCode {
				t.Errorf("Code = %q, want %q", e.Code, tt.wantCode)
			}
			if tt.wantCode == "" && !errors.Is(err, ErrNoAnswer) {
				t.Errorf("errors.Is(%v, ErrNoAnswer) = false, want true", err)
			}
			if tt.wantCode != "" && !errors.Is(err, tt.wantCode) {
				t.Errorf("errors.Is(%v, %s) = false, want true", err, tt.wantCode)
			}
			if e.Outcome != tt.outcome {
				t.Errorf("Outcome = %q, want %q", e.Outcome, tt.outcome)
			}
			if e.Attempts != tt.requests {
				t.Errorf("Attempts = %d, want %d", e.Attempts, tt.requests)
			}
			if !tt.noKeys && e.IdempotencyKey != got[0].key {
				t.Errorf("Error.IdempotencyKey = %q, want the key sent, %q", e.IdempotencyKey, got[0].key)
			}
		})
	}
}

// TestRetryDecodesFromZero: fields a failed decode filled do not survive
// into the answer of a later attempt.
func TestRetryDecodesFromZero(t *testing.T) {
	s := startScripted(t, false, step{status: 200, body: `{"location":"/stale","status":"not a number"}`}, step{status: 200, body: forwardOK})
	c, _ := s.client(t)
	resp, err := c.Forward(context.Background(), sampleForward())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Location != "" || resp.Status != 201 {
		t.Errorf("answer Location = %q, Status = %d; want \"\", 201", resp.Location, resp.Status)
	}
}

// TestTokenizeRetries: a tokenize has no key; it is retried only on a
// dependency outage or when its request never left.
func TestTokenizeRetries(t *testing.T) {
	tests := []struct {
		name     string
		steps    []step
		requests int
		wantCode Code
		wantErr  bool
	}{
		{name: "store_unavailable, then stored",
			steps:    []step{{status: 503, body: errAnswer("store_unavailable", "")}, {status: 201, body: tokenizeOK}},
			requests: 2},
		{name: "an invalid card is not retried",
			steps:    []step{{status: 422, body: errAnswer("invalid_card_number", "")}, {status: 201, body: tokenizeOK}},
			requests: 1, wantErr: true, wantCode: ErrInvalidCardNumber},
		{name: "no answer after the request: not retried, it may be stored",
			steps:    []step{{abort: true}, {status: 201, body: tokenizeOK}},
			requests: 1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startScripted(t, false, tt.steps...)
			c, _ := s.client(t)
			info, err := c.Tokenize(context.Background(), Card{Number: testCard, ExpMonth: 12, ExpYear: 2030, CVC: testCVCText})
			got := s.received()
			if len(got) != tt.requests {
				t.Fatalf("the gateway received %d requests, want %d (err %v)", len(got), tt.requests, err)
			}
			for _, r := range got {
				if r.key != "" {
					t.Errorf("a tokenize carried Idempotency-Key %q, want none", r.key)
				}
			}
			if !tt.wantErr {
				if err != nil || info.Token != "tok_abc" {
					t.Fatalf("Tokenize = %+v, %v, want tok_abc", info, err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != tt.wantCode || e.Outcome != "" {
				t.Fatalf("Tokenize error = %v, want an *Error with code %q and no outcome", err, tt.wantCode)
			}
		})
	}
}

// TestRetryNeverRunsPastTheDeadline: a Retry-After longer than the time
// the context has left ends the call at once with the gateway's answer.
func TestRetryNeverRunsPastTheDeadline(t *testing.T) {
	s := startScripted(t, false,
		step{status: 503, body: errAnswer("store_unavailable", "not_sent"), headers: map[string]string{"Retry-After": "5"}},
		step{status: 200, body: forwardOK})
	c, waits := s.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := c.Forward(ctx, sampleForward())
	if !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("Forward error = %v, want store_unavailable", err)
	}
	if n := len(s.received()); n != 1 || len(*waits) != 0 {
		t.Errorf("requests = %d, waits = %v; want 1 request and no wait", n, *waits)
	}
}

// TestContextDeadline: a gateway that never answers is left when the
// context ends; the error says so and the card may have been sent.
func TestContextDeadline(t *testing.T) {
	s := startScripted(t, false, step{hang: true}, step{hang: true})
	c, _ := s.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Forward(ctx, sampleForward())
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Forward took %v after a 300ms deadline", took)
	}
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("Forward error = %v, want an *Error wrapping context.DeadlineExceeded", err)
	}
	if e.Outcome != SentNoResponse || e.Attempts != 1 {
		t.Errorf("Outcome = %q after %d attempts, want sent_no_response after 1", e.Outcome, e.Attempts)
	}
}

// TestBackoff: the waits grow and stay under the cap, never zero.
func TestBackoff(t *testing.T) {
	c := &Client{backoff: 100 * time.Millisecond, maxBackoff: 300 * time.Millisecond}
	for attempt, max := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 300 * time.Millisecond, 9: 300 * time.Millisecond} {
		for range 200 {
			if d := c.backoffFor(attempt); d <= 0 || d > max {
				t.Fatalf("backoffFor(%d) = %v, want in (0, %v]", attempt, d, max)
			}
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"5", 5 * time.Second}, {" 1 ", time.Second}, {"0", 0}, {"-3", 0}, {"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestIdempotencyKeys: generated keys pass the gateway's grammar
// (forwarder.validIdempotencyKey and openapi.yaml's pattern), differ, and
// never hold a digit run the gateway's card guard would read as a card.
func TestIdempotencyKeys(t *testing.T) {
	pattern := regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)
	seenKeys := map[string]bool{}
	for range 1000 {
		k := NewIdempotencyKey()
		if !pattern.MatchString(k) || !ValidIdempotencyKey(k) {
			t.Fatalf("NewIdempotencyKey() = %q, not a key the gateway accepts", k)
		}
		if hasDigitRun(k, 13) {
			t.Fatalf("NewIdempotencyKey() = %q holds a 13-digit run", k)
		}
		if seenKeys[k] {
			t.Fatalf("NewIdempotencyKey() repeated %q", k)
		}
		seenKeys[k] = true
	}
	for _, k := range []string{"", "has space", "ünïcode", string(make([]byte, 129)), "a/b"} {
		if ValidIdempotencyKey(k) {
			t.Errorf("ValidIdempotencyKey(%q) = true, want false", k)
		}
	}
}

// TestCallerKey: the caller's own key is sent on every attempt, and a
// malformed one is refused before anything is sent.
func TestCallerKey(t *testing.T) {
	s := startScripted(t, false, step{status: 503, body: errAnswer("store_unavailable", "not_sent")}, step{status: 200, body: forwardOK})
	c, _ := s.client(t, WithoutIdempotencyKeys())
	req := sampleForward()
	req.IdempotencyKey = "order-1234:charge"
	resp, err := c.Forward(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range s.received() {
		if r.key != "order-1234:charge" {
			t.Errorf("attempt %d carried %q, want the caller's key", i+1, r.key)
		}
	}
	if resp.IdempotencyKey != "order-1234:charge" {
		t.Errorf("IdempotencyKey = %q, want the caller's", resp.IdempotencyKey)
	}

	req.IdempotencyKey = "bad key"
	_, err = c.Forward(context.Background(), req)
	if !errors.Is(err, ErrInvalidIdempotencyKey) {
		t.Fatalf("Forward with a bad key: %v, want invalid_idempotency_key", err)
	}
	if n := len(s.received()); n != 2 {
		t.Errorf("the gateway received %d requests, want the 2 of the first call", n)
	}
}

// TestKeyPerCall: each Forward is one logical call with its own key, even
// with the same request value, which the client leaves as it was given.
func TestKeyPerCall(t *testing.T) {
	s := startScripted(t, false, step{status: 200, body: forwardOK}, step{status: 200, body: forwardOK})
	c, _ := s.client(t)
	req := sampleForward()
	first, err := c.Forward(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Forward(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	got := s.received()
	if len(got) != 2 || got[0].key == "" || got[0].key == got[1].key || got[0].key != first.IdempotencyKey || got[1].key != second.IdempotencyKey {
		t.Errorf("two calls carried keys %q and %q (answers %q, %q); want two different keys", got[0].key, got[1].key, first.IdempotencyKey, second.IdempotencyKey)
	}
	if req.IdempotencyKey != "" {
		t.Errorf("the caller's request now has IdempotencyKey %q, want it left empty", req.IdempotencyKey)
	}
}
