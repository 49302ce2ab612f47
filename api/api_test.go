package api

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cardgate/cardgate/forwarder"
	"github.com/cardgate/cardgate/internal/testpki"
	"github.com/cardgate/cardgate/vaultclient"
)

// recorder stands in for the card and forward services: these tests are
// about the HTTP layer, and both interfaces are declared by this package.
type recorder struct {
	caller string
	err    error
	calls  int
}

func (r *recorder) Tokenize(ctx context.Context, in vaultclient.CardInput) (*vaultclient.TokenInfo, error) {
	r.calls++
	if r.err != nil {
		return nil, r.err
	}
	return &vaultclient.TokenInfo{Token: "tok_test", Last4: "4242"}, nil
}

func (r *recorder) Forward(ctx context.Context, req *forwarder.Request) (*forwarder.Response, error) {
	r.calls++
	r.caller = req.Caller
	if r.err != nil {
		return nil, r.err
	}
	return &forwarder.Response{Outcome: forwarder.Answered, Status: 200}, nil
}

func newHandler(t *testing.T, rec *recorder, o Options) http.Handler {
	t.Helper()
	o.Cards, o.Forwarder = rec, rec
	if o.MaxRequestBytes == 0 {
		o.MaxRequestBytes = 1024
	}
	h, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func do(h http.Handler, method, path, body string, hdr map[string]string) (*httptest.ResponseRecorder, errorBody) {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr = "127.0.0.1:5555"
	r.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var eb errorBody
	_ = json.Unmarshal(w.Body.Bytes(), &eb)
	return w, eb
}

var devCaller = map[string]string{DevCallerHeader: "billing"}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, body  string
		contentType string
		status      int
		code        string
	}{
		{"unknown field", `{"destination":"a","proxy":true}`, "", 400, CodeInvalidJSON},
		{"wrong type", `{"card":4242424242424242}`, "", 400, CodeInvalidJSON},
		{"trailing data", `{"destination":"a"}{"x":1}`, "", 400, CodeInvalidJSON},
		{"malformed", `{"destination":`, "", 400, CodeInvalidJSON},
		{"empty", ``, "", 400, CodeInvalidJSON},
		{"oversized", `{"body":"` + strings.Repeat("x", 2000) + `"}`, "", 413, CodeRequestTooLarge},
		{"not json", `destination=a`, "application/x-www-form-urlencoded", 415, CodeUnsupportedMediaType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			h := newHandler(t, rec, Options{DevCallers: true})
			hdr := map[string]string{DevCallerHeader: "billing"}
			if tt.contentType != "" {
				hdr["Content-Type"] = tt.contentType
			}
			w, eb := do(h, "POST", "/v1/forward", tt.body, hdr)
			if w.Code != tt.status || eb.Error.Code != tt.code {
				t.Errorf("POST %q = %d %q, want %d %q", tt.body, w.Code, eb.Error.Code, tt.status, tt.code)
			}
			if rec.calls != 0 {
				t.Errorf("the forwarder was called %d times for a bad request", rec.calls)
			}
			if eb.Error.RequestID == "" || eb.Error.RequestID != w.Header().Get(RequestIDHeader) {
				t.Errorf("request_id = %q, header %q; want the same non-empty id", eb.Error.RequestID, w.Header().Get(RequestIDHeader))
			}
			if eb.Error.Outcome != forwarder.NotSent {
				t.Errorf("outcome = %q, want %q", eb.Error.Outcome, forwarder.NotSent)
			}
			if strings.Contains(w.Body.String(), "4242424242424242") {
				t.Errorf("the answer echoes the number: %s", w.Body.String())
			}
		})
	}
}

type codedErr struct{ code string }

func (e codedErr) Error() string         { return "secret internal detail" }
func (e codedErr) ErrorCode() string     { return e.code }
func (e codedErr) PublicMessage() string { return "public " + e.code }

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		code   string
		msg    string
	}{
		{"documented code", codedErr{"destination_not_allowed"}, 403, "destination_not_allowed", "public destination_not_allowed"},
		{"wrapped", wrap(codedErr{"token_not_found"}), 404, "token_not_found", "public token_not_found"},
		{"undocumented code fails safe", codedErr{"brand_new_code"}, 500, CodeInternal, "internal error"},
		{"plain error", errors.New("dial tcp 10.0.0.1: secret"), 500, CodeInternal, "internal error"},
		{"unavailable", codedErr{"store_unavailable"}, 503, "store_unavailable", "public store_unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHandler(t, &recorder{err: tt.err}, Options{DevCallers: true})
			w, eb := do(h, "POST", "/v1/cards", `{"number":"x"}`, devCaller)
			if w.Code != tt.status || eb.Error.Code != tt.code || eb.Error.Message != tt.msg {
				t.Errorf("error %v → %d %q %q, want %d %q %q", tt.err, w.Code, eb.Error.Code, eb.Error.Message, tt.status, tt.code, tt.msg)
			}
			if strings.Contains(w.Body.String(), "secret") {
				t.Errorf("the answer leaks the internal cause: %s", w.Body.String())
			}
		})
	}
}

