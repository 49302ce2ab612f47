package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cardgate/cardgate/cardscan"
	"github.com/cardgate/cardgate/internal/redistest"
	"github.com/cardgate/cardgate/internal/testpki"
)

// Standard test card numbers only. Every test checks that none of them
// appears in the gateway's log, and the store tests check Redis too.
const (
	visa       = "4242424242424242"
	visa2      = "4111111111111111"
	mastercard = "5555555555554444"
	amex       = "378282246310005"
	testCVC    = "737"
)

var testCards = []string{visa, visa2, mastercard, amex}

// binary is the cardgate built once for the whole run by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cardgate-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "cardgate")
	// Built as the Dockerfile builds it (-tags grpcnotrace).
	build := exec.Command("go", "build", "-tags", "grpcnotrace", "-o", binary, "../cmd/cardgate")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "integration: building cardgate:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one gateway process with its own PKI, Redis, processor and
// signed allowlist.
type env struct {
	t         *testing.T
	dir       string
	callerCA  *testpki.CA
	serverCA  *testpki.CA
	procCA    *testpki.CA
	processor *processor
	procURL   string
	redis     *redistest.Server
	signKey   string // ssh private key file made by ssh-keygen
	gw        *process
	addr      string
}

const (
	billing = "spiffe://cardgate.test/billing"
	payouts = "spiffe://cardgate.test/payouts"
)

