package forwarder

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	otelcodes "go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/vaultclient"
)

// echo answers with the request body and a few headers a careless
// processor might send.
func echo(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Add("Set-Cookie", "session=abc")
	w.Header().Set("Set-Cookie2", "old=1")
	w.Header().Set("X-Echo-Card", r.Header.Get("X-Card-Number"))
	w.Header().Set("Keep-Alive", "timeout=5")
	w.Header().Set("X-Request-Id", "proc-1")
	w.WriteHeader(http.StatusCreated)
	w.Write(b)
}

func TestForwardHappyPath(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		name := "http1"
		if h2 {
			name = "http2"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnvOn(t, newProcessor(t, echo, h2))
			req := e.jsonRequest(`{"number":"{{card.number}}","cvc":"{{ card.cvc }}","exp":"{{card.exp_month}}/{{card.exp_year}}","month":{{card.exp_month}},"name":"{{card.name}}"}`)
			req.Headers["X-Card-Number"] = []string{"{{card.number}}"}
			req.Headers["Authorization"] = []string{"Bearer sk_test_1"}
			req.Headers["X-Forwarded-For"] = []string{"10.0.0.1"}
			req.Headers["Cookie"] = []string{"a=b"}
			req.Headers["User-Agent"] = []string{"evil"}
			req.Headers["X-Cardgate-Caller"] = []string{"admin"}

			resp, err := e.f.Forward(context.Background(), req)
			if err != nil {
				t.Fatalf("Forward: %v", err)
			}

			// The processor got the real card, correctly escaped.
			got := e.p.requests()
			if len(got) != 1 {
				t.Fatalf("processor got %d requests, want 1", len(got))
			}
			pr := got[0]
			var sent map[string]any
			if err := json.Unmarshal(pr.body, &sent); err != nil {
				t.Fatalf("processor body %q is not JSON: %v", pr.body, err)
			}
			want := map[string]any{"number": testPAN, "cvc": testCVC, "exp": "03/2031", "month": float64(3), "name": testName}
			if diff := cmp.Diff(want, sent); diff != "" {
				t.Errorf("processor body (-want +got):\n%s", diff)
			}
			if pr.header.Get("X-Card-Number") != testPAN {
				t.Errorf("processor X-Card-Number = %q, want the PAN", pr.header.Get("X-Card-Number"))
			}
			for _, h := range []string{"X-Forwarded-For", "Cookie", "X-Cardgate-Caller"} {
				if v := pr.header.Get(h); v != "" {
					t.Errorf("processor got %s = %q, want it stripped", h, v)
				}
			}
			if ua := pr.header.Get("User-Agent"); ua != UserAgent {
				t.Errorf("User-Agent = %q, want %q", ua, UserAgent)
			}
			if pr.header.Get("Authorization") != "Bearer sk_test_1" {
				t.Errorf("Authorization not passed through")
			}
			if wantHost := "pay.example.com:" + strconv.Itoa(e.p.port); pr.host != wantHost {
				t.Errorf("Host = %q, want %q", pr.host, wantHost)
			}
			if wantProto := map[bool]int{false: 1, true: 2}[h2]; pr.proto != wantProto {
				t.Errorf("proto = HTTP/%d, want HTTP/%d", pr.proto, wantProto)
			}

			// The caller got it masked.
			if resp.Outcome != Answered || resp.Status != http.StatusCreated {
				t.Errorf("Outcome, Status = %q, %d; want answered, 201", resp.Outcome, resp.Status)
			}
			if !strings.HasPrefix(resp.ForwardID, "fwd_") || resp.AllowlistVersion != 7 {
				t.Errorf("ForwardID, AllowlistVersion = %q, %d", resp.ForwardID, resp.AllowlistVersion)
			}
			var back map[string]any
			if err := json.Unmarshal([]byte(resp.Body), &back); err != nil {
				t.Fatalf("caller body %q is not JSON: %v", resp.Body, err)
			}
			wantBack := map[string]any{"number": "************4242", "cvc": "***", "exp": "03/2031", "month": float64(3), "name": testName}
			if diff := cmp.Diff(wantBack, back); diff != "" {
				t.Errorf("caller body (-want +got):\n%s", diff)
			}
			if v := resp.Headers.Get("X-Echo-Card"); v != "************4242" {
				t.Errorf("X-Echo-Card = %q, want masked", v)
			}
			for _, h := range []string{"Set-Cookie", "Set-Cookie2", "Keep-Alive"} {
				if _, ok := resp.Headers[h]; ok {
					t.Errorf("response header %s was not stripped", h)
				}
			}
			if resp.Headers.Get("X-Request-Id") != "proc-1" {
				t.Errorf("ordinary response header lost")
			}

			// The CVC was used: it was consumed as it was read.
			if _, consumed := e.cards.counts(); consumed != 1 {
				t.Errorf("DetokenizeConsumingCVC calls = %d, want 1", consumed)
			}

			// The log line is there and holds no card data.
			logs := e.logText()
			for _, secret := range []string{testPAN, "4242 4242", testName, "Brien", `"` + testCVC + `"`, "sk_test_1"} {
				if strings.Contains(logs, secret) {
					t.Errorf("log contains %q:\n%s", secret, logs)
				}
			}
			for _, want := range []string{`"forward_id":"` + resp.ForwardID, `"outcome":"answered"`, `"resolved_addr":"127.0.0.1:`, `"request_id":"req_test"`} {
				if !strings.Contains(logs, want) {
					t.Errorf("log lacks %s:\n%s", want, logs)
				}
			}
		})
	}
}

