package forwarder

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/credentials"
)

// echoCredentials answers like a careless processor: it writes back the
// credentials it received, raw, in base64, JSON-escaped and URL-escaped,
// in its body and in headers.
func echoCredentials(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("X-Api-Key")
	js, _ := json.Marshal(map[string]string{
		"auth":       r.Header.Get("Authorization"),
		"key":        key,
		"key_base64": base64.StdEncoding.EncodeToString([]byte(key)),
		"key_query":  url.QueryEscape(key),
		"status":     "succeeded",
	})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Echo-Key", "got "+key)
	w.Header().Set("X-Echo-Auth", r.Header.Get("Authorization"))
	w.Header().Set("Location", "https://pay.example.com/v1/x?k="+url.QueryEscape(key))
	w.WriteHeader(http.StatusOK)
	w.Write(js)
}

func credStoreForTests(t *testing.T) *credentials.Store {
	return newCredStore(t,
		cred{name: "acme-key", value: testAPIKey},
		cred{name: "acme-basic", value: testBasicUser},
		cred{name: "cybs-secret", value: testCybsSecret, kind: credentials.KindHMACKey},
		cred{name: "other-key", value: "sk_test_other_not_granted_1"},
	)
}

// TestSecretHeaders: the caller sends placeholders only; the processor
// gets the credentials, in a header that needs no card_headers listing;
// the caller gets every spelling of them masked.
func TestSecretHeaders(t *testing.T) {
	e := newEnv(t, echoCredentials, withCreds(credStoreForTests(t), "acme-key", "acme-basic"))
	r := e.jsonRequest(cardBody)
	r.Headers["Authorization"] = []string{"Basic {{secret.acme-basic | base64}}"}
	r.Headers["X-Api-Key"] = []string{"{{ secret.acme-key }}"}
	resp, err := e.f.Forward(context.Background(), r)
	if err != nil {
		t.Fatalf("Forward: %v", err)
	}
	reqs := e.p.requests()
	if len(reqs) != 1 {
		t.Fatalf("processor got %d requests, want 1", len(reqs))
	}
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte(testBasicUser))
	if got := reqs[0].header.Get("Authorization"); got != wantAuth {
		t.Errorf("processor Authorization = %q, want Basic base64(user:)", got)
	}
	if got := reqs[0].header.Get("X-Api-Key"); got != testAPIKey {
		t.Errorf("processor X-Api-Key differs from the credential (%d bytes)", len(got))
	}

	var body map[string]string
	if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
		t.Fatalf("answer body: %v", err)
	}
	want := map[string]string{
		"auth":       "Basic [secret.acme-basic]",
		"key":        "[secret.acme-key]",
		"key_base64": "[secret.acme-key]",
		"key_query":  "[secret.acme-key]",
		"status":     "succeeded",
	}
	if diff := cmp.Diff(want, body); diff != "" {
		t.Errorf("answer body (-want +got):\n%s", diff)
	}
	for name, want := range map[string]string{
		"X-Echo-Key":  "got [secret.acme-key]",
		"X-Echo-Auth": "Basic [secret.acme-basic]",
		"Location":    "https://pay.example.com/v1/x?k=[secret.acme-key]",
	} {
		if got := resp.Headers.Get(name); got != want {
			t.Errorf("answer header %s = %q, want %q", name, got, want)
		}
	}
	if resp.Location != "https://pay.example.com/v1/x?k=[secret.acme-key]" && resp.Status/100 == 3 {
		t.Errorf("Location = %q, want it masked", resp.Location)
	}
	raw, _ := json.Marshal(resp)
	assertNoSecret(t, "answer", string(raw), testAPIKey, testBasicUser)
}

