package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardgate/cardgate/client"
	"github.com/cardgate/cardgate/internal/testpki"
)

// keyRecorder is client middleware that records the Idempotency-Key of
// every attempt.
type keyRecorder struct {
	mu   sync.Mutex
	keys []string
}

func (k *keyRecorder) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		k.mu.Lock()
		k.keys = append(k.keys, r.Header.Get("Idempotency-Key"))
		k.mu.Unlock()
		return next.RoundTrip(r)
	})
}

func (k *keyRecorder) take() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := k.keys
	k.keys = nil
	return out
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// pemClient writes a caller certificate for identity and returns a client
// package Client that presents it.
func (e *env) pemClient(identity string, opts ...client.Option) *client.Client {
	e.t.Helper()
	cert, err := e.callerCA.Issue(testpki.Leaf{URIs: []string{identity}, Client: true})
	if err != nil {
		e.t.Fatal(err)
	}
	certFile := e.write("client/caller.crt", cert.CertPEM)
	keyFile := e.write("client/caller.key", cert.KeyPEM)
	caFile := e.write("client/gateway-ca.pem", e.serverCA.PEM())
	c, err := client.New("https://"+e.addr, append([]client.Option{client.WithPEMFiles(certFile, keyFile, caFile)}, opts...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(c.CloseIdleConnections)
	return c
}

// TestClientAgainstGateway runs the client package against the built
// gateway on Redis: tokenize, forward, dry run, a typed refusal, a retry
// after a not_sent answer that reuses the Idempotency-Key (and whose
// answer that key then replays), and a sent_no_response that is not
// retried.
func TestClientAgainstGateway(t *testing.T) {
	e := newEnv(t)
	e.writeConfig("limits:\n  per_caller_destination: {rate: 1, per: 1s, burst: 1}\n")
	resetter, resets := startResetter(t, e.procCA)
	e.signAllowlist(e.allowlistYAML(1) + drillEntry("resets", resetter))
	e.start()
	rec := &keyRecorder{}
	c := e.pemClient(billing, client.WithMiddleware(rec.wrap))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	tok, err := c.Tokenize(ctx, client.Card{Number: visa, ExpMonth: 12, ExpYear: time.Now().Year() + 2, CVC: testCVC, Name: "Jane Doe"})
	if err != nil {
		t.Fatalf("Tokenize: %v", err)
	}
	if !strings.HasPrefix(tok.Token, "tok_") || tok.Last4 != "4242" || tok.Brand != "visa" {
		t.Errorf("Tokenize = %+v", tok)
	}
	if keys := rec.take(); len(keys) != 1 || keys[0] != "" {
		t.Errorf("tokenize attempts carried keys %q, want one attempt without a key", keys)
	}

	req := &client.ForwardRequest{
		Destination: "acme-charges",
		URL:         e.procURL,
		Method:      http.MethodPost,
		Card:        tok.Token,
		Headers:     http.Header{"Content-Type": {"application/json"}},
		Body:        `{"amount":1000,"number":"{{card.number}}"}`,
	}
	dry := *req
	dry.DryRun = true
	preview, err := c.Forward(ctx, &dry)
	if err != nil || preview.Outcome != client.NotSent || preview.DryRun == nil || !strings.Contains(preview.DryRun.Body, "[card.number]") {
		t.Fatalf("dry run = %+v, %v; want not_sent with a preview", preview, err)
	}
	rec.take()

	// The budget (one forward a second) refuses the next forward with
	// rate_limited, not_sent; the client waits Retry-After and tries again
	// with the same key.
	first, err := c.Forward(ctx, req)
	if err != nil || first.Outcome != client.Answered || first.Status != http.StatusCreated {
		t.Fatalf("Forward = %+v, %v; want answered 201", first, err)
	}
	rec.take()
	start := time.Now()
	second, err := c.Forward(ctx, req)
	if err != nil || second.Outcome != client.Answered {
		t.Fatalf("Forward after the budget is spent = %+v, %v; want answered after a retry", second, err)
	}
	keys := rec.take()
	if len(keys) != 2 || keys[0] == "" || keys[0] != keys[1] || keys[0] != second.IdempotencyKey {
		t.Errorf("attempts carried keys %q (answer's key %q); want two attempts with one key", keys, second.IdempotencyKey)
	}
	if took := time.Since(start); took < 900*time.Millisecond {
		t.Errorf("the retry came after %v; want it to wait Retry-After (1s)", took)
	}
	if n := len(e.processor.received()); n != 2 {
		t.Errorf("processor received %d forwards, want 2", n)
	}
	if strings.Contains(second.Body, visa) || !strings.Contains(second.Body, "4242") {
		t.Errorf("answer body %q: want the number masked to its last four", second.Body)
	}

	// The same key again: the gateway replays the stored answer and sends
	// nothing (after the budget lets the request in).
	again := *req
	again.IdempotencyKey = second.IdempotencyKey
	replay, err := c.Forward(ctx, &again)
	if err != nil || !replay.Replayed || replay.ForwardID != second.ForwardID {
		t.Fatalf("Forward with the same key = %+v, %v; want the replay of %s", replay, err, second.ForwardID)
	}
	if n := len(e.processor.received()); n != 2 {
		t.Errorf("processor received %d forwards after the replay, want still 2", n)
	}

	// A typed refusal.
	elsewhere := *req
	elsewhere.Destination = "nowhere"
	_, err = c.Forward(ctx, &elsewhere)
	var ce *client.Error
	if !errors.Is(err, client.ErrDestinationNotAllowed) || !errors.As(err, &ce) || ce.Outcome != client.NotSent || ce.Status != http.StatusForbidden || ce.RequestID == "" {
		t.Errorf("Forward to an unlisted destination: %v, want destination_not_allowed, not_sent, 403, a request id", err)
	}

	// sent_no_response: the processor read the request and reset the
	// connection. Never retried.
	time.Sleep(time.Second) // the budget
	rec.take()
	reset := *req
	reset.Destination, reset.URL = "resets", "https://"+resetter+"/v1/charges"
	_, err = c.Forward(ctx, &reset)
	if !errors.As(err, &ce) || ce.Outcome != client.SentNoResponse || ce.Attempts != 1 {
		t.Fatalf("Forward to a processor that resets: %v, want sent_no_response after one attempt", err)
	}
	if keys := rec.take(); len(keys) != 1 {
		t.Errorf("%d attempts, want 1", len(keys))
	}
	if n := resets(); n != 1 {
		t.Errorf("the resetting processor received %d requests, want 1", n)
	}
	for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err)} {
		e.assertNoCardsIn("the client's error", []byte(text))
	}
}