// TestForwardJSONEscapes: a name made to break out of a JSON string stays
// inside it, including after an escaped backslash in the template.
func TestForwardJSONEscapes(t *testing.T) {
	const name = `"],[1,true],[\`
	e := newEnv(t, echo)
	e.cards.cards[testToken] = func() *vaultclient.Card {
		return &vaultclient.Card{Token: testToken, Number: vaultclient.NewPAN(testPAN), ExpMonth: 3, ExpYear: 2031, Name: vaultclient.NewName(name)}
	}
	if _, err := e.f.Forward(context.Background(), e.jsonRequest(`[["\\{{card.name}}","x"]]`)); err != nil {
		t.Fatalf("Forward: %v", err)
	}
	var got [][]string
	body := e.p.requests()[0].body
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("processor body %s is not the template's shape: %v", body, err)
	}
	if want := [][]string{{`\` + name, "x"}}; !cmp.Equal(got, want) {
		t.Errorf("processor body = %q, want %q", got, want)
	}
}

func TestForwardFormEscaping(t *testing.T) {
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	req := e.jsonRequest("card%5Bnumber%5D={{card.number}}&card%5Bname%5D={{card.name}}&cvc={{card.cvc}}&exp={{card.exp_month}}%2F{{card.exp_year}}")
	req.Headers = http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	if _, err := e.f.Forward(context.Background(), req); err != nil {
		t.Fatalf("Forward: %v", err)
	}
	got := e.p.requests()[0]
	r, _ := http.NewRequest("POST", "/", strings.NewReader(string(got.body)))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if err := r.ParseForm(); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"card[number]": {testPAN}, "card[name]": {testName}, "cvc": {testCVC}, "exp": {"03/2031"}}
	if diff := cmp.Diff(want, map[string][]string(r.PostForm)); diff != "" {
		t.Errorf("processor form (-want +got):\n%s", diff)
	}
}

// TestForwardMasksFormEncodedResponse: a processor that answers in form
// encoding spells a card with '+' or percent-escapes, and the caller still
// sees it masked, in the body and in a header.
func TestForwardMasksFormEncodedResponse(t *testing.T) {
	const body = "card=4242+4242+4242+4242&spaced=4242%204242%204242%204242&dashed=4242%2D4242%2d4242%2D4242&digits=%34%32%34%32424242424242&ok=1"
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Card", "4242+4242+4242+4242")
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
		w.Write([]byte(body))
	})
	resp, err := e.f.Forward(context.Background(), e.jsonRequest(`{"n":"{{card.number}}"}`))
	if err != nil {
		t.Fatalf("Forward: %v", err)
	}
	const want = "card=****+****+****+4242&spaced=****%20****%20****%204242&dashed=****%2D****%2d****%2D4242&digits=%2A%2A%2A%2A********4242&ok=1"
	if resp.Body != want {
		t.Errorf("caller body = %q, want %q", resp.Body, want)
	}
	if got := resp.Headers.Get("X-Card"); got != "****+****+****+4242" {
		t.Errorf("X-Card = %q, want masked", got)
	}
}

// TestForwardRefusesBeforeSending covers templates, slots and literal cards.
// In each case the processor receives nothing.
func TestForwardRefusesBeforeSending(t *testing.T) {
	tests := []struct {
		name     string
		mod      func(*Request)
		wantCode string
		wantMsg  string // substring of the public message
	}{
		{"unknown placeholder", func(r *Request) { r.Body = `{"n":"{{card.pin}}"}` }, CodeInvalidTemplate, "{{card.pin}}"},
		{"unknown namespace", func(r *Request) { r.Body = `{"n":"{{env.SECRET}}"}` }, CodeInvalidTemplate, "{{env.SECRET}}"},
		{"unclosed", func(r *Request) { r.Body = `{"n":"{{card.number"}` }, CodeInvalidTemplate, "without a closing"},
		{"digits in braces not echoed", func(r *Request) { r.Body = `{"n":"{{12345}}"}` }, CodeInvalidTemplate, "malformed placeholder"},
		{"placeholder in path", func(r *Request) { r.URL = strings.Replace(r.URL, "/charges", "/{{card.number}}", 1) }, CodeInvalidTemplate, "url"},
		{"placeholder in query", func(r *Request) { r.URL += "?pan={{card.number}}" }, CodeInvalidTemplate, "url"},
		{"encoded placeholder in query", func(r *Request) { r.URL += "?pan=%7B%7Bcard.number%7D%7D" }, CodeInvalidTemplate, "url"},
		{"placeholder in unlisted header", func(r *Request) { r.Headers["X-Other"] = []string{"{{card.number}}"} }, CodeInvalidTemplate, "X-Other"},
		{"placeholder in stripped header", func(r *Request) { r.Headers["Cookie"] = []string{"pan={{card.number}}"} }, CodeInvalidTemplate, "Cookie"},
		{"placeholder in text/plain body", func(r *Request) {
			r.Headers["Content-Type"] = []string{"text/plain"}
			r.Body = "{{card.number}}"
		}, CodeInvalidTemplate, "Content-Type"},
		{"placeholder in body without content type", func(r *Request) { delete(r.Headers, "Content-Type"); r.Body = "{{card.number}}" }, CodeInvalidTemplate, "Content-Type"},
		{"number outside JSON string", func(r *Request) { r.Body = `{"n":{{card.number}}}` }, CodeInvalidTemplate, "inside a JSON string"},
		{"name outside JSON string", func(r *Request) { r.Body = `{"n":{{card.name}}}` }, CodeInvalidTemplate, "inside a JSON string"},
		{"placeholder as JSON key breaks nothing but invalid JSON", func(r *Request) { r.Body = `{"n":"{{card.number}}"` }, CodeInvalidTemplate, "not valid JSON"},
		{"placeholder after a backslash", func(r *Request) { r.Body = `[["\{{card.name}}"x"]]` }, CodeInvalidTemplate, "backslash"}, // a name `"],[1,true],[` broke out
		{"placeholder after a backslash, probe valid", func(r *Request) { r.Body = `{"n":"\{{card.number}}\""}` }, CodeInvalidTemplate, "backslash"},
		{"placeholder after an escaped backslash is fine but JSON still checked", func(r *Request) { r.Body = `{"n":"\\{{card.number}}"` }, CodeInvalidTemplate, "not valid JSON"},
		{"placeholder inside a unicode escape", func(r *Request) { r.Body = `{"n":"\u{{card.exp_month}}0041"}` }, CodeInvalidTemplate, "not valid JSON"},
		{"literal card in body", func(r *Request) { r.Body = `{"n":"4242 4242 4242 4242"}` }, CodeLiteralCard, "body"},
		{"literal card in body without placeholders", func(r *Request) {
			r.Headers["Content-Type"] = []string{"text/plain"}
			r.Body = "pan 4242-4242-4242-4242"
		}, CodeLiteralCard, "body"},
		{"literal card in query", func(r *Request) { r.URL += "?pan=4242424242424242" }, CodeLiteralCard, "url"},
		{"literal card with nbsp in query", func(r *Request) { r.URL += "?pan=4242%C2%A04242%C2%A04242%C2%A04242" }, CodeLiteralCard, "url"},
		{"literal card with dots in body", func(r *Request) {
			r.Headers["Content-Type"] = []string{"text/plain"}
			r.Body = "pan 4242.4242.4242.4242"
		}, CodeLiteralCard, "body"},
		{"literal card with wide gaps in body", func(r *Request) { r.Body = `{"n":"4242 - 4242 / 4242 _ 4242"}` }, CodeLiteralCard, "body"},
		{"literal card json-escaped in body", func(r *Request) { r.Body = `{"n":"\u0034242424242424242"}` }, CodeLiteralCard, "body"},
		{"literal card fullwidth in header", func(r *Request) { r.Headers["X-Ref"] = []string{"４２４２４２４２４２４２４２４２"} }, CodeLiteralCard, "X-Ref"},
		{"literal card with dots as token", func(r *Request) { r.Card = "4242.4242.4242.4242" }, CodeLiteralCard, "card"},
		{"literal card percent-encoded in query", func(r *Request) { r.URL += "?pan=%34242424242424242" }, CodeLiteralCard, "url"},
		{"literal card in path", func(r *Request) { r.URL = strings.Replace(r.URL, "/charges", "/4242424242424242", 1) }, CodeLiteralCard, "url"},
		{"literal card in header", func(r *Request) { r.Headers["X-Ref"] = []string{"5555 5555 5555 4444"} }, CodeLiteralCard, "X-Ref"},
		{"literal card in listed card header", func(r *Request) { r.Headers["X-Card-Number"] = []string{"4242424242424242"} }, CodeLiteralCard, "X-Card-Number"},
		{"literal card as token", func(r *Request) { r.Card = "4242424242424242" }, CodeLiteralCard, "card"},
		{"literal card form-spelled in json body", func(r *Request) { r.Body = `{"n":"4242+4242+4242+4242"}` }, CodeLiteralCard, "body"},
		{"literal card percent-spaced in header", func(r *Request) { r.Headers["X-Ref"] = []string{"4242%204242%2D4242%2d4242"} }, CodeLiteralCard, "X-Ref"},
		{"literal card percent-escaped digits in body", func(r *Request) { r.Body = `{"n":"%34%32%34%32424242424242"}` }, CodeLiteralCard, "body"},
		{"literal card with pluses as token", func(r *Request) { r.Card = "4242+4242+4242+4242" }, CodeLiteralCard, "card"},
		{"literal card in form body encoded", func(r *Request) {
			r.Headers["Content-Type"] = []string{"application/x-www-form-urlencoded"}
			r.Body = "n={{card.number}}&x=4242%204242%204242%204242"
		}, CodeLiteralCard, "body"},
		{"header value with newline", func(r *Request) { r.Headers["X-A"] = []string{"a\r\nX-B: c"} }, CodeInvalidRequest, "X-A"},
		{"bad header name", func(r *Request) { r.Headers["X A"] = []string{"1"} }, CodeInvalidRequest, "header name"},
		{"duplicate header by case", func(r *Request) { r.Headers["content-type"] = []string{"application/json"} }, CodeInvalidRequest, "Content-Type"},
		{"duplicate header named by a card", func(r *Request) {
			r.Headers["X-4242424242424242"] = []string{"1"}
			r.Headers["x-4242424242424242"] = []string{"2"}
		}, CodeLiteralCard, "headers"},
		{"lowercase method", func(r *Request) { r.Method = "post" }, CodeInvalidRequest, "method"},
		{"unknown method", func(r *Request) { r.Method = "TRACE" }, CodeInvalidRequest, "method"},
		{"method injection", func(r *Request) { r.Method = "POST /x HTTP/1.1" }, CodeInvalidRequest, "method"},
		{"no destination", func(r *Request) { r.Destination = "" }, CodeInvalidRequest, "destination"},
		{"no card", func(r *Request) { r.Card = "" }, CodeInvalidRequest, "card"},
		{"no url", func(r *Request) { r.URL = "" }, CodeInvalidRequest, "url"},
		{"body too large", func(r *Request) { r.Body = `"` + strings.Repeat("a", DefaultMaxRequestBodyBytes) + `"` }, CodeInvalidRequest, "body"},
		{"unknown destination", func(r *Request) { r.Destination = "nope" }, "destination_not_allowed", ""},
		{"unknown caller", func(r *Request) { r.Caller = "spiffe://cardgate.test/other" }, "caller_not_allowed", ""},
		{"no caller", func(r *Request) { r.Caller = "" }, CodeInternal, ""},
		{"method not in entry", func(r *Request) { r.Method = "DELETE" }, "method_not_allowed", ""},
		{"path outside prefix", func(r *Request) { r.URL = strings.Replace(r.URL, "/v1/charges", "/v2/charges", 1) }, "destination_not_allowed", ""},
		{"path prefix boundary", func(r *Request) { r.URL = strings.Replace(r.URL, "/v1/charges", "/v10/charges", 1) }, "destination_not_allowed", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, echo)
			req := e.jsonRequest(`{"number":"{{card.number}}"}`)
			tt.mod(req)
			fe := forwardErr(t, e.f, req)
			if fe.Code != tt.wantCode || fe.Outcome != NotSent {
				t.Errorf("Forward = %q/%q (%v), want %q/not_sent", fe.Code, fe.Outcome, fe, tt.wantCode)
			}
			if !strings.Contains(fe.Message, tt.wantMsg) {
				t.Errorf("message %q does not name %q", fe.Message, tt.wantMsg)
			}
			if strings.Contains(fe.Error(), testPAN) || strings.Contains(fe.Error(), "4242 4242") || strings.Contains(fe.Error(), "12345") {
				t.Errorf("error %q echoes card-like input", fe.Error())
			}
			if n := len(e.p.requests()); n != 0 {
				t.Errorf("processor got %d requests, want 0", n)
			}
		})
	}
}

// TestForwardFieldNotAllowed: the entry may not receive the CVC.
func TestForwardFieldNotAllowed(t *testing.T) {
	e := newEnv(t, echo, func(o *Options, d *allowlist.Destination) {
		d.Fields = []allowlist.Field{allowlist.FieldNumber}
	})
	fe := forwardErr(t, e.f, e.jsonRequest(`{"n":"{{card.number}}","c":"{{card.cvc}}"}`))
	if fe.Code != "card_field_not_allowed" {
		t.Errorf("code = %q, want card_field_not_allowed", fe.Code)
	}
	if d, _ := e.cards.counts(); d != 0 {
		t.Errorf("Detokenize called %d times before the allowlist allowed it", d)
	}
}

func TestForwardCardErrors(t *testing.T) {
	t.Run("unknown token", func(t *testing.T) {
		e := newEnv(t, echo)
		req := e.jsonRequest(`{"n":"{{card.number}}"}`)
		req.Card = "tok_unknown"
		fe := forwardErr(t, e.f, req)
		if fe.Code != vaultclient.CodeTokenNotFound || fe.Outcome != NotSent {
			t.Errorf("Forward = %q/%q, want token_not_found/not_sent", fe.Code, fe.Outcome)
		}
	})
	t.Run("cvc consumed", func(t *testing.T) {
		e := newEnv(t, echo)
		e.cards.cards[testToken] = func() *vaultclient.Card {
			return &vaultclient.Card{Number: vaultclient.NewPAN(testPAN), ExpMonth: 1, ExpYear: 2030}
		}
		fe := forwardErr(t, e.f, e.jsonRequest(`{"c":"{{card.cvc}}"}`))
		if fe.Code != CodeCVCNotAvailable || len(e.p.requests()) != 0 {
			t.Errorf("Forward = %q, processor got %d; want cvc_not_available, 0", fe.Code, len(e.p.requests()))
		}
	})
	t.Run("store down", func(t *testing.T) {
		e := newEnv(t, echo)
		e.cards.detokErr = errors.New("redis: connection refused")
		fe := forwardErr(t, e.f, e.jsonRequest(`{"n":"{{card.number}}"}`))
		if fe.Code != CodeInternal || fe.Message == "" || strings.Contains(fe.Message, "redis") {
			t.Errorf("Forward = %q %q, want internal_error without the cause in the message", fe.Code, fe.Message)
		}
	})
	// The CVC is single use whatever the first forward's outcome: the
	// second forward, even after a not_sent failure, finds it gone.
	for _, tt := range []struct {
		name    string
		h       http.HandlerFunc
		mod     envOpt
		outcome Outcome
	}{
		{"after answered", echo, nil, Answered},
		{"after sent_no_response", func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}, nil, SentNoResponse},
		{"after not_sent", echo, func(o *Options, d *allowlist.Destination) { o.RootCAs = newEmptyPool() }, NotSent},
	} {
		t.Run("cvc single use "+tt.name, func(t *testing.T) {
			var opts []envOpt
			if tt.mod != nil {
				opts = append(opts, tt.mod)
			}
			e := newEnv(t, tt.h, opts...)
			resp, err := e.f.Forward(context.Background(), e.jsonRequest(`{"c":"{{card.cvc}}"}`))
			got := NotSent
			if err != nil {
				got = forwardErrFrom(t, resp, err).Outcome
			} else {
				got = resp.Outcome
			}
			if got != tt.outcome {
				t.Fatalf("first Forward outcome = %q (%v), want %q", got, err, tt.outcome)
			}
			sent := len(e.p.requests())
			fe := forwardErr(t, e.f, e.jsonRequest(`{"c":"{{card.cvc}}"}`))
			if fe.Code != CodeCVCNotAvailable || fe.Outcome != NotSent {
				t.Errorf("second Forward = %q/%q, want cvc_not_available/not_sent", fe.Code, fe.Outcome)
			}
			if n := len(e.p.requests()); n != sent {
				t.Errorf("second forward reached the processor")
			}
		})
	}
	t.Run("concurrent forwards send the cvc once", func(t *testing.T) {
		e := newEnv(t, echo)
		const n = 8
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() { e.f.Forward(context.Background(), e.jsonRequest(`{"c":"{{card.cvc}}"}`)) })
		}
		wg.Wait()
		withCVC := 0
		for _, r := range e.p.requests() {
			if strings.Contains(string(r.body), testCVC) {
				withCVC++
			}
		}
		if withCVC != 1 {
			t.Errorf("%d of %d concurrent forwards sent the CVC, want 1", withCVC, n)
		}
	})
	t.Run("no cvc used, none consumed", func(t *testing.T) {
		e := newEnv(t, echo)
		if _, err := e.f.Forward(context.Background(), e.jsonRequest(`{"n":"{{card.number}}"}`)); err != nil {
			t.Fatalf("Forward: %v", err)
		}
		if _, c := e.cards.counts(); c != 0 {
			t.Errorf("ConsumeCVC called %d times", c)
		}
	})
}

func TestForwardRedirectNotFollowed(t *testing.T) {
	second := newProcessor(t, echo, false)
	target := "https://pay.example.com:" + strconv.Itoa(second.port) + "/v1/steal"
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", target+"?pan=4242424242424242")
		w.WriteHeader(http.StatusFound)
	})
	resp, err := e.f.Forward(context.Background(), e.jsonRequest(`{"n":"{{card.number}}"}`))
	if err != nil {
		t.Fatalf("Forward: %v", err)
	}
	if resp.Status != http.StatusFound || resp.Outcome != Answered {
		t.Errorf("Status, Outcome = %d, %q; want 302, answered", resp.Status, resp.Outcome)
	}
	if want := target + "?pan=************4242"; resp.Location != want {
		t.Errorf("Location = %q, want %q", resp.Location, want)
	}
	if n := len(second.requests()); n != 0 {
		t.Errorf("redirect target got %d requests, want 0", n)
	}
}

func TestForwardResponseLimits(t *testing.T) {
	t.Run("too large", func(t *testing.T) {
		e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(strings.Repeat("x", 2048)))
		}, func(o *Options, d *allowlist.Destination) { d.MaxResponseBytes = 1024 })
		fe := forwardErr(t, e.f, e.jsonRequest(`{"n":"{{card.number}}"}`))
		if fe.Code != CodeUpstreamTooLarge || fe.Outcome != Answered {
			t.Errorf("Forward = %q/%q, want upstream_response_too_large/answered", fe.Code, fe.Outcome)
		}
	})
	t.Run("too large chunked", func(t *testing.T) {
		e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
			for range 4 {
				w.Write([]byte(strings.Repeat("x", 512)))
				w.(http.Flusher).Flush()
			}
		}, func(o *Options, d *allowlist.Destination) { d.MaxResponseBytes = 1024 })
		fe := forwardErr(t, e.f, e.jsonRequest(`{"n":"{{card.number}}"}`))
		if fe.Code != CodeUpstreamTooLarge || fe.Outcome != Answered {
			t.Errorf("Forward = %q/%q, want upstream_response_too_large/answered", fe.Code, fe.Outcome)
		}
	})
	t.Run("exactly the cap", func(t *testing.T) {
		e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(strings.Repeat("x", 1024)))
		}, func(o *Options, d *allowlist.Destination) { d.MaxResponseBytes = 1024 })
		if _, err := e.f.Forward(context.Background(), e.jsonRequest(`{"n":"{{card.number}}"}`)); err != nil {
			t.Errorf("Forward: %v", err)
		}
	})
	for _, tt := range []struct {
		name string
		ce   []string
		ok   bool
	}{
		{"gzip", []string{"gzip"}, false},
		{"identity then gzip lines", []string{"identity", "gzip"}, false},
		{"identity, gzip list", []string{"identity, gzip"}, false},
		{"gzip after empty item", []string{" , GZIP"}, false},
		{"br", []string{"br"}, false},
		{"unknown token", []string{"x-card"}, false},
		{"identity", []string{"identity"}, true},
		{"identity twice, any case", []string{"Identity", "identity ,IDENTITY"}, true},
	} {
		t.Run("content-encoding "+tt.name, func(t *testing.T) {
			e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
				var b bytes.Buffer
				zw := gzip.NewWriter(&b)
				zw.Write([]byte(`{"echo":"4242424242424242"}`))
				zw.Close()
				w.Header()["Content-Encoding"] = tt.ce
				w.Write(b.Bytes())
			})
			resp, err := e.f.Forward(context.Background(), e.jsonRequest(`{"n":"{{card.number}}"}`))
			if tt.ok {
				if err != nil {
					t.Fatalf("Forward with Content-Encoding %q: %v", tt.ce, err)
				}
				return
			}
			fe := forwardErrFrom(t, resp, err)
			if fe.Code != CodeUpstreamError || fe.Outcome != Answered {
				t.Errorf("Forward with Content-Encoding %q = %q/%q, want upstream_error/answered", tt.ce, fe.Code, fe.Outcome)
			}
		})
	}
	t.Run("binary body is base64 and masked", func(t *testing.T) {
		e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("\xff\xfe4242424242424242"))
		})
		resp, err := e.f.Forward(context.Background(), e.jsonRequest(`{"n":"{{card.number}}"}`))
		if err != nil {
			t.Fatalf("Forward: %v", err)
		}
		if resp.BodyEncoding != "base64" || resp.Body != "//4qKioqKioqKioqKio0MjQy" {
			t.Errorf("Body, BodyEncoding = %q, %q", resp.Body, resp.BodyEncoding)
		}
	})
}

func TestForwardOutcomes(t *testing.T) {
	t.Run("hanging processor times out after sending", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
				// The gateway gave up: answer nothing, or a 200 written in
				// the race with its hang-up could reach it.
				panic(http.ErrAbortHandler)
			}
		}, func(o *Options, d *allowlist.Destination) { d.Timeout = 300 * time.Millisecond })
		start := time.Now()
		fe := forwardErr(t, e.f, e.jsonRequest(`{"c":"{{card.cvc}}"}`))
		if fe.Code != CodeUpstreamTimeout || fe.Outcome != SentNoResponse {
			t.Errorf("Forward = %q/%q (%v), want upstream_timeout/sent_no_response", fe.Code, fe.Outcome, fe)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %v, the entry's timeout is 300ms", d)
		}
		if _, c := e.cards.counts(); c != 1 {
			t.Errorf("CVC consumed %d times, want once, as it was read", c)
		}
	})
	t.Run("connection dropped after request", func(t *testing.T) {
		e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		})
		fe := forwardErr(t, e.f, e.jsonRequest(`{"n":"{{card.number}}"}`))
		if fe.Code != CodeUpstreamError || fe.Outcome != SentNoResponse {
			t.Errorf("Forward = %q/%q (%v), want upstream_error/sent_no_response", fe.Code, fe.Outcome, fe)
		}
		if n := len(e.p.requests()); n != 1 {
			t.Errorf("processor got %d requests, want exactly 1 (no replay)", n)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		e := newEnv(t, echo, func(o *Options, d *allowlist.Destination) { d.Port = port })
		req := e.jsonRequest(`{"n":"{{card.number}}"}`)
		req.URL = "https://pay.example.com:" + strconv.Itoa(port) + "/v1/charges"
		fe := forwardErr(t, e.f, req)
		if fe.Code != CodeUpstreamConnectFailed || fe.Outcome != NotSent {
			t.Errorf("Forward = %q/%q (%v), want upstream_connect_failed/not_sent", fe.Code, fe.Outcome, fe)
		}
	})
	t.Run("dns failure", func(t *testing.T) {
		e := newEnv(t, echo)
		e.res.set("pay.example.com")
		delete(e.res.answers, "pay.example.com")
		fe := forwardErr(t, e.f, e.jsonRequest(`{"n":"{{card.number}}"}`))
		if fe.Code != CodeDNSFailure || fe.Outcome != NotSent {
			t.Errorf("Forward = %q/%q, want dns_failure/not_sent", fe.Code, fe.Outcome)
		}
	})
	t.Run("caller gone before sending", func(t *testing.T) {
		e := newEnv(t, echo)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := e.f.Forward(ctx, e.jsonRequest(`{"n":"{{card.number}}"}`))
		var fe *Error
		if !errors.As(err, &fe) || fe.Outcome != NotSent {
			t.Errorf("Forward = %v, want not_sent", err)
		}
		if n := len(e.p.requests()); n != 0 {
			t.Errorf("processor got %d requests", n)
		}
	})
}

func TestForwardTLS(t *testing.T) {
	t.Run("untrusted certificate", func(t *testing.T) {
		e := newEnv(t, echo, func(o *Options, d *allowlist.Destination) { o.RootCAs = newEmptyPool() })
		fe := forwardErr(t, e.f, e.jsonRequest(`{"n":"{{card.number}}"}`))
		if fe.Code != CodeUpstreamTLSError || fe.Outcome != NotSent {
			t.Errorf("Forward = %q/%q (%v), want upstream_tls_error/not_sent", fe.Code, fe.Outcome, fe)
		}
		if n := len(e.p.requests()); n != 0 {
			t.Errorf("processor got %d requests", n)
		}
	})
	t.Run("name mismatch", func(t *testing.T) {
		e := newEnv(t, echo, func(o *Options, d *allowlist.Destination) { d.Host = "pay.other.test" })
		e.res.set("pay.other.test", "127.0.0.1")
		req := e.jsonRequest(`{"n":"{{card.number}}"}`)
		req.URL = "https://pay.other.test:" + strconv.Itoa(e.p.port) + "/v1/charges"
		fe := forwardErr(t, e.f, req)
		if fe.Code != CodeUpstreamTLSError || fe.Outcome != NotSent {
			t.Errorf("Forward = %q/%q (%v), want upstream_tls_error/not_sent", fe.Code, fe.Outcome, fe)
		}
	})
	t.Run("spki pin mismatch", func(t *testing.T) {
		e := newEnv(t, echo, func(o *Options, d *allowlist.Destination) {
			d.TLS = &allowlist.TLS{SPKIPins: [][32]byte{{1, 2, 3}}}
		})
		fe := forwardErr(t, e.f, e.jsonRequest(`{"n":"{{card.number}}"}`))
		if fe.Code != CodeUpstreamTLSError || fe.Outcome != NotSent {
			t.Errorf("Forward = %q/%q (%v), want upstream_tls_error/not_sent", fe.Code, fe.Outcome, fe)
		}
	})
	t.Run("spki pin match", func(t *testing.T) {
		p := newProcessor(t, echo, false)
		pin := sha256Sum(p.srv.Certificate().RawSubjectPublicKeyInfo)
		e := newEnvOn(t, p, func(o *Options, d *allowlist.Destination) {
			d.TLS = &allowlist.TLS{SPKIPins: [][32]byte{pin}}
		})
		if _, err := e.f.Forward(context.Background(), e.jsonRequest(`{"n":"{{card.number}}"}`)); err != nil {
			t.Errorf("Forward: %v", err)
		}
	})
	t.Run("unknown ca bundle", func(t *testing.T) {
		e := newEnv(t, echo, func(o *Options, d *allowlist.Destination) {
			d.TLS = &allowlist.TLS{CABundle: "acme-private"}
		})
		fe := forwardErr(t, e.f, e.jsonRequest(`{"n":"{{card.number}}"}`))
		if fe.Code != CodeInternal || fe.Outcome != NotSent {
			t.Errorf("Forward = %q/%q, want internal_error/not_sent", fe.Code, fe.Outcome)
		}
	})
	t.Run("named ca bundle", func(t *testing.T) {
		p := newProcessor(t, echo, false)
		e := newEnvOn(t, p, func(o *Options, d *allowlist.Destination) {
			o.RootCAs = newEmptyPool()
			o.CABundles = map[string]*x509.CertPool{"acme-private": p.pool()}
			d.TLS = &allowlist.TLS{CABundle: "acme-private"}
		})
		if _, err := e.f.Forward(context.Background(), e.jsonRequest(`{"n":"{{card.number}}"}`)); err != nil {
			t.Errorf("Forward: %v", err)
		}
	})
}

func TestForwardPoolsConnections(t *testing.T) {
	e := newEnv(t, echo)
	for range 3 {
		if _, err := e.f.Forward(context.Background(), e.jsonRequest(`{"n":"{{card.number}}"}`)); err != nil {
			t.Fatalf("Forward: %v", err)
		}
	}
	if n := e.p.conns.Load(); n != 1 {
		t.Errorf("processor saw %d connections for 3 forwards, want 1 (keep-alive)", n)
	}
	// Each forward resolves and checks before it reads the card; the
	// connection, to a checked address, is reused.
	if n := e.res.count("pay.example.com"); n != 3 {
		t.Errorf("resolved %d times, want 3 (once per forward)", n)
	}
}

func TestNewAndZeroValue(t *testing.T) {
	var f Forwarder
	if _, err := f.Forward(context.Background(), &Request{}); err == nil {
		t.Errorf("zero Forwarder forwarded")
	}
	if _, err := New(Options{}); err == nil {
		t.Errorf("New(Options{}) succeeded without Allowlist and Cards")
	}
	auditLog, _, _ := newAuditLog(t)
	if _, err := New(Options{Allowlist: &fixedAllowlist{}, Cards: newFakeCards()}); err == nil {
		t.Errorf("New succeeded without an Auditor")
	}
	if _, err := New(Options{Allowlist: &fixedAllowlist{}, Cards: newFakeCards(), Auditor: auditLog, DNSTimeout: -1}); err == nil {
		t.Errorf("New accepted a negative timeout")
	}
	f2, err := New(Options{Allowlist: &fixedAllowlist{}, Cards: newFakeCards(), Auditor: auditLog})
	if err != nil {
		t.Fatal(err)
	}
	fe := forwardErr(t, f2, &Request{Destination: "acme", URL: "https://pay.example.com/v1", Method: "POST", Card: testToken, Caller: caller})
	if fe.Outcome != NotSent || fe.Code != CodeInternal {
		t.Errorf("nil allowlist: %q/%q, want internal_error/not_sent", fe.Code, fe.Outcome)
	}
}

// BenchmarkForward measures the whole path over a pooled keep-alive
// connection to a local TLS processor: validate, match, detokenize (fake),
// render, send, read, redact.
func BenchmarkForward(b *testing.B) {
	p := newProcessorB(b, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":"ch_1","status":"succeeded","card":{"number":"4242424242424242"}}`))
	})
	e := newEnvB(b, p)
	req := e.jsonRequest(`{"number":"{{card.number}}","exp":"{{card.exp_month}}/{{card.exp_year}}","name":"{{card.name}}"}`)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.f.Forward(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

// TestForwardHostileDestination sends card numbers and other strings no
// allowlist entry can have as the destination id. Each is refused as
// invalid_request before anything records it: the log line, the span and
// the metric labels say "invalid", and nothing reaches the processor.
func TestForwardHostileDestination(t *testing.T) {
	tests := []struct {
		name, dest string
		wantCode   string
		wantLabel  string // destination in the log line and span
		wantMetric string
	}{
		{"card number", "4000056655665556", CodeInvalidRequest, "invalid", "invalid"},
		{"card with dashes", "4000-0566-5566-5556", CodeInvalidRequest, "invalid", "invalid"},
		{"card inside an id", "acme-4000056655665556", CodeInvalidRequest, "invalid", "invalid"},
		{"uppercase", "ACME", CodeInvalidRequest, "invalid", "invalid"},
		{"leading dot", ".acme", CodeInvalidRequest, "invalid", "invalid"},
		{"colon", "acme:1", CodeInvalidRequest, "invalid", "invalid"},
		{"non-ascii", "acmé", CodeInvalidRequest, "invalid", "invalid"},
		{"64 bytes", strings.Repeat("a", 64), CodeInvalidRequest, "invalid", "invalid"},
		{"well-formed, not listed", "nope", "destination_not_allowed", "nope", "unlisted"},
		{"listed, caller refused", "acme", "caller_not_allowed", "acme", "acme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spans := tracetest.NewSpanRecorder()
			metrics := sdkmetric.NewManualReader()
			e := newEnv(t, echo, func(o *Options, d *allowlist.Destination) {
				o.TracerProvider = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
				o.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(metrics))
			})
			req := e.jsonRequest(`{"n":"{{card.number}}"}`)
			req.Destination = tt.dest
			if tt.name == "listed, caller refused" {
				req.Caller = "spiffe://cardgate.test/other"
			}
			fe := forwardErr(t, e.f, req)
			if fe.Code != tt.wantCode || fe.Outcome != NotSent {
				t.Errorf("Forward(destination %q) = %q/%q (%v), want %q/not_sent", tt.dest, fe.Code, fe.Outcome, fe, tt.wantCode)
			}
			if n := len(e.p.requests()); n != 0 {
				t.Errorf("processor got %d requests, want 0", n)
			}

			var rm metricdata.ResourceMetrics
			if err := metrics.Collect(context.Background(), &rm); err != nil {
				t.Fatal(err)
			}
			var labels []string
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					if s, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "cardgate.forwarder.forwards" {
						for _, dp := range s.DataPoints {
							v, _ := dp.Attributes.Value("destination")
							labels = append(labels, v.AsString())
						}
					}
				}
			}
			if diff := cmp.Diff([]string{tt.wantMetric}, labels); diff != "" {
				t.Errorf("forwards metric destination labels (-want +got):\n%s", diff)
			}
			ended := spans.Ended()
			if len(ended) != 1 {
				t.Fatalf("%d spans ended, want 1", len(ended))
			}
			var spanDest string
			for _, a := range ended[0].Attributes() {
				if a.Key == "cardgate.destination" {
					spanDest = a.Value.AsString()
				}
			}
			if spanDest != tt.wantLabel {
				t.Errorf("span cardgate.destination = %q, want %q", spanDest, tt.wantLabel)
			}
			if want := `"destination":"` + tt.wantLabel + `"`; !strings.Contains(e.logText(), want) {
				t.Errorf("log lacks %s:\n%s", want, e.logText())
			}
			if tt.wantLabel == "nope" && strings.Contains(fe.Error(), "nope") {
				t.Errorf("error %q echoes an unlisted destination id", fe.Error())
			}
			if tt.wantLabel == "invalid" {
				for _, where := range []string{e.logText(), fe.Error()} {
					if strings.Contains(where, tt.dest) || strings.Contains(where, "5566") {
						t.Errorf("destination %q echoed in %q", tt.dest, where)
					}
				}
				for _, r := range e.auditRecords() {
					if r.Destination != "" {
						t.Errorf("audit record %s names destination %q", r.Kind, r.Destination)
					}
				}
			}
		})
	}
}