// newEnv prepares everything but does not start the gateway.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	var err error
	for _, ca := range []**testpki.CA{&e.callerCA, &e.serverCA, &e.procCA} {
		if *ca, err = testpki.NewCA("cardgate integration CA"); err != nil {
			t.Fatal(err)
		}
	}
	e.processor = startProcessor(t, e.procCA)
	e.procURL = "https://" + e.processor.addr + "/v1/charges"
	e.redis = redistest.Start(t)

	gwCert, err := e.serverCA.Issue(testpki.Leaf{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	e.write("gateway.crt", gwCert.CertPEM)
	e.write("gateway.key", gwCert.KeyPEM)
	e.write("callers-ca.pem", e.callerCA.PEM())
	e.write("processor-ca.pem", e.procCA.PEM())

	e.signKey = filepath.Join(e.dir, "auditor")
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "auditor", "-f", e.signKey)
	pub, err := os.ReadFile(e.signKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	e.write("allowed_signers", fmt.Appendf(nil, "auditor@cardgate.test namespaces=%q %s", namespace, pub))
	run(t, binary, "keys", "init", filepath.Join(e.dir, "keyring.json"))
	e.writeConfig("")
	return e
}

// namespace is the SSHSIG namespace cardgate requires; the tests sign with
// the stock ssh-keygen to prove an auditor's own tool is enough.
const namespace = "cardgate-allowlist@v1"

func (e *env) write(name string, b []byte) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// writeConfig writes the gateway's production-mode configuration. extra is
// appended verbatim. Production needs an audit sink: the file
// DIR/audit.log, unless extra brings its own audit section.
func (e *env) writeConfig(extra string) {
	if !strings.HasPrefix(extra, "audit:") && !strings.Contains(extra, "\naudit:") {
		extra = "audit:\n  file: " + filepath.Join(e.dir, "audit.log") + "\n" + extra
	}
	e.write("cardgate.yaml", fmt.Appendf(nil, `mode: production
environment: integration
listen:
  addr: 127.0.0.1:0
  tls:
    cert_file: %[1]s/gateway.crt
    key_file: %[1]s/gateway.key
    client_ca_file: %[1]s/callers-ca.pem
  max_request_bytes: 65536
allowlist:
  path: %[1]s/allowlist.yaml
  signatures_dir: %[1]s/allowlist.sigs
  allowed_signers: %[1]s/allowed_signers
  threshold: 1
store:
  backend: redis
  redis:
    addrs: [%[2]s]
keys:
  backend: local
  local:
    path: %[1]s/keyring.json
    unsafe_allow_outside_dev: true
egress:
  ca_file: %[1]s/processor-ca.pem
  timeout: 5s
log:
  level: debug
%[3]s`, e.dir, e.redis.Addr(), extra))
}

// allowlistYAML is a valid document for this env's processor.
func (e *env) allowlistYAML(version int) string {
	now := time.Now().UTC()
	return fmt.Sprintf(`format: cardgate.allowlist/v1
namespace: %s
environment: integration
version: %d
issued_at: %s
expires: %s
prev_sha256: ""
destinations:
  - id: acme-charges
    purpose: card payments in the integration tests
    owner: payments@cardgate.test
    url: %s
    methods: [POST]
    callers: ["%s"]
    fields: [number, cvc, exp_month, exp_year, name]
    unsafe_allow_ranges: [127.0.0.1/32]
  - id: acme-refunds
    purpose: refunds need no card fields beyond the number
    owner: payments@cardgate.test
    url: https://%s/v1/refunds
    methods: [POST]
    callers: ["%s"]
    fields: [number]
    unsafe_allow_ranges: [127.0.0.1/32]
`, namespace, version, now.Add(-time.Hour).Format(time.RFC3339), now.Add(30*24*time.Hour).Format(time.RFC3339),
		e.procURL, billing, e.processor.addr, billing)
}

// signAllowlist writes doc and signs it with ssh-keygen -Y sign.
func (e *env) signAllowlist(doc string) {
	e.t.Helper()
	p := e.write("allowlist.yaml", []byte(doc))
	run(e.t, "ssh-keygen", "-q", "-Y", "sign", "-f", e.signKey, "-n", namespace, p)
	sig, err := os.ReadFile(p + ".sig")
	if err != nil {
		e.t.Fatal(err)
	}
	os.Remove(p + ".sig")
	e.write("allowlist.sigs/auditor.sig", sig)
}

// start runs the gateway and waits until /readyz answers 200.
func (e *env) start() {
	e.t.Helper()
	p, err := startProcess(e.t, binary, "serve", "-config", filepath.Join(e.dir, "cardgate.yaml"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.gw = p
	addr, err := p.waitForLog("cardgate listening", "addr", 15*time.Second)
	if err != nil {
		e.t.Fatalf("gateway did not start: %v\nlog:\n%s", err, p.log())
	}
	e.addr = addr
	c := e.client(billing)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.Get("https://" + e.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("gateway never became ready (last: %v)\nlog:\n%s", err, p.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Whatever else a test checks, the log must never hold a card.
	e.t.Cleanup(func() { e.assertNoCardsIn("gateway log", []byte(p.log())) })
}

// cardSpelling is one way a test card number could be written: grouped
// with a separator, or with its digits escaped.
type cardSpelling struct {
	card, how, text string
}

// testCardSpellings lists the test cards as written plain, grouped (4-4-4-4,
// or 4-6-5 for Amex) with spaces, dashes, dots, '+', %20 or a JSON-escaped
// space, and with every digit JSON-escaped (\u0034…) or percent-escaped
// (%34…). These are what a log line, an encoder or a careless format could
// make of a card. cardscan reads them all, but run over the captured bytes
// it flags what only looks like a card: the all-zero hash that starts an
// audit chain (a group of more than 19 digits), certificate serials,
// Unix-nanosecond span times and the rate limiter's microsecond times in
// Redis.
var testCardSpellings = cardSpellings()

func cardSpellings() []cardSpelling {
	var out []cardSpelling
	for _, c := range testCards {
		groups := []string{c[0:4], c[4:8], c[8:12], c[12:]}
		if len(c) == 15 {
			groups = []string{c[0:4], c[4:10], c[10:]}
		}
		out = append(out, cardSpelling{c, "plain", c})
		for _, sep := range []string{" ", "-", ".", "+", "%20", "%2D", `\u0020`} {
			out = append(out, cardSpelling{c, "grouped with " + strconv.Quote(sep), strings.Join(groups, sep)})
		}
		var js, pct strings.Builder
		for _, d := range c {
			fmt.Fprintf(&js, `\u%04x`, d)
			fmt.Fprintf(&pct, "%%%02X", d)
		}
		out = append(out, cardSpelling{c, "JSON-escaped", js.String()}, cardSpelling{c, "percent-escaped", pct.String()})
	}
	return out
}

// TestCardSpellings: every spelling assertNoCardsIn looks for is one the
// gateway's own detector reads as a card, and the forms that matter are
// there.
func TestCardSpellings(t *testing.T) {
	have := map[string]bool{}
	for _, sp := range testCardSpellings {
		have[sp.text] = true
		if !cardscan.ContainsString(sp.text) {
			t.Errorf("cardscan.ContainsString(%s spelled %s) = false, want true", sp.card[:6], sp.how)
		}
	}
	for _, want := range []string{visa, "4242 4242 4242 4242", "4242-4242-4242-4242", "4242.4242.4242.4242",
		"3782 822463 10005", "5555+5555+5555+4444", "4111%201111%201111%201111",
		`\u0034\u0032\u0034\u0032\u0034\u0032\u0034\u0032\u0034\u0032\u0034\u0032\u0034\u0032\u0034\u0032`,
		"%34%32%34%32%34%32%34%32%34%32%34%32%34%32%34%32"} {
		if !have[want] {
			t.Errorf("assertNoCardsIn does not look for %q", want)
		}
	}
}

func (e *env) assertNoCardsIn(what string, b []byte) {
	e.t.Helper()
	for _, sp := range testCardSpellings {
		if bytes.Contains(b, []byte(sp.text)) {
			e.t.Errorf("%s contains the test card number %s… (%s)", what, sp.card[:6], sp.how)
		}
	}
	if bytes.Contains(b, []byte(`"`+testCVC+`"`)) || bytes.Contains(b, []byte("cvc="+testCVC)) {
		e.t.Errorf("%s contains the test CVC", what)
	}
}

// client returns an HTTPS client that presents a certificate for identity.
func (e *env) client(identity string) *http.Client {
	e.t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.serverCA.Pool(), MinVersion: tls.VersionTLS12}}
	if identity != "" {
		cert, err := e.callerCA.Issue(testpki.Leaf{URIs: []string{identity}, Client: true})
		if err != nil {
			e.t.Fatal(err)
		}
		tr.TLSClientConfig.Certificates = []tls.Certificate{cert.TLS}
	}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}
}

// post sends v as JSON and decodes the answer into a generic map.
func (e *env) post(c *http.Client, path string, v any) (int, map[string]any) {
	e.t.Helper()
	var body io.Reader
	switch v := v.(type) {
	case string:
		body = strings.NewReader(v)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			e.t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(http.MethodPost, "https://"+e.addr+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if err := json.Unmarshal(raw, &out); err != nil {
		e.t.Fatalf("POST %s: answer is not JSON: %v: %q", path, err, raw)
	}
	return resp.StatusCode, out
}

func errCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// tokenize stores number and returns its token.
func (e *env) tokenize(c *http.Client, number string) string {
	e.t.Helper()
	status, out := e.post(c, "/v1/cards", map[string]any{
		"number": number, "exp_month": 12, "exp_year": time.Now().Year() + 2, "cvc": testCVC, "name": `Jane "JJ" Doe & Co`,
	})
	if status != http.StatusCreated {
		e.t.Fatalf("POST /v1/cards = %d %v, want 201", status, out)
	}
	tok, _ := out["token"].(string)
	return tok
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// process is a running cardgate binary whose stderr is captured.
type process struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
	err  error
}

func startProcess(t *testing.T, name string, args ...string) (*process, error) {
	p := &process{cmd: exec.Command(name, args...), done: make(chan struct{})}
	p.cmd.Stdout = &lockedWriter{p: p}
	p.cmd.Stderr = &lockedWriter{p: p}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p, nil
}

type lockedWriter struct{ p *process }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.buf.Write(b)
}

func (p *process) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// waitForLog waits for a JSON log line whose msg is msg and returns the
// string value of key in it.
func (p *process) waitForLog(msg, key string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(p.log()))
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == msg {
				v, _ := line[key].(string)
				return v, nil
			}
		}
		select {
		case <-p.done:
			return "", fmt.Errorf("process exited: %v", p.err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return "", fmt.Errorf("no %q log line within %v", msg, timeout)
}

// wait waits for the process to exit and returns its exit code.
func (p *process) wait(timeout time.Duration) (int, error) {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), nil
	case <-time.After(timeout):
		return -1, fmt.Errorf("still running after %v", timeout)
	}
}

func (p *process) signal(s syscall.Signal) error { return p.cmd.Process.Signal(s) }

// processor is a TLS test processor that records what it receives.
type processor struct {
	addr string
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	Method, Path string
	Header       http.Header
	Body         string
}

func startProcessor(t *testing.T, ca *testpki.CA) *processor {
	t.Helper()
	leaf, err := ca.Issue(testpki.Leaf{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	p := &processor{addr: ln.Addr().String()}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return p
}

func (p *processor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	p.mu.Lock()
	p.reqs = append(p.reqs, recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: string(b)})
	p.mu.Unlock()
	// Answer with the number it got, as a careless processor might, so the
	// tests can check that the gateway masks it.
	var in struct {
		Number string `json:"number"`
	}
	_ = json.Unmarshal(b, &in)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Set-Cookie", "session=processor-secret")
	w.Header().Set("X-Card-Echo", in.Number)
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"id":"ch_123","status":"succeeded","number":%q}`, in.Number)
}

func (p *processor) received() []recorded {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]recorded(nil), p.reqs...)
}