// TestInitSelfHosted runs `cardgate init` as a new user would: serve with
// the configuration it wrote, tokenize and forward over mTLS with its
// caller certificate to a test processor with its processor certificate,
// the same with the client package and its example program, and a second
// init into the same directory, which refuses and changes nothing.
func TestInitSelfHosted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gw")
	// The processor's port is chosen first, since the allowlist names it.
	procLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer procLn.Close()
	procURL := "https://" + procLn.Addr().String() + "/v1/charges"
	out, err := exec.Command(binary, "init", "-processor", procURL, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("cardgate init: %v\n%s", err, out)
	}
	for _, want := range []string{"cardgate serve -config " + filepath.Join(dir, "cardgate.yaml"), "--cert " + filepath.Join(dir, "caller.crt"), "go run ./client/example"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("init's next steps lack %q:\n%s", want, out)
		}
	}

	before := dirSnapshot(t, dir)
	again := exec.Command(binary, "init", dir)
	var stderr bytes.Buffer
	again.Stderr = &stderr
	if err := again.Run(); err == nil || !strings.Contains(stderr.String(), "refusing to overwrite") {
		t.Errorf("a second init: %v, %q; want a refusal", err, stderr.String())
	}
	if after := dirSnapshot(t, dir); !mapsEqual(before, after) {
		t.Errorf("a second init changed the directory")
	}

	proc := serveProcessor(t, procLn, dir)
	t.Setenv("CARDGATE_LISTEN_ADDR", "127.0.0.1:0")
	gw, err := startProcess(t, binary, "serve", "-config", filepath.Join(dir, "cardgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	addr, err := gw.waitForLog("cardgate listening", "addr", 15*time.Second)
	if err != nil {
		t.Fatalf("the gateway did not start on init's configuration: %v\n%s", err, gw.log())
	}
	defer func() {
		for _, sp := range testCardSpellings {
			if strings.Contains(gw.log(), sp.text) {
				t.Errorf("the gateway log holds the test card (%s)", sp.how)
			}
		}
	}()
	base := "https://" + addr

	// What the printed curl commands do.
	hc := initCallerHTTP(t, dir)
	status, body := postJSON(t, hc, base+"/v1/cards", fmt.Sprintf(`{"number":%q,"exp_month":12,"exp_year":2035,"cvc":"123"}`, visa))
	var info struct{ Token string }
	if status != http.StatusCreated || json.Unmarshal(body, &info) != nil || !strings.HasPrefix(info.Token, "tok_") {
		t.Fatalf("POST /v1/cards = %d %s", status, body)
	}
	fwd := fmt.Sprintf(`{"destination":"example-local-processor","url":%q,"method":"POST","card":%q,"headers":{"Content-Type":["application/json"]},"body":"{\"amount\":1000,\"number\":\"{{card.number}}\",\"cvc\":\"{{card.cvc}}\"}"`, procURL, info.Token)
	status, body = postJSON(t, hc, base+"/v1/forward", fwd+`,"dry_run":true}`)
	if status != http.StatusOK || !bytes.Contains(body, []byte(`"outcome":"not_sent"`)) || proc.count() != 0 {
		t.Fatalf("dry run = %d %s (processor received %d)", status, body, proc.count())
	}
	status, body = postJSON(t, hc, base+"/v1/forward", fwd+`}`)
	if status != http.StatusOK || !bytes.Contains(body, []byte(`"outcome":"answered"`)) || bytes.Contains(body, []byte(visa)) {
		t.Fatalf("forward = %d %s; want answered, the number masked", status, body)
	}
	if got := proc.last(); !strings.Contains(got, visa) || !strings.Contains(got, `"cvc":"123"`) {
		t.Errorf("the processor did not receive the card (got %d bytes)", len(got))
	}

	// The client package: the bolt store refuses an Idempotency-Key, so
	// the caller turns keys off.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	withKeys, err := client.New(base, client.WithPEMFiles(filepath.Join(dir, "caller.crt"), filepath.Join(dir, "caller.key"), filepath.Join(dir, "ca.pem")))
	if err != nil {
		t.Fatal(err)
	}
	defer withKeys.CloseIdleConnections()
	req := &client.ForwardRequest{Destination: "example-local-processor", URL: procURL, Method: "POST", Card: info.Token,
		Headers: http.Header{"Content-Type": {"application/json"}}, Body: `{"number":"{{card.number}}"}`}
	if _, err := withKeys.Forward(ctx, req); !errors.Is(err, client.ErrIdempotencyNotSupported) {
		t.Errorf("Forward with a key to the bolt gateway: %v, want idempotency_not_supported", err)
	}
	noKeys, err := client.New(base, client.WithoutIdempotencyKeys(),
		client.WithPEMFiles(filepath.Join(dir, "caller.crt"), filepath.Join(dir, "caller.key"), filepath.Join(dir, "ca.pem")))
	if err != nil {
		t.Fatal(err)
	}
	defer noKeys.CloseIdleConnections()
	resp, err := noKeys.Forward(ctx, req)
	if err != nil || resp.Outcome != client.Answered || strings.Contains(resp.Body, visa) {
		t.Fatalf("client Forward = %+v, %v", resp, err)
	}

	// The example program the next steps print, built from this checkout.
	example := filepath.Join(t.TempDir(), "example")
	if out, err := exec.Command("go", "build", "-o", example, "../client/example").CombinedOutput(); err != nil {
		t.Fatalf("go build ./client/example: %v\n%s", err, out)
	}
	received := proc.count()
	out, err = exec.Command(example, "-gateway", base, "-dir", dir, "-url", procURL, "-idempotency-keys=false").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "the processor answered 201 (outcome answered)") || strings.Contains(string(out), visa) {
		t.Errorf("the client example: %v\n%s", err, out)
	}
	if proc.count() != received+1 {
		t.Errorf("the example's forward did not reach the processor")
	}
}

