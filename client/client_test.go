package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cardgate/cardgate/internal/testpki"
)

func TestNewRefuses(t *testing.T) {
	s := startScripted(t, false)
	pem := WithPEMFiles(filepath.Join(s.dir, "caller.crt"), filepath.Join(s.dir, "caller.key"), filepath.Join(s.dir, "ca.pem"))
	tests := []struct {
		name string
		url  string
		opts []Option
		want string
	}{
		{"plain http", "http://127.0.0.1:8443", []Option{pem}, "must be https"},
		{"a path", "https://127.0.0.1:8443/v1", []Option{pem}, "must be https"},
		{"credentials", "https://u:p@127.0.0.1:8443", []Option{pem}, "must be https"},
		{"no host", "https://", []Option{pem}, "must be https"},
		{"no TLS option", "https://127.0.0.1:8443", nil, "mTLS is required"},
		{"two TLS options", "https://127.0.0.1:8443", []Option{pem, pem}, "give one of"},
		{"missing CA file", "https://127.0.0.1:8443", []Option{WithPEMFiles(filepath.Join(s.dir, "caller.crt"), filepath.Join(s.dir, "caller.key"), filepath.Join(s.dir, "none.pem"))}, "CA file"},
		{"CA file without a certificate", "https://127.0.0.1:8443", []Option{WithPEMFiles(filepath.Join(s.dir, "caller.crt"), filepath.Join(s.dir, "caller.key"), filepath.Join(s.dir, "caller.key"))}, "holds no PEM certificate"},
		{"key that does not match", "https://127.0.0.1:8443", []Option{WithPEMFiles(filepath.Join(s.dir, "caller.crt"), filepath.Join(s.dir, "ca.pem"), filepath.Join(s.dir, "ca.pem"))}, "client certificate"},
		{"nil SVID source", "https://127.0.0.1:8443", []Option{WithX509Source(nil, nil, nil)}, "needs an SVID source"},
		{"retries out of range", "https://127.0.0.1:8443", []Option{pem, WithRetries(0, 1, 1)}, "want 1 to 10"},
		{"negative timeout", "https://127.0.0.1:8443", []Option{pem, WithTimeouts(Timeouts{Dial: -1})}, "must not be negative"},
		{"response cap", "https://127.0.0.1:8443", []Option{pem, WithMaxResponseBytes(0)}, "positive size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.url, tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New(%q) error = %v, want one containing %q", tt.url, err, tt.want)
			}
		})
	}
}

// TestTokenize: the wire body is CardInput's, and the answer decodes.
func TestTokenize(t *testing.T) {
	s := startScripted(t, false, step{status: 201, body: tokenizeOK, headers: map[string]string{"X-Request-Id": "req_1"}})
	c, _ := s.client(t)
	info, err := c.Tokenize(context.Background(), Card{Number: testCard, ExpMonth: 12, ExpYear: 2030, CVC: testCVCText, Name: "Jane Doe"})
	if err != nil {
		t.Fatal(err)
	}
	want := &TokenInfo{Token: "tok_abc", Last4: "4242", Brand: "visa", ExpMonth: 12, ExpYear: 2030, Fingerprint: "fp"}
	if diff := cmp.Diff(want, info); diff != "" {
		t.Errorf("Tokenize answer (-want +got):\n%s", diff)
	}
	got := s.received()[0]
	var body map[string]any
	if err := json.Unmarshal([]byte(got.body), &body); err != nil {
		t.Fatal(err)
	}
	wantBody := map[string]any{"number": testCard, "exp_month": 12.0, "exp_year": 2030.0, "cvc": testCVCText, "name": "Jane Doe"}
	if diff := cmp.Diff(wantBody, body); diff != "" || got.path != "/v1/cards" || got.contentType != "application/json" {
		t.Errorf("request %s %s, body (-want +got):\n%s", got.path, got.contentType, diff)
	}
}