// TestSecretRefusals: each refusal is not_sent, comes before the card is
// read (so a CVC is never consumed by a forward that cannot go), and
// sends nothing.
func TestSecretRefusals(t *testing.T) {
	store := credStoreForTests(t)
	tests := []struct {
		name     string
		creds    Credentials // nil: the store
		noStore  bool        // Options.Credentials left nil
		grant    []string
		edit     func(r *Request)
		wantCode string
		wantMsg  string
		denied   bool // a denied audit record
		gets     int  // credential reads before the refusal
	}{
		{name: "secret in the body", grant: []string{"acme-key"},
			edit:     func(r *Request) { r.Body = `{"k":"{{secret.acme-key}}","n":"{{card.number}}"}` },
			wantCode: CodeInvalidTemplate, wantMsg: "{{secret.acme-key}} is allowed only in header values"},
		{name: "secret in a form body", grant: []string{"acme-key"},
			edit: func(r *Request) {
				r.Headers["Content-Type"] = []string{"application/x-www-form-urlencoded"}
				r.Body = "key={{secret.acme-key}}&n={{card.number}}"
			},
			wantCode: CodeInvalidTemplate, wantMsg: "allowed only in header values"},
		{name: "secret in the URL path", grant: []string{"acme-key"},
			edit:     func(r *Request) { r.URL = strings.Replace(r.URL, "/charges", "/{{secret.acme-key}}", 1) },
			wantCode: CodeInvalidTemplate},
		{name: "secret in the query", grant: []string{"acme-key"},
			edit:     func(r *Request) { r.URL += "?key={{secret.acme-key}}" },
			wantCode: CodeInvalidTemplate},
		{name: "secret in the query, escaped", grant: []string{"acme-key"},
			edit:     func(r *Request) { r.URL += "?key=%7B%7Bsecret.acme-key%7D%7D" },
			wantCode: CodeInvalidTemplate},
		{name: "secret in a header the gateway drops", grant: []string{"acme-key"},
			edit:     func(r *Request) { r.Headers["Proxy-Authorization"] = []string{"{{secret.acme-key}}"} },
			wantCode: CodeInvalidTemplate},
		{name: "malformed name", grant: []string{"acme-key"},
			edit:     func(r *Request) { r.Headers["X-Api-Key"] = []string{"{{secret.Acme Key}}"} },
			wantCode: CodeInvalidTemplate, wantMsg: "malformed credential placeholder"},
		{name: "unknown filter", grant: []string{"acme-key"},
			edit:     func(r *Request) { r.Headers["X-Api-Key"] = []string{"{{secret.acme-key | hex}}"} },
			wantCode: CodeInvalidTemplate, wantMsg: "unknown filter hex"},
		{name: "not granted", grant: []string{"acme-key"},
			edit:     func(r *Request) { r.Headers["X-Api-Key"] = []string{"{{secret.other-key}}"} },
			wantCode: CodeCredentialNotAllowed, wantMsg: "credential other-key is not granted to destination acme", denied: true},
		{name: "entry grants nothing",
			edit:     func(r *Request) { r.Headers["X-Api-Key"] = []string{"{{secret.acme-key}}"} },
			wantCode: CodeCredentialNotAllowed, denied: true},
		{name: "not granted, in a dry run", grant: []string{"acme-key"},
			edit: func(r *Request) {
				r.Headers["X-Api-Key"] = []string{"{{secret.other-key}}"}
				r.DryRun = true
			},
			wantCode: CodeCredentialNotAllowed, denied: true},
		{name: "a key is never written into a header", grant: []string{"cybs-secret"},
			edit:     func(r *Request) { r.Headers["X-Api-Key"] = []string{"{{secret.cybs-secret}}"} },
			wantCode: CodeCredentialNotAllowed, wantMsg: "only a secret may be written into a header", gets: 1},
		{name: "not configured on this gateway", grant: []string{"missing-key"},
			edit:     func(r *Request) { r.Headers["X-Api-Key"] = []string{"{{secret.missing-key}}"} },
			wantCode: CodeCredentialUnavailable, gets: 1},
		{name: "credentials never loaded", grant: []string{"acme-key"}, creds: newUnloadedCredStore(t, cred{name: "acme-key", value: testAPIKey}),
			edit:     func(r *Request) { r.Headers["X-Api-Key"] = []string{"{{secret.acme-key}}"} },
			wantCode: CodeCredentialUnavailable, wantMsg: "credential acme-key is not available", gets: 1},
		{name: "gateway holds no credentials", grant: []string{"acme-key"}, noStore: true,
			edit:     func(r *Request) { r.Headers["X-Api-Key"] = []string{"{{secret.acme-key}}"} },
			wantCode: CodeCredentialUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.creds
			if src == nil {
				src = store
			}
			counter := &countingCreds{Credentials: src}
			var creds Credentials = counter
			if tt.noStore {
				creds = nil
			}
			e := newEnv(t, echo, withCreds(creds, tt.grant...))
			r := e.jsonRequest(`{"n":"{{card.number}}","cvc":"{{card.cvc}}"}`)
			tt.edit(r)
			fe := forwardErr(t, e.f, r)
			if fe.Code != tt.wantCode || fe.Outcome != NotSent {
				t.Errorf("Forward = %q/%q (%v), want %s/not_sent", fe.Code, fe.Outcome, fe, tt.wantCode)
			}
			if !strings.Contains(fe.Message, tt.wantMsg) {
				t.Errorf("message = %q, want it to contain %q", fe.Message, tt.wantMsg)
			}
			if detok, consumed := e.cards.counts(); detok != 0 || consumed != 0 {
				t.Errorf("detokenized %d times (%d consuming the CVC), want 0", detok, consumed)
			}
			if n := len(e.p.requests()); n != 0 {
				t.Errorf("processor got %d requests, want 0", n)
			}
			if got := counter.gets(); got != tt.gets {
				t.Errorf("credential reads = %d, want %d", got, tt.gets)
			}
			var want []audit.Kind
			if tt.denied {
				want = []audit.Kind{audit.KindDenied}
			}
			if got := e.auditKinds(); !cmp.Equal(got, want) {
				t.Errorf("audit kinds = %v, want %v", got, want)
			}
			if tt.denied {
				if rec := e.auditRecords()[0]; rec.Reason != CodeCredentialNotAllowed {
					t.Errorf("denied record reason = %q, want %s", rec.Reason, CodeCredentialNotAllowed)
				}
			}
			assertNoSecret(t, "error", fe.Error(), testAPIKey, testBasicUser, testCybsSecret)
			assertNoSecret(t, "log", e.logText(), testAPIKey, testBasicUser, testCybsSecret)
		})
	}
}