// initProcessor is a test processor that serves with the certificate
// init wrote.
type initProcessor struct {
	mu     sync.Mutex
	bodies []string
}

func serveProcessor(t *testing.T, ln net.Listener, dir string) *initProcessor {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "processor.crt"), filepath.Join(dir, "processor.key"))
	if err != nil {
		t.Fatal(err)
	}
	p := &initProcessor{}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		p.mu.Lock()
		p.bodies = append(p.bodies, string(b))
		p.mu.Unlock()
		var in struct{ Number string }
		_ = json.Unmarshal(b, &in)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":"ch_1","number":%q}`, in.Number) // echoed, so the masking shows
	})}
	go srv.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	t.Cleanup(func() { srv.Close() })
	return p
}

func (p *initProcessor) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.bodies)
}

func (p *initProcessor) last() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.bodies) == 0 {
		return ""
	}
	return p.bodies[len(p.bodies)-1]
}

// initCallerHTTP is what curl --cacert ca.pem --cert caller.crt --key
// caller.key does.
func initCallerHTTP(t *testing.T, dir string) *http.Client {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "caller.crt"), filepath.Join(dir, "caller.key"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}
}

func postJSON(t *testing.T, c *http.Client, url, body string) (int, []byte) {
	t.Helper()
	resp, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func dirSnapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