// TestForwardMaxTimeout: an entry may allow more time than the API server
// waits to write the answer; MaxTimeout caps it, so the caller hears
// upstream_timeout rather than losing the answer for a card that was sent.
func TestForwardMaxTimeout(t *testing.T) {
	tests := []struct {
		name string
		mod  envOpt
	}{
		{"entry timeout", func(o *Options, d *allowlist.Destination) { d.Timeout = 5 * time.Minute }},
		{"default timeout", func(o *Options, d *allowlist.Destination) { o.DefaultTimeout = 5 * time.Minute }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			defer close(release)
			e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-release:
				case <-r.Context().Done():
					panic(http.ErrAbortHandler)
				}
			}, tt.mod, func(o *Options, d *allowlist.Destination) { o.MaxTimeout = 300 * time.Millisecond })
			start := time.Now()
			fe := forwardErr(t, e.f, e.jsonRequest(`{"n":"{{card.number}}"}`))
			if fe.Code != CodeUpstreamTimeout || fe.Outcome != SentNoResponse {
				t.Errorf("Forward = %q/%q (%v), want upstream_timeout/sent_no_response", fe.Code, fe.Outcome, fe)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v; MaxTimeout is 300ms", d)
			}
		})
	}
	t.Run("bounds retries", func(t *testing.T) {
		// Every attempt fails to connect; backoff alone would take far
		// longer than MaxTimeout.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		e := newEnv(t, echo, func(o *Options, d *allowlist.Destination) {
			d.Port = port
			o.MaxAttempts = 50
			o.RetryBackoff, o.RetryMaxBackoff = time.Minute, time.Minute
			o.MaxTimeout = 300 * time.Millisecond
		})
		req := e.jsonRequest(`{"n":"{{card.number}}"}`)
		req.URL = "https://pay.example.com:" + strconv.Itoa(port) + "/v1/charges"
		start := time.Now()
		fe := forwardErr(t, e.f, req)
		if fe.Outcome != NotSent {
			t.Errorf("Forward = %q/%q (%v), want not_sent", fe.Code, fe.Outcome, fe)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %v; MaxTimeout is 300ms", d)
		}
	})
	t.Run("negative", func(t *testing.T) {
		auditLog, _, _ := newAuditLog(t)
		if _, err := New(Options{Allowlist: &fixedAllowlist{}, Cards: newFakeCards(), Auditor: auditLog, MaxTimeout: -1}); err == nil {
			t.Errorf("New accepted a negative MaxTimeout")
		}
	})
}