// TestForwardWire: the request body is ForwardRequest's JSON without the
// client-only fields, and the answer's headers fill the response.
func TestForwardWire(t *testing.T) {
	s := startScripted(t, false, step{status: 200, body: forwardOK, headers: map[string]string{"X-Request-Id": "req_9"}})
	c, _ := s.client(t)
	req := sampleForward()
	req.Cards = map[string]string{"primary": "tok_a"}
	req.Card = ""
	resp, err := c.Forward(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if req.IdempotencyKey != "" {
		t.Errorf("Forward changed the caller's request: IdempotencyKey = %q", req.IdempotencyKey)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(s.received()[0].body), &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"destination": "acme-charges", "url": "https://api.acme.example/v1/charges", "method": "POST",
		"headers": map[string]any{"Content-Type": []any{"application/json"}},
		"body":    `{"number":"{{card.number}}"}`, "cards": map[string]any{"primary": "tok_a"},
	}
	if diff := cmp.Diff(want, body); diff != "" {
		t.Errorf("request body (-want +got):\n%s", diff)
	}
	if resp.ForwardID != "fwd_1" || resp.Outcome != Answered || resp.Status != 201 || resp.RequestID != "req_9" || resp.AllowlistVersion != 3 {
		t.Errorf("answer = %+v", resp)
	}
	if b, err := resp.BodyBytes(); err != nil || string(b) != `{"id":"ch_1"}` {
		t.Errorf("BodyBytes = %q, %v", b, err)
	}
}

func TestBodyBytes(t *testing.T) {
	r := &ForwardResponse{Body: "AP8=", BodyEncoding: "base64"}
	if b, err := r.BodyBytes(); err != nil || !bytes.Equal(b, []byte{0, 0xff}) {
		t.Errorf("BodyBytes = %v, %v, want [0 255]", b, err)
	}
	r.BodyEncoding = "gzip"
	if _, err := r.BodyBytes(); err == nil {
		t.Error("BodyBytes with an unknown encoding: no error")
	}
}

// TestErrorsNeverQuoteBodies: an answer that is not the gateway's, even
// one echoing the card, becomes an error that names neither.
func TestErrorsNeverQuoteBodies(t *testing.T) {
	echo := `<html>` + testCard + ` cvc ` + testCVCText + `</html>`
	for _, status := range []int{200, 201, 400, 502} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			s := startScripted(t, false, step{status: status, body: echo})
			c, _ := s.client(t, WithRetries(1, 1, 1))
			_, err := c.Tokenize(context.Background(), Card{Number: testCard, ExpMonth: 12, ExpYear: 2030, CVC: testCVCText})
			if err == nil {
				t.Fatal("Tokenize: no error")
			}
			for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err)} {
				if strings.Contains(text, "4242424242") || strings.Contains(text, testCVCText) || strings.Contains(text, "html") {
					t.Errorf("error text quotes the answer or the card: %s", text)
				}
			}
			if !errors.Is(err, ErrNoAnswer) {
				t.Errorf("errors.Is(err, ErrNoAnswer) = false for %v", err)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	e := &Error{Op: "forward", Code: ErrRateLimited, Message: "over the budget", Outcome: NotSent, Status: 429, RequestID: "req_1", Attempts: 3}
	if got, want := e.Error(), "client: forward: rate_limited (429, not_sent, 3 attempts): over the budget [req_1]"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(e, ErrRateLimited) || errors.Is(e, ErrStoreUnavailable) || errors.Is(e, ErrNoAnswer) {
		t.Error("errors.Is matches the wrong codes")
	}
	wrapped := fmt.Errorf("billing: charge: %w", e)
	var got *Error
	if !errors.As(wrapped, &got) || got.RequestID != "req_1" || !errors.Is(wrapped, ErrRateLimited) {
		t.Error("errors.As/Is do not see through wrapping")
	}
	none := &Error{Op: "tokenize", Err: context.DeadlineExceeded}
	if !errors.Is(none, ErrNoAnswer) || !errors.Is(none, context.DeadlineExceeded) || errors.Is(none, Code("")) {
		t.Error("a no-answer error does not match ErrNoAnswer and its cause only")
	}
}

// TestAnswerSizeCap: an answer over the cap is not read into memory.
func TestAnswerSizeCap(t *testing.T) {
	big := `{"forward_id":"` + strings.Repeat("x", 4096) + `"}`
	s := startScripted(t, false, step{status: 200, body: big})
	c, _ := s.client(t, WithMaxResponseBytes(1024), WithoutIdempotencyKeys())
	_, err := c.Forward(context.Background(), sampleForward())
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrNoAnswer) || !strings.Contains(err.Error(), "larger than 1024 bytes") {
		t.Fatalf("Forward error = %v, want no usable answer (too large)", err)
	}
	if e.Outcome != SentNoResponse || e.Status != 200 {
		t.Errorf("Outcome = %q, Status = %d; want sent_no_response, 200", e.Outcome, e.Status)
	}
}

