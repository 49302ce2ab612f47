package integration

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardgate/cardgate/internal/testpki"
)

// headerRecorder stands in for a Stripe-style processor that shows the
// idempotency key of each request back (in its dashboard, webhook
// events and answers): it records the headers of every request it gets
// and echoes Idempotency-Key in its answer.
type headerRecorder struct {
	addr string
	mu   sync.Mutex
	got  []http.Header
}

func startHeaderRecorder(t *testing.T, ca *testpki.CA) *headerRecorder {
	t.Helper()
	leaf, err := ca.Issue(testpki.Leaf{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	p := &headerRecorder{addr: ln.Addr().String()}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return p
}

func (p *headerRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	p.mu.Lock()
	p.got = append(p.got, r.Header.Clone())
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id":"ch_1","idempotency_key":%q}`, r.Header.Get("Idempotency-Key"))
}

func (p *headerRecorder) requests() []http.Header {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]http.Header(nil), p.got...)
}

// TestCredentialHeaders runs the built binary with an entry that lets
// stripe-key go in Authorization only. A caller that puts the key in
// Idempotency-Key, which the processor shows back, is refused with
// credential_not_allowed (403, not_sent) and the processor gets nothing;
// so is an underscore twin. The listed header is accepted in any case.
// allowlist show lists the header, and diff marks a newly listed one
// WIDENS.
func TestCredentialHeaders(t *testing.T) {
	e := newEnv(t)
	proc := startHeaderRecorder(t, e.procCA)
	cybsPath := e.write("creds/cybs-secret", []byte(cybsSecret1+"\n"))
	e.writeConfig(fmt.Sprintf(`credentials:
  stripe-key:
    env: CG_TEST_STRIPE_KEY
  cybs-secret:
    file: %s
    kind: hmac-key
`, cybsPath))
	t.Setenv("CG_TEST_STRIPE_KEY", stripeKeyV1)
	v1 := e.credAllowlist(1, proc.addr, "")
	e.signAllowlist(v1)
	e.start()
	c := e.client(billing)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(stripeKeyV1))

	forward := func(headers map[string]string, dryRun bool) (int, map[string]any) {
		t.Helper()
		h := map[string][]string{"Content-Type": {"application/x-www-form-urlencoded"}}
		for k, v := range headers {
			h[k] = []string{v}
		}
		return e.post(c, "/v1/forward", map[string]any{
			"destination": "stripe-charges",
			"url":         "https://" + proc.addr + "/v1/charges",
			"method":      "POST",
			"card":        e.tokenize(c, visa),
			"headers":     h,
			"body":        "amount=2000&card[number]={{card.number}}&card[exp_month]={{card.exp_month}}&card[exp_year]={{card.exp_year}}",
			"dry_run":     dryRun,
		})
	}

	accepted := []struct {
		name    string
		headers map[string]string
	}{
		{"declared header", map[string]string{"Authorization": "Basic {{secret.stripe-key | base64}}", "Idempotency-Key": "order-42"}},
		{"declared header in lower case", map[string]string{"authorization": "Basic {{secret.stripe-key | base64}}"}},
	}
	for _, tt := range accepted {
		t.Run(tt.name, func(t *testing.T) {
			before := len(proc.requests())
			status, out := forward(tt.headers, false)
			if status != http.StatusOK || out["status"] != float64(200) {
				t.Fatalf("forward = %d %v, want the processor's 200\nlog:\n%s", status, out, e.gw.log())
			}
			reqs := proc.requests()
			if len(reqs) != before+1 || reqs[before].Get("Authorization") != basic {
				t.Errorf("processor got %d requests, the last with the key in Authorization: %v", len(reqs)-before, len(reqs) > before && reqs[len(reqs)-1].Get("Authorization") == basic)
			}
		})
	}

	refused := []struct {
		name    string
		headers map[string]string
		dryRun  bool
		header  string // the header the message must name
	}{
		{"idempotency key", map[string]string{"Authorization": "Basic {{secret.stripe-key | base64}}", "Idempotency-Key": "{{secret.stripe-key}}"}, false, "Idempotency-Key"},
		{"idempotency key in a dry run", map[string]string{"Idempotency-Key": "{{secret.stripe-key}}"}, true, "Idempotency-Key"},
		{"underscore twin", map[string]string{"Idempotency_Key": "{{secret.stripe-key}}"}, false, "Idempotency_key"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			before := len(proc.requests())
			status, out := forward(tt.headers, tt.dryRun)
			e, _ := out["error"].(map[string]any)
			msg, _ := e["message"].(string)
			if status != http.StatusForbidden || errCode(out) != "credential_not_allowed" || e["outcome"] != "not_sent" {
				t.Errorf("forward = %d %v, want 403 credential_not_allowed, not_sent", status, out)
			}
			if !strings.Contains(msg, "header "+tt.header+":") || strings.Contains(msg, "sk_test") {
				t.Errorf("message = %q, want it to name header %s and never the key", msg, tt.header)
			}
			if n := len(proc.requests()) - before; n != 0 {
				t.Errorf("processor got %d requests, want none", n)
			}
		})
	}

	key := strings.TrimSuffix(stripeKeyV1, ":")
	for _, h := range proc.requests() {
		if strings.Contains(h.Get("Idempotency-Key"), key) {
			t.Error("the processor got the key in Idempotency-Key")
		}
	}
	if log := e.gw.log(); strings.Contains(log, key) || strings.Contains(log, base64.StdEncoding.EncodeToString([]byte(stripeKeyV1))) {
		t.Error("the gateway log holds the credential")
	}

	// Review: show lists the header; a newly listed one WIDENS.
	oldPath := e.write("review/v1.yaml", []byte(v1))
	show, err := exec.Command(binary, "allowlist", "show", oldPath).CombinedOutput()
	if err != nil || !strings.Contains(string(show), "CREDENTIAL HEADERS Authorization") {
		t.Errorf("allowlist show = %v\n%s", err, show)
	}
	newPath := e.write("review/v2.yaml", []byte(withPrev(strings.Replace(e.credAllowlist(2, proc.addr, ""),
		"credential_headers: [Authorization]", "credential_headers: [Authorization, X-Api-Key]", 1), v1)))
	diff, err := exec.Command(binary, "allowlist", "diff", "--fail-on-widen", oldPath, newPath).CombinedOutput()
	if err == nil || !strings.Contains(string(diff), "WIDENS ~ stripe-charges: + credential header X-Api-Key") {
		t.Errorf("allowlist diff --fail-on-widen = %v\n%s", err, diff)
	}
}