func wrap(err error) error { return &wrapped{err} }

type wrapped struct{ err error }

func (w *wrapped) Error() string { return "outer: " + w.err.Error() }
func (w *wrapped) Unwrap() error { return w.err }

func TestDevCaller(t *testing.T) {
	tests := []struct {
		name       string
		devCallers bool
		remote     string
		header     string
		status     int
		caller     string
	}{
		{"dev mode on loopback", true, "127.0.0.1:4000", "billing", 200, "dev:billing"},
		{"ipv6 loopback", true, "[::1]:4000", "billing", 200, "dev:billing"},
		{"not in dev mode", false, "127.0.0.1:4000", "billing", 401, ""},
		{"not from loopback", true, "10.1.2.3:4000", "billing", 401, ""},
		{"no header", true, "127.0.0.1:4000", "", 401, ""},
		{"bad name", true, "127.0.0.1:4000", "spiffe://x/y", 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			h := newHandler(t, rec, Options{DevCallers: tt.devCallers})
			r := httptest.NewRequest("POST", "/v1/forward", strings.NewReader(`{"destination":"d"}`))
			r.RemoteAddr = tt.remote
			r.Header.Set("Content-Type", "application/json")
			if tt.header != "" {
				r.Header.Set(DevCallerHeader, tt.header)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status || rec.caller != tt.caller {
				t.Errorf("status %d caller %q, want %d %q (%s)", w.Code, rec.caller, tt.status, tt.caller, w.Body.String())
			}
		})
	}
}