// TestRedirectNotFollowed: a 3xx is reported, never followed.
func TestRedirectNotFollowed(t *testing.T) {
	s := startScripted(t, false, step{status: 307, body: "", headers: map[string]string{"Location": "/v1/elsewhere"}})
	c, _ := s.client(t, WithoutIdempotencyKeys())
	_, err := c.Forward(context.Background(), sampleForward())
	var e *Error
	if !errors.As(err, &e) || e.Status != 307 {
		t.Fatalf("Forward error = %v, want the 307 reported", err)
	}
	if n := len(s.received()); n != 1 {
		t.Errorf("the gateway received %d requests, want 1 (no redirect followed)", n)
	}
}

// TestConnectFailureIsRetried: when no connection can be made nothing was
// written, so even without a key the call is retried, and reports not_sent.
func TestConnectFailureIsRetried(t *testing.T) {
	s := startScripted(t, false)
	c, waits := s.client(t, WithoutIdempotencyKeys())
	s.srv.Close()
	_, err := c.Forward(context.Background(), sampleForward())
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("Forward error = %v, want no answer", err)
	}
	if e.Attempts != DefaultMaxAttempts || e.Outcome != NotSent || len(*waits) != DefaultMaxAttempts-1 {
		t.Errorf("Attempts = %d, Outcome = %q, waits = %d; want %d, not_sent, %d", e.Attempts, e.Outcome, len(*waits), DefaultMaxAttempts, DefaultMaxAttempts-1)
	}
}

// TestPEMRotation: a certificate renewed in place is used by the next
// handshake, and a half-written renewal keeps the previous one.
func TestPEMRotation(t *testing.T) {
	s := startScripted(t, false, step{status: 200, body: forwardOK}, step{status: 200, body: forwardOK}, step{status: 200, body: forwardOK})
	c, _ := s.client(t)
	ctx := context.Background()
	if _, err := c.Forward(ctx, sampleForward()); err != nil {
		t.Fatal(err)
	}
	s.writeCaller(t, "spiffe://cardgate.test/billing-renewed")
	c.CloseIdleConnections()
	if _, err := c.Forward(ctx, sampleForward()); err != nil {
		t.Fatal(err)
	}
	// A renewal caught between its two files: the key does not match.
	writeFile(t, filepath.Join(s.dir, "caller.key"), []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	c.CloseIdleConnections()
	if _, err := c.Forward(ctx, sampleForward()); err != nil {
		t.Fatalf("Forward during a half-written renewal: %v", err)
	}
	got := s.received()
	uris := []string{got[0].clientURI, got[1].clientURI, got[2].clientURI}
	want := []string{"spiffe://cardgate.test/billing", "spiffe://cardgate.test/billing-renewed", "spiffe://cardgate.test/billing-renewed"}
	if diff := cmp.Diff(want, uris); diff != "" {
		t.Errorf("client identities per call (-want +got):\n%s", diff)
	}
}

// TestCardNeverPrints: every way of printing or encoding a Card, its
// number or its CVC shows the mask only.
func TestCardNeverPrints(t *testing.T) {
	card := Card{Number: testCard, ExpMonth: 11, ExpYear: 2031, CVC: testCVCText, Name: "Jane Doe"}
	type wrapper struct {
		Card Card
		PAN  CardNumber
		CVC  CVC
	}
	var texts []string
	for _, v := range []any{card, &card, card.Number, card.CVC, wrapper{card, card.Number, card.CVC}, []Card{card}, map[string]CardNumber{"n": card.Number}} {
		for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s", "%T %v"} {
			texts = append(texts, fmt.Sprintf(f, v))
		}
		if b, err := json.Marshal(v); err == nil {
			texts = append(texts, string(b))
		} else {
			t.Errorf("json.Marshal(%T): %v", v, err)
		}
		var logged bytes.Buffer
		// Without the time, whose digits could hold the CVC's.
		noTime := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}
		slog.New(slog.NewJSONHandler(&logged, noTime)).Info("m", "v", v)
		slog.New(slog.NewTextHandler(&logged, noTime)).Info("m", "v", v)
		texts = append(texts, logged.String())
	}
	texts = append(texts, card.String(), card.GoString(), card.Number.String(), card.CVC.String())
	for _, text := range texts {
		for _, secret := range []string{testCard, "424242424242", testCVCText, "Jane", "2031", "3432343234323432"} {
			if strings.Contains(text, secret) {
				t.Errorf("printed %q, which holds %q", text, secret)
			}
		}
	}
	if got := card.Number.String(); got != "************4242" {
		t.Errorf("CardNumber.String() = %q, want ************4242", got)
	}
	if got := CardNumber("4242").String(); got != "****" {
		t.Errorf("a short number prints %q, want all masked", got)
	}
}

