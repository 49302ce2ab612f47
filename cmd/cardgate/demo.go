package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/api"
	"github.com/cardgate/cardgate/config"
	"github.com/cardgate/cardgate/internal/testpki"
	"github.com/cardgate/cardgate/vaultclient"
)

// The demo uses a public test card number; no real card data exists in
// this project.
const demoCard = "4242424242424242"

const demoUsage = `usage: cardgate demo [-v] [-keep]

Runs cardgate end to end on loopback, with no Redis: a TLS test processor,
a gateway in dev mode, a freshly signed allowlist, a tokenize, a forward
and a refused forward.

flags:
`

// runDemo starts a test processor and a gateway on loopback, on a freshly
// signed allowlist, and walks through a tokenize, a forward and a refusal.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := commandFlags("demo", demoUsage, stderr)
	keep := fs.Bool("keep", false, "keep the generated files (allowlist, signature, keyring, store) and print where")
	verbose := fs.Bool("v", false, "print the gateway's log lines")
	if err := parseCommand(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	dir, err := os.MkdirTemp("", "cardgate-demo-")
	if err != nil {
		return err
	}
	if *keep {
		fmt.Fprintln(stdout, "demo files are in", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }

	// 1. A local TLS test processor with a certificate from a throwaway CA.
	ca, err := testpki.NewCA("cardgate demo CA")
	if err != nil {
		return err
	}
	leaf, err := ca.Issue(testpki.Leaf{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		return err
	}
	proc := &demoProcessor{}
	procLn, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MinVersion: tls.VersionTLS12})
	if err != nil {
		return err
	}
	procSrv := &http.Server{Handler: proc, ReadHeaderTimeout: 5 * time.Second}
	go procSrv.Serve(procLn)
	defer procSrv.Close()
	procURL := "https://" + procLn.Addr().String() + "/v1/charges"
	say("== test processor listening at %s", procURL)

	// 2. An auditor key, its allowed_signers line, and a signed allowlist.
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return err
	}
	files := demoFiles{dir: dir}
	signers := fmt.Sprintf("demo-auditor@cardgate.example namespaces=%q %s", allowlist.Namespace, ssh.MarshalAuthorizedKey(signer.PublicKey()))
	doc := demoAllowlist(procLn.Addr().(*net.TCPAddr).Port, time.Now())
	sig, err := allowlist.Sign(doc, signer)
	if err != nil {
		return err
	}
	if err := files.write(map[string][]byte{
		"ca.pem":                          ca.PEM(),
		"allowed_signers":                 []byte(signers),
		"allowlist.yaml":                  doc,
		"allowlist.sigs/demo-auditor.sig": sig,
	}); err != nil {
		return err
	}
	say("== signed allowlist version 1 with key %s", ssh.FingerprintSHA256(signer.PublicKey()))
	if err := vaultclient.CreateLocalKeyring(files.path("keyring.json")); err != nil {
		return err
	}

	// 3. The gateway, in dev mode on loopback, with the embedded store.
	cfg := config.Default()
	cfg.Mode = config.ModeDev
	cfg.Environment = "demo"
	cfg.Allowlist.Path = files.path("allowlist.yaml")
	cfg.Allowlist.SignaturesDir = files.path("allowlist.sigs")
	cfg.Allowlist.AllowedSigners = files.path("allowed_signers")
	cfg.Allowlist.Threshold = 1 // the demo has one auditor; production wants 2 or more
	cfg.Allowlist.StateFile = files.path("allowlist.state")
	cfg.Store.Backend = config.StoreBolt
	cfg.Store.Bolt.Path = files.path("cards.db")
	cfg.Keys.Local.Path = files.path("keyring.json")
	cfg.Egress.CAFile = files.path("ca.pem")
	cfg.Listen.Addr = "127.0.0.1:0"
	if err := cfg.Validate(); err != nil {
		return err
	}
	logOut := io.Discard
	if *verbose {
		logOut = stderr
	}
	g, err := openGateway(ctx, cfg, slog.New(slog.NewJSONHandler(logOut, nil)))
	if err != nil {
		return err
	}
	defer g.close()
	ln, err := net.Listen("tcp", cfg.Listen.Addr)
	if err != nil {
		return err
	}
	gctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- g.serve(gctx, ln, nil) }()
	defer func() { stop(); <-served }()
	base := "http://" + ln.Addr().String()
	say("== cardgate listening at %s (dev mode: caller identity from the %s header, loopback only)", base, api.DevCallerHeader)

	c := &demoClient{base: base, caller: "billing", http: &http.Client{Timeout: 10 * time.Second}}

	// 4. Tokenize a test card.
	var tok vaultclient.TokenInfo
	if err := c.post("/v1/cards", map[string]any{"number": demoCard, "exp_month": 12, "exp_year": time.Now().Year() + 3, "cvc": "123"}, http.StatusCreated, &tok, stdout); err != nil {
		return err
	}
	say("   the caller now holds %s (brand %s, last4 %s), never the number", tok.Token, tok.Brand, tok.Last4)

	// 5. Forward it to the allowlisted processor.
	fwd := map[string]any{
		"destination": "demo-processor",
		"url":         procURL,
		"method":      "POST",
		"card":        tok.Token,
		"headers":     map[string][]string{"Content-Type": {"application/json"}},
		"body":        `{"amount":1000,"number":"{{card.number}}","cvc":"{{card.cvc}}","exp":"{{card.exp_month}}/{{card.exp_year}}"}`,
	}
	var resp map[string]any
	if err := c.post("/v1/forward", fwd, http.StatusOK, &resp, stdout); err != nil {
		return err
	}
	received := proc.last()
	say("== the test processor received:\n   %s", received)
	if !strings.Contains(received, demoCard) {
		return fmt.Errorf("demo: the processor did not receive the card")
	}
	body, _ := resp["body"].(string)
	if strings.Contains(body, demoCard) {
		return fmt.Errorf("demo: the caller saw the card number unmasked")
	}
	say("   the processor got the real number; the caller saw it masked in the response above")

	// 6. A destination that is not on the allowlist is refused.
	proc.reset()
	fwd["destination"] = "exfil"
	fwd["url"] = "https://collector.attacker.example/steal"
	var refused map[string]any
	if err := c.post("/v1/forward", fwd, http.StatusForbidden, &refused, stdout); err != nil {
		return err
	}
	if proc.count() != 0 {
		return fmt.Errorf("demo: a refused forward reached the processor")
	}
	say("== refused, and nothing was sent. Demo complete.")
	return nil
}