// TestSecretDryRun: a dry run shows the credential's mask, whatever the
// filter, and never reads a credential.
func TestSecretDryRun(t *testing.T) {
	counter := &countingCreds{Credentials: credStoreForTests(t)}
	e := newEnv(t, echo, withCreds(counter, "acme-key", "acme-basic"))
	r := e.jsonRequest(cardBody)
	r.Headers["Authorization"] = []string{"Basic {{secret.acme-basic | base64}}"}
	r.Headers["X-Api-Key"] = []string{"{{secret.acme-key}}"}
	r.DryRun = true
	resp, err := e.f.Forward(context.Background(), r)
	if err != nil {
		t.Fatalf("Forward: %v", err)
	}
	if got := resp.DryRun.Headers.Get("Authorization"); got != "Basic [secret.acme-basic]" {
		t.Errorf("preview Authorization = %q, want Basic [secret.acme-basic]", got)
	}
	if got := resp.DryRun.Headers.Get("X-Api-Key"); got != "[secret.acme-key]" {
		t.Errorf("preview X-Api-Key = %q, want [secret.acme-key]", got)
	}
	if n := counter.gets(); n != 0 {
		t.Errorf("a dry run read %d credentials, want 0", n)
	}
	if n := len(e.p.requests()); n != 0 {
		t.Errorf("a dry run sent %d requests", n)
	}
	raw, _ := json.Marshal(resp)
	assertNoSecret(t, "dry run answer", string(raw), testAPIKey, testBasicUser)
}

