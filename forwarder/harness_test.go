package forwarder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/vaultclient"
)

// Test card data. The PAN is a well-known test number; tests assert that it
// reaches the processor and never the caller or the log.
const (
	testPAN   = "4242424242424242"
	testCVC   = "737"
	testToken = "tok_testaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	testName  = `Zoë "Q" O'Brien & Sons=1+2`
	caller    = "spiffe://cardgate.test/billing"
)

// fakeCards implements this package's Cards interface. Like the vault,
// DetokenizeConsumingCVC hands out a token's CVC once, and Detokenize never.
type fakeCards struct {
	mu       sync.Mutex
	cards    map[string]func() *vaultclient.Card
	detok    int
	consumed []string // tokens read by DetokenizeConsumingCVC
	detokErr error
}

func newFakeCards() *fakeCards {
	return &fakeCards{cards: map[string]func() *vaultclient.Card{
		testToken: func() *vaultclient.Card {
			return &vaultclient.Card{
				Token: testToken, Number: vaultclient.NewPAN(testPAN), ExpMonth: 3, ExpYear: 2031,
				CVC: vaultclient.NewCVC(testCVC), Name: vaultclient.NewName(testName), Brand: "visa", Last4: "4242",
			}
		},
	}}
}

// Detokenize returns the card without its CVC, as the vault does: only
// DetokenizeConsumingCVC hands out a CVC.
func (c *fakeCards) Detokenize(ctx context.Context, token string) (*vaultclient.Card, error) {
	card, err := c.card(token)
	if err != nil {
		return nil, err
	}
	card.CVC = vaultclient.CVC{}
	return card, nil
}

func (c *fakeCards) DetokenizeConsumingCVC(ctx context.Context, token string) (*vaultclient.Card, error) {
	card, err := c.card(token)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if slices.Contains(c.consumed, token) {
		card.CVC = vaultclient.CVC{}
	}
	c.consumed = append(c.consumed, token)
	return card, nil
}

func (c *fakeCards) card(token string) (*vaultclient.Card, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.detok++
	if c.detokErr != nil {
		return nil, c.detokErr
	}
	mk, ok := c.cards[token]
	if !ok {
		return nil, &vaultclient.Error{Code: vaultclient.CodeTokenNotFound, Message: "token not found"} // as vaultclient says it
	}
	return mk(), nil
}

func (c *fakeCards) counts() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.detok, len(c.consumed)
}

// fixedAllowlist implements AllowlistSource.
type fixedAllowlist struct {
	mu sync.Mutex
	al *allowlist.Allowlist
}

func (s *fixedAllowlist) Current() (*allowlist.Allowlist, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.al, nil
}

// mapResolver implements Resolver from a table the test sets.
type mapResolver struct {
	mu      sync.Mutex
	answers map[string][]netip.Addr
	lookups map[string]int
}

func (r *mapResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lookups == nil {
		r.lookups = map[string]int{}
	}
	r.lookups[host]++
	a, ok := r.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return a, nil
}

func (r *mapResolver) set(host string, addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.answers == nil {
		r.answers = map[string][]netip.Addr{}
	}
	r.answers[host] = nil
	for _, a := range addrs {
		r.answers[host] = append(r.answers[host], netip.MustParseAddr(a))
	}
}

func (r *mapResolver) count(host string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lookups[host]
}

// processor is a real TLS test server that records what it received.
type processor struct {
	srv   *httptest.Server
	port  int
	mu    sync.Mutex
	reqs  []*recorded
	conns atomic.Int32
}

type recorded struct {
	method, path, host string
	proto              int
	header             http.Header
	body               []byte
}

func (p *processor) requests() []*recorded {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*recorded(nil), p.reqs...)
}

// newProcessor starts a TLS server (certificate for example.com and
// *.example.com, from httptest) whose handler is h after recording.
func newProcessor(t testing.TB, h http.HandlerFunc, http2 bool) *processor {
	t.Helper()
	p := &processor{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.reqs = append(p.reqs, &recorded{method: r.Method, path: r.URL.RequestURI(), host: r.Host, proto: r.ProtoMajor, header: r.Header.Clone(), body: body})
		p.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		if h != nil {
			h(w, r)
		}
	}))
	srv.EnableHTTP2 = http2
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			p.conns.Add(1)
		}
	}
	srv.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p.srv = srv
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p.port, _ = strconv.Atoi(port)
	return p
}

// pool trusts the processor's certificate; nil for a processor that is
// not an httptest server (the test then sets RootCAs itself).
func (p *processor) pool() *x509.CertPool {
	if p.srv == nil {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.srv.Certificate())
	return pool
}

// entry is the destination the tests forward to: pay.example.com on the
// processor's port, open to loopback only through UnsafeAllowRanges.
func entry(port int) allowlist.Destination {
	return allowlist.Destination{
		ID:                "acme",
		URL:               "https://pay.example.com:" + strconv.Itoa(port) + "/v1",
		Methods:           []string{"POST", "GET"},
		Callers:           []string{caller},
		Fields:            []allowlist.Field{allowlist.FieldNumber, allowlist.FieldCVC, allowlist.FieldExpMonth, allowlist.FieldExpYear, allowlist.FieldName},
		CardHeaders:       []string{"X-Card-Number"},
		UnsafeAllowRanges: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Host:              "pay.example.com",
		Port:              port,
		PathPrefix:        "/v1",
	}
}