func demoAllowlist(port int, now time.Time) []byte {
	return fmt.Appendf(nil, `# cardgate demo allowlist. Auditors sign these exact bytes.
format: %s
namespace: %s
environment: demo
version: 1
issued_at: %s
expires: %s
prev_sha256: ""
destinations:
  - id: demo-processor
    purpose: the demo's local test processor
    owner: demo@cardgate.example
    url: https://127.0.0.1:%d/v1/charges
    methods: [POST]
    callers: ["%sbilling"]
    fields: [number, cvc, exp_month, exp_year]
    # The test processor runs on loopback; this named override admits it.
    unsafe_allow_ranges: [127.0.0.1/32]
`, allowlist.Format, allowlist.Namespace,
		now.UTC().Add(-time.Minute).Format(time.RFC3339),
		now.UTC().Add(30*24*time.Hour).Format(time.RFC3339),
		port, api.DevCallerPrefix)
}

type demoFiles struct{ dir string }

func (f demoFiles) path(name string) string { return filepath.Join(f.dir, name) }

func (f demoFiles) write(files map[string][]byte) error {
	for name, b := range files {
		p := f.path(name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

type demoClient struct {
	base, caller string
	http         *http.Client
}

func (c *demoClient) post(path string, body any, want int, out any, stdout io.Writer) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, c.base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(api.DevCallerHeader, c.caller)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n-> POST %s\n<- %d %s\n", path, resp.StatusCode, bytes.TrimSpace(raw))
	if resp.StatusCode != want {
		return fmt.Errorf("demo: POST %s answered %d, want %d", path, resp.StatusCode, want)
	}
	return json.Unmarshal(raw, out)
}

// demoProcessor stands in for a payment processor. It answers with the card
// number it received, so the demo can show the gateway masking it.
type demoProcessor struct {
	mu     sync.Mutex
	bodies []string
}

func (p *demoProcessor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	p.mu.Lock()
	p.bodies = append(p.bodies, string(b))
	p.mu.Unlock()
	var in struct {
		Number string `json:"number"`
	}
	_ = json.Unmarshal(b, &in)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Set-Cookie", "processor_session=abc")
	fmt.Fprintf(w, `{"id":"ch_demo_1","status":"succeeded","card_number_seen":%q}`, in.Number)
}

func (p *demoProcessor) last() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.bodies) == 0 {
		return ""
	}
	return p.bodies[len(p.bodies)-1]
}

func (p *demoProcessor) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.bodies)
}

func (p *demoProcessor) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bodies = nil
}