// TestForwardUpstreamSpan: each attempt at the processor has its own span
// under the forward's, naming the entry, the checked address, the TLS
// version and the status, and nothing from the URL, headers or bodies.
func TestForwardUpstreamSpan(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	e := newEnv(t, echo, func(o *Options, d *allowlist.Destination) {
		o.TracerProvider = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	})
	req := e.jsonRequest(`{"n":"{{card.number}}"}`)
	req.URL += "?customer=cus_secretquery"
	req.Headers["Authorization"] = []string{"Bearer sk_test_1"}
	if _, err := e.f.Forward(context.Background(), req); err != nil {
		t.Fatalf("Forward: %v", err)
	}
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans.Ended() {
		byName[s.Name()] = s
	}
	parent, up := byName["forwarder.Forward"], byName["forwarder.upstream"]
	if parent == nil || up == nil {
		t.Fatalf("spans %v, want forwarder.Forward and forwarder.upstream", slices.Collect(maps.Keys(byName)))
	}
	if up.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("forwarder.upstream is not a child of forwarder.Forward")
	}
	got := map[string]string{}
	for _, a := range up.Attributes() {
		got[string(a.Key)] = a.Value.Emit()
	}
	want := map[string]string{
		"cardgate.destination":      "acme",
		"cardgate.attempt":          "1",
		"network.peer.address":      "127.0.0.1",
		"network.peer.port":         strconv.Itoa(e.p.port),
		"tls.protocol.version":      "1.3",
		"http.response.status_code": "201",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("upstream span attributes (-want +got):\n%s", diff)
	}
	for _, s := range spans.Ended() {
		for _, a := range s.Attributes() {
			for _, secret := range []string{"secretquery", "/v1/charges", testPAN, "sk_test_1"} {
				if strings.Contains(a.Value.Emit(), secret) {
					t.Errorf("span %s attribute %s = %q holds %q", s.Name(), a.Key, a.Value.Emit(), secret)
				}
			}
		}
	}

	t.Run("failed attempt", func(t *testing.T) {
		spans := tracetest.NewSpanRecorder()
		e := newEnv(t, echo, func(o *Options, d *allowlist.Destination) {
			o.TracerProvider = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
			o.RootCAs = newEmptyPool()
			o.MaxAttempts = 1
		})
		forwardErr(t, e.f, e.jsonRequest(`{"n":"{{card.number}}"}`))
		for _, s := range spans.Ended() {
			if s.Name() != "forwarder.upstream" {
				continue
			}
			if s.Status().Code != otelcodes.Error || s.Status().Description != CodeUpstreamTLSError {
				t.Errorf("upstream span status = %v %q, want Error %q", s.Status().Code, s.Status().Description, CodeUpstreamTLSError)
			}
			return
		}
		t.Errorf("no forwarder.upstream span for a failed attempt")
	})
}