func newAllowlist(dests ...allowlist.Destination) *allowlist.Allowlist {
	return &allowlist.Allowlist{
		Doc: allowlist.Document{
			Format:       allowlist.Format,
			Version:      7,
			IssuedAt:     time.Now().Add(-time.Hour),
			Expires:      time.Now().Add(time.Hour),
			Destinations: dests,
		},
		SHA256: "0000000000000000000000000000000000000000000000000000000000000007",
	}
}

// env is one forwarder wired to one processor.
type env struct {
	t         testing.TB
	p         *processor
	f         *Forwarder
	cards     *fakeCards
	res       *mapResolver
	al        *fixedAllowlist
	logs      *bytes.Buffer
	auditPath string // the real audit file the forwarder writes
	auditSink *audit.FileSink
}

// newAuditLog returns a real audit log writing to a file in a temporary
// directory.
func newAuditLog(t testing.TB) (*audit.Log, *audit.FileSink, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	sink, err := audit.OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	log, err := audit.New(audit.Options{Sinks: []audit.Sink{sink}})
	if err != nil {
		t.Fatal(err)
	}
	return log, sink, path
}

// auditRecords reads back every record the forwarder wrote.
func (e *env) auditRecords() []audit.Record {
	e.t.Helper()
	return readAuditFile(e.t, e.auditPath)
}

func readAuditFile(t testing.TB, path string) []audit.Record {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Record
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r audit.Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// auditKinds lists the kinds of the records, in order.
func (e *env) auditKinds() []audit.Kind {
	var out []audit.Kind
	for _, r := range e.auditRecords() {
		out = append(out, r.Kind)
	}
	return out
}

type envOpt func(*Options, *allowlist.Destination)

func newEnv(t *testing.T, h http.HandlerFunc, opts ...envOpt) *env {
	t.Helper()
	return newEnvOn(t, newProcessor(t, h, false), opts...)
}

func newEnvOn(t testing.TB, p *processor, opts ...envOpt) *env {
	t.Helper()
	e := &env{t: t, p: p, cards: newFakeCards(), res: &mapResolver{}, logs: &bytes.Buffer{}}
	e.res.set("pay.example.com", "127.0.0.1")
	d := entry(p.port)
	auditLog, sink, path := newAuditLog(t)
	e.auditPath, e.auditSink = path, sink
	o := Options{
		Auditor:     auditLog,
		Cards:       e.cards,
		RootCAs:     p.pool(),
		Resolver:    e.res,
		Logger:      slog.New(slog.NewJSONHandler(lockedWriter{w: e.logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		DialTimeout: 2 * time.Second,
		DNSTimeout:  2 * time.Second,
	}
	for _, fn := range opts {
		fn(&o, &d)
	}
	e.al = &fixedAllowlist{al: newAllowlist(d)}
	o.Allowlist = e.al
	f, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(f.Close)
	e.f = f
	return e
}

var logMu sync.Mutex

type lockedWriter struct{ w *bytes.Buffer }

func (l lockedWriter) Write(p []byte) (int, error) {
	logMu.Lock()
	defer logMu.Unlock()
	return l.w.Write(p)
}

func (e *env) logText() string {
	logMu.Lock()
	defer logMu.Unlock()
	return e.logs.String()
}

// url is a URL on the processor under the entry's host.
func (e *env) url(path string) string {
	return "https://pay.example.com:" + strconv.Itoa(e.p.port) + path
}

func (e *env) jsonRequest(body string) *Request {
	return &Request{
		Destination: "acme",
		URL:         e.url("/v1/charges"),
		Method:      "POST",
		Card:        testToken,
		Headers:     http.Header{"Content-Type": {"application/json"}},
		Body:        body,
		Caller:      caller,
		RequestID:   "req_test",
	}
}

// forwardErr runs r and returns the *Error, failing the test when there is
// none or it has another type.
func forwardErr(t *testing.T, f *Forwarder, r *Request) *Error {
	t.Helper()
	resp, err := f.Forward(context.Background(), r)
	if err == nil {
		t.Fatalf("Forward = %+v, want an error", resp)
	}
	var fe *Error
	if !errors.As(err, &fe) {
		t.Fatalf("Forward error %T %v, want *Error", err, err)
	}
	return fe
}

func newEmptyPool() *x509.CertPool { return x509.NewCertPool() }

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

func newProcessorB(b *testing.B, h http.HandlerFunc) *processor { return newProcessor(b, h, false) }

func newEnvB(b *testing.B, p *processor) *env {
	e := newEnvOn(b, p)
	// Keep the benchmark's log cost out of the measurement.
	e.f.log = slog.New(slog.DiscardHandler)
	return e
}