// TestMTLSIdentity runs a real TLS server that requires and verifies client
// certificates, and checks which identity each certificate yields.
func TestMTLSIdentity(t *testing.T) {
	ca, err := testpki.NewCA("callers")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	srv := httptest.NewUnstartedServer(newHandler(t, rec, Options{}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()

	tests := []struct {
		name   string
		leaf   testpki.Leaf
		status int
		caller string
	}{
		{"spiffe uri san", testpki.Leaf{URIs: []string{"spiffe://cardgate.test/billing"}, DNSNames: []string{"billing.internal"}, Client: true}, 200, "spiffe://cardgate.test/billing"},
		{"dns san", testpki.Leaf{DNSNames: []string{"billing.internal"}, Client: true}, 200, "billing.internal"},
		{"no usable san", testpki.Leaf{URIs: []string{"https://not-spiffe.example/x"}, Client: true}, 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec.caller = ""
			cert, err := ca.Issue(tt.leaf)
			if err != nil {
				t.Fatal(err)
			}
			c := srv.Client()
			tr := c.Transport.(*http.Transport).Clone()
			tr.TLSClientConfig.Certificates = []tls.Certificate{cert.TLS}
			c = &http.Client{Transport: tr}
			resp, err := c.Post(srv.URL+"/v1/forward", "application/json", strings.NewReader(`{"destination":"d"}`))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || rec.caller != tt.caller {
				t.Errorf("status %d caller %q, want %d %q", resp.StatusCode, rec.caller, tt.status, tt.caller)
			}
		})
	}

	// A certificate from another CA never completes the handshake.
	other, _ := testpki.NewCA("other")
	cert, _ := other.Issue(testpki.Leaf{URIs: []string{"spiffe://cardgate.test/billing"}, Client: true})
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.Certificates = []tls.Certificate{cert.TLS}
	if _, err := (&http.Client{Transport: tr}).Post(srv.URL+"/v1/forward", "application/json", strings.NewReader(`{}`)); err == nil {
		t.Error("a certificate from an unknown CA was accepted")
	}
}

func TestCallerFromTLSNeedsVerifiedChain(t *testing.T) {
	if got, err := CallerFromTLS(&tls.ConnectionState{}); got != "" || errorCode(err) != CodeUnauthenticated {
		t.Errorf("CallerFromTLS(unverified) = %q, %v; want unauthenticated", got, err)
	}
}

func TestReadyz(t *testing.T) {
	h := newHandler(t, &recorder{}, Options{Ready: []Check{
		{Name: "ok", Check: func(context.Context) (string, error) { return "fine", nil }},
		{Name: "down", Check: func(context.Context) (string, error) { return "", codedErr{"store_unavailable"} }},
	}})
	w, _ := do(h, "GET", "/readyz", "", nil)
	var rep readyReport
	if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if w.Code != 503 || rep.Checks["ok"].OK != true || rep.Checks["down"].OK != false || rep.Checks["down"].Detail != "public store_unavailable" {
		t.Errorf("readyz = %d %+v, want 503 with ok passing and down failing", w.Code, rep)
	}
	if w, _ := do(h, "GET", "/healthz", "", nil); w.Code != 200 {
		t.Errorf("healthz = %d, want 200", w.Code)
	}
}

func TestRoutes(t *testing.T) {
	h := newHandler(t, &recorder{}, Options{DevCallers: true})
	if w, eb := do(h, "GET", "/v1/nope", "", nil); w.Code != 404 || eb.Error.Code != CodeNotFound {
		t.Errorf("GET /v1/nope = %d %q, want 404 %s", w.Code, eb.Error.Code, CodeNotFound)
	}
	if w, eb := do(h, "GET", "/v1/forward", "", devCaller); w.Code != 405 || eb.Error.Code != CodeMethodNotAllowed {
		t.Errorf("GET /v1/forward = %d %q, want 405 %s", w.Code, eb.Error.Code, CodeMethodNotAllowed)
	}
}

func TestPanicIsAnInternalError(t *testing.T) {
	h, err := New(Options{Cards: panicker{}, Forwarder: &recorder{}, DevCallers: true})
	if err != nil {
		t.Fatal(err)
	}
	w, eb := do(h, "POST", "/v1/cards", `{"number":"4242424242424242"}`, devCaller)
	if w.Code != 500 || eb.Error.Code != CodeInternal || strings.Contains(w.Body.String(), "4242") {
		t.Errorf("panic → %d %s, want 500 internal_error without the panic value", w.Code, w.Body.String())
	}
}

type panicker struct{}

func (panicker) Tokenize(ctx context.Context, in vaultclient.CardInput) (*vaultclient.TokenInfo, error) {
	panic("boom with " + in.Number)
}

// The access log names the route, never the caller-chosen path or method.
func TestAccessLogHasNoRawPath(t *testing.T) {
	var buf strings.Builder
	h := newHandler(t, &recorder{}, Options{DevCallers: true, Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	do(h, "GET", "/v1/cards/4000056655665556", "", nil)
	do(h, "4111111111111111", "/v1/forward", "", nil)
	do(h, "POST", "/v1/forward", `{}`, devCaller)
	log := buf.String()
	if strings.Contains(log, "4000056655665556") || strings.Contains(log, "4111111111111111") {
		t.Errorf("access log holds a card number from the path or method:\n%s", log)
	}
	if !strings.Contains(log, `"route":"/v1/forward"`) || !strings.Contains(log, `"route":"unmatched"`) {
		t.Errorf("access log does not name the routes:\n%s", log)
	}
}

// Keys and methods are caller input: the answer names them only when they
// cannot be a card number.
func TestErrorsDoNotEchoCardLikeInput(t *testing.T) {
	h := newHandler(t, &recorder{}, Options{DevCallers: true})
	for _, body := range []string{`{"4242424242424242":1}`, `{"card_4242424242424242":1}`} {
		if w, _ := do(h, "POST", "/v1/forward", body, devCaller); w.Code != 400 || strings.Contains(w.Body.String(), "4242") {
			t.Errorf("POST %s = %d %s, want 400 without the key", body, w.Code, w.Body.String())
		}
	}
	if w, eb := do(h, "POST", "/v1/forward", `{"proxy":1}`, devCaller); eb.Error.Message != `unknown field "proxy"` {
		t.Errorf("unknown field message = %q (%d), want it named", eb.Error.Message, w.Code)
	}
	w, _ := do(h, "4111111111111111", "/v1/forward", "", devCaller)
	if strings.Contains(w.Body.String(), "4111") {
		t.Errorf("method-not-allowed answer echoes the method: %s", w.Body.String())
	}
}