// TestSecretsNeverLeak runs forwards that succeed, fail at the processor
// and are refused, and looks for the credentials in everything the
// gateway records: the log (a capturing slog handler), spans (an
// in-memory exporter), metrics, the audit file, error texts and answers.
func TestSecretsNeverLeak(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	metrics := sdkmetric.NewManualReader()
	leakyError := func(w http.ResponseWriter, r *http.Request) {
		// A processor whose error quotes the key, in a header net/http
		// cannot parse: the transport's error text quotes the line.
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nX-Bad %s\r\n\r\n", r.Header.Get("X-Api-Key"))
		buf.Flush()
		conn.Close()
	}
	handler := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/broken" {
			leakyError(w, r)
			return
		}
		echoCredentials(w, r)
	}
	store := credStoreForTests(t)
	e := newEnv(t, handler, withCreds(store, "acme-key", "acme-basic", "cybs-secret"), withSigning(cybsSpec("request-target")),
		func(o *Options, _ *allowlist.Destination) {
			o.TracerProvider = sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
			o.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(metrics))
		})
	var outputs []string
	for _, path := range []string{"/v1/charges", "/v1/broken", "/v1/charges"} {
		r := e.jsonRequest(cardBody)
		r.URL = e.url(path)
		r.Headers["Authorization"] = []string{"Basic {{secret.acme-basic | base64}}"}
		r.Headers["X-Api-Key"] = []string{"{{secret.acme-key}}"}
		r.Headers["V-C-Merchant-Id"] = []string{testMerchantID}
		if path == "/v1/charges" && len(outputs) > 0 {
			r.Headers["Date"] = []string{"Mon, 02 Jan 2006 15:04:05 GMT"} // refused on a signing entry
		}
		resp, err := e.f.Forward(context.Background(), r)
		raw, _ := json.Marshal(resp)
		outputs = append(outputs, string(raw))
		if err != nil {
			outputs = append(outputs, err.Error())
			if fe, ok := err.(*Error); ok && fe.Err != nil {
				outputs = append(outputs, fe.Err.Error())
			}
		}
	}
	if n := len(e.p.requests()); n != 2 {
		t.Fatalf("processor got %d requests, want 2 (the refused one sends nothing)", n)
	}
	if !strings.Contains(e.logText(), CodeUpstreamError) {
		t.Errorf("log has no upstream_error line; the leaky processor was not exercised:\n%s", e.logText())
	}
	secrets := []string{testAPIKey, testBasicUser, testCybsSecret}
	for i, o := range outputs {
		assertNoSecret(t, fmt.Sprintf("answer or error %d", i), o, secrets...)
	}
	assertNoSecret(t, "log", e.logText(), secrets...)
	auditRaw, _ := json.Marshal(e.auditRecords())
	assertNoSecret(t, "audit", string(auditRaw), secrets...)
	spanRaw, _ := json.Marshal(spans.GetSpans().Snapshots())
	if len(spans.GetSpans()) == 0 {
		t.Fatal("no spans recorded")
	}
	assertNoSecret(t, "spans", string(spanRaw), secrets...)
	var rm metricdata.ResourceMetrics
	if err := metrics.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	metricRaw, _ := json.Marshal(rm)
	assertNoSecret(t, "metrics", string(metricRaw), secrets...)
}

// TestSecretMask checks the masker on its own: every spelling, longest
// first, overlapping and adjacent matches, and no allocation when there
// is nothing to mask.
func TestSecretMask(t *testing.T) {
	st := newCredStore(t, cred{name: "k", value: "ab/cd+ef"}, cred{name: "long", value: "ab/cd+ef-and-more"})
	set := &secretSet{values: map[string]credentials.Secret{}}
	for _, n := range []string{"k", "long"} {
		s, err := st.Get(n)
		if err != nil {
			t.Fatal(err)
		}
		set.addMasks(s)
	}
	tests := []struct{ in, want string }{
		{"nothing here", "nothing here"},
		{"ab/cd+ef", "[secret.k]"},
		{"xab/cd+ef-and-morey", "x[secret.long]y"},
		{"ab/cd+efab/cd+ef", "[secret.k][secret.k]"},
		{`{"k":"ab\/cd+ef"}`, `{"k":"[secret.k]"}`},
		{"q=ab%2Fcd%2Bef", "q=[secret.k]"},
		{"YWIvY2QrZWY=", "[secret.k]"},
		{"YWIvY2QrZWY", "[secret.k]"},
		{"YWIvY2QrZWYtYW5kLW1vcmU=", "[secret.long]"},
		{"ab/cd+e", "ab/cd+e"},
		// Hex, UTF-16, and base64 of a longer text at each alignment.
		{hex.EncodeToString([]byte("ab/cd+ef")), "[secret.k]"},
		{"a\x00b\x00/\x00c\x00d\x00+\x00e\x00f\x00", "[secret.k]"},
	}
	for _, prefix := range []string{"x", "xy", "Bearer "} {
		enc := base64.StdEncoding.EncodeToString([]byte(prefix + "ab/cd+ef-and-more!"))
		if out, _ := set.mask([]byte(enc)); !strings.Contains(string(out), "[secret.") {
			t.Errorf("mask(base64 of %q + long) = %q, want the credential's core masked", prefix, out)
		}
	}
	for _, tt := range tests {
		out, changed := set.mask([]byte(tt.in))
		if string(out) != tt.want || changed != (tt.in != tt.want) {
			t.Errorf("mask(%q) = %q, %v; want %q", tt.in, out, changed, tt.want)
		}
	}
	clean := []byte("nothing to mask")
	if n := testing.AllocsPerRun(100, func() { set.mask(clean) }); n != 0 {
		t.Errorf("mask of a clean answer allocates %v times, want 0", n)
	}
	var none *secretSet
	if out, changed := none.mask([]byte("ab/cd+ef")); changed || string(out) != "ab/cd+ef" {
		t.Errorf("nil set mask = %q, %v; want the input unchanged", out, changed)
	}
}