// TestForwardRequestPrintsNoSecrets: header values and the body of a
// forward request (processor credentials) are not printed.
func TestForwardRequestPrintsNoSecrets(t *testing.T) {
	req := sampleForward()
	req.Headers.Set("Authorization", "Bearer sk_test_secret")
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{req, *req} {
			if text := fmt.Sprintf(f, v); strings.Contains(text, "sk_test_secret") || strings.Contains(text, "card.number") {
				t.Errorf("Sprintf(%q) = %s: holds a header value or the body", f, text)
			}
		}
	}
}

// TestConnectionsAreReused: calls share the pooled transport's
// connections, over HTTP/1.1 and HTTP/2: only the first call dials and
// handshakes.
func TestConnectionsAreReused(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2], func(t *testing.T) {
			const calls = 5
			steps := make([]step, calls)
			for i := range steps {
				steps[i] = step{status: 200, body: forwardOK}
			}
			s := startScripted(t, h2, steps...)
			var mu sync.Mutex
			var reused []bool
			trace := func(next http.RoundTripper) http.RoundTripper {
				return roundTripper(func(r *http.Request) (*http.Response, error) {
					ctx := httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
						mu.Lock()
						reused = append(reused, info.Reused)
						mu.Unlock()
					}})
					return next.RoundTrip(r.WithContext(ctx))
				})
			}
			c, _ := s.client(t, WithMiddleware(trace))
			for range calls {
				if _, err := c.Forward(context.Background(), sampleForward()); err != nil {
					t.Fatal(err)
				}
			}
			want := []bool{false, true, true, true, true}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(reused, want) {
				t.Errorf("connection reused per call = %v, want %v", reused, want)
			}
			for _, r := range s.received() {
				if wantProto := map[bool]int{false: 1, true: 2}[h2]; r.proto != wantProto {
					t.Errorf("request over HTTP/%d, want HTTP/%d", r.proto, wantProto)
				}
			}
		})
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestPEMFilesTrustOnlyTheirCA: the gateway's certificate must chain to
// the CA file (not the system roots, not the callers' CA) and name the
// URL's host; otherwise the handshake fails and nothing is sent.
func TestPEMFilesTrustOnlyTheirCA(t *testing.T) {
	other, err := testpki.NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ca   func(s *scripted) []byte
		url  func(s *scripted) string
	}{
		{"another CA", func(*scripted) []byte { return other.PEM() }, func(s *scripted) string { return s.srv.URL }},
		{"the callers' CA", func(s *scripted) []byte { return s.callerCA.PEM() }, func(s *scripted) string { return s.srv.URL }},
		{"a host the certificate does not name", func(s *scripted) []byte { return s.serverCA.PEM() },
			func(s *scripted) string { return strings.Replace(s.srv.URL, "127.0.0.1", "localhost", 1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startScripted(t, false, step{status: 200, body: forwardOK})
			writeFile(t, filepath.Join(s.dir, "ca.pem"), tt.ca(s))
			c, err := New(tt.url(s), WithPEMFiles(filepath.Join(s.dir, "caller.crt"), filepath.Join(s.dir, "caller.key"), filepath.Join(s.dir, "ca.pem")),
				WithRetries(1, time.Millisecond, time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseIdleConnections()
			_, err = c.Forward(context.Background(), sampleForward())
			var e *Error
			var verr *tls.CertificateVerificationError
			if !errors.As(err, &e) || !errors.Is(err, ErrNoAnswer) || e.Outcome != NotSent || !errors.As(err, &verr) {
				t.Fatalf("Forward = %v, want no answer, not_sent, a certificate verification error", err)
			}
			if n := len(s.received()); n != 0 {
				t.Errorf("the gateway received %d requests, want none", n)
			}
		})
	}
}
