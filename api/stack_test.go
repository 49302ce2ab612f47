package api

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/forwarder"
	"github.com/cardgate/cardgate/vaultclient"
)

// stack is the handler over the real card vault (local keyring, bolt
// store), the real forwarder, a real audit file and a real TLS processor:
// what cmd/cardgate builds, minus Redis. Its answers are the ones callers
// get.
type stack struct {
	t         *testing.T
	srv       *httptest.Server // the API, plain HTTP on loopback, dev callers
	vault     *vaultclient.Vault
	allow     *switchableAllowlist
	res       *tableResolver
	procPort  int
	auditPath string
	logs      *lockedBuffer
	down      atomic.Bool // fails the "switch" readiness check
}

const (
	stackCaller = "dev:billing"
	stackHost   = "pay.example.com" // httptest's certificate covers *.example.com
)

func newStack(t *testing.T) *stack {
	t.Helper()
	dir := t.TempDir()
	s := &stack{t: t, res: &tableResolver{m: map[string]string{stackHost: "127.0.0.1"}}, logs: &lockedBuffer{}}

	keyring := filepath.Join(dir, "keyring.json")
	if err := vaultclient.CreateLocalKeyring(keyring); err != nil {
		t.Fatal(err)
	}
	keys, err := vaultclient.OpenLocalKeyring(keyring)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	store, err := vaultclient.OpenBoltStore(filepath.Join(dir, "cards.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if s.vault, err = vaultclient.New(store, keys, vaultclient.Options{}); err != nil {
		t.Fatal(err)
	}

	proc := httptest.NewUnstartedServer(http.HandlerFunc(stackProcessor))
	proc.Config.ErrorLog = log.New(io.Discard, "", 0)
	proc.StartTLS()
	t.Cleanup(proc.Close)
	_, port, _ := net.SplitHostPort(proc.Listener.Addr().String())
	s.procPort, _ = strconv.Atoi(port)
	roots := x509.NewCertPool()
	roots.AddCert(proc.Certificate())
	s.allow = &switchableAllowlist{al: s.allowlist(time.Now().Add(time.Hour))}

	s.auditPath = filepath.Join(dir, "audit.log")
	sink, err := audit.OpenFileSink(s.auditPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	auditLog, err := audit.New(audit.Options{Sinks: []audit.Sink{sink}})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(s.logs, nil))
	fwd, err := forwarder.New(forwarder.Options{
		Allowlist: s.allow, Cards: s.vault, Auditor: auditLog, RootCAs: roots, Resolver: s.res, Logger: logger,
		MaxAttempts: 1, DialTimeout: 2 * time.Second, DNSTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fwd.Close)
	h, err := New(Options{
		Cards: s.vault, Forwarder: fwd, DevCallers: true, Logger: logger, MaxRequestBytes: 16 << 10, MaxHeaderBytes: 8 << 10,
		Ready: []Check{
			{Name: "cards", Check: func(ctx context.Context) (string, error) { return "", s.vault.Ping(ctx) }},
			{Name: "switch", Check: func(context.Context) (string, error) {
				if s.down.Load() {
					return "", &Error{Code: "killswitch_unavailable", Message: "the kill switch state is stale"}
				}
				return "", nil
			}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.srv = httptest.NewUnstartedServer(h)
	s.srv.Config.MaxHeaderBytes = ServerMaxHeaderBytes(8 << 10)
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	return s
}

// stackProcessor answers like a processor: it echoes the card number it
// got (the gateway must mask it), or misbehaves on request.
func stackProcessor(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	switch r.URL.Path {
	case "/v1/big":
		w.Write([]byte(strings.Repeat("x", 4096)))
	case "/v1/slow":
		time.Sleep(2 * time.Second)
	case "/v1/redirect":
		w.Header().Set("Location", "https://elsewhere.example/")
		w.WriteHeader(http.StatusFound)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"id":"ch_1","echo":` + strconv.Quote(string(body)) + `}`))
	}
}

// allowlist is the document the stack serves: entries on the processor,
// and ones that fail in each way a forward can.
func (s *stack) allowlist(expires time.Time) *allowlist.Allowlist {
	all := []allowlist.Field{allowlist.FieldNumber, allowlist.FieldCVC, allowlist.FieldExpMonth, allowlist.FieldExpYear, allowlist.FieldName}
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	entry := func(id, host string, port int, mod func(*allowlist.Destination)) allowlist.Destination {
		d := allowlist.Destination{
			ID: id, URL: "https://" + host + ":" + strconv.Itoa(port) + "/v1", Methods: []string{"POST"},
			Callers: []string{stackCaller}, Fields: all, UnsafeAllowRanges: loopback,
			Host: host, Port: port, PathPrefix: "/v1",
		}
		if mod != nil {
			mod(&d)
		}
		return d
	}
	return &allowlist.Allowlist{
		Doc: allowlist.Document{
			Format: allowlist.Format, Version: 3, IssuedAt: time.Now().Add(-time.Hour), Expires: expires,
			Destinations: []allowlist.Destination{
				entry("acme", stackHost, s.procPort, nil),
				entry("acme-number-only", stackHost, s.procPort, func(d *allowlist.Destination) { d.Fields = all[:1] }),
				entry("acme-small", stackHost, s.procPort, func(d *allowlist.Destination) { d.MaxResponseBytes = 1024 }),
				entry("acme-quick", stackHost, s.procPort, func(d *allowlist.Destination) { d.Timeout = 300 * time.Millisecond }),
				entry("nowhere", "nowhere.example.com", s.procPort, nil),
				entry("closed", "closed.example.com", closedPort(s.t), nil),
				entry("private", "private.example.com", s.procPort, func(d *allowlist.Destination) { d.UnsafeAllowRanges = nil }),
				entry("untrusted", "untrusted.example.org", s.procPort, nil),
			},
		},
		SHA256: strings.Repeat("ab", 32),
	}
}

func closedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// switchableAllowlist is the forwarder's AllowlistSource; a test can swap
// the document or take it away.
type switchableAllowlist struct {
	mu sync.Mutex
	al *allowlist.Allowlist
}

func (a *switchableAllowlist) Current() (*allowlist.Allowlist, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.al == nil {
		return nil, &allowlist.DenyError{Reason: allowlist.ReasonAllowlistUnavailable, Detail: "no verified allowlist is loaded"}
	}
	return a.al, nil
}

func (a *switchableAllowlist) set(al *allowlist.Allowlist) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.al = al
}

// tableResolver resolves the stack's test hosts; the untrusted host
// resolves to the processor too, whose certificate does not name it.
type tableResolver struct {
	mu sync.Mutex
	m  map[string]string
}

func (r *tableResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch host {
	case "closed.example.com", "untrusted.example.org":
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	case "private.example.com":
		return []netip.Addr{netip.MustParseAddr("10.1.2.3")}, nil
	}
	if a, ok := r.m[host]; ok {
		return []netip.Addr{netip.MustParseAddr(a)}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// answer is one real response, read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// send makes one request to the stack as the dev caller (unless hdr
// overrides it); body is sent as application/json unless hdr sets a
// Content-Type ("-" removes it).
func (s *stack) send(method, path, body string, hdr map[string]string) answer {
	s.t.Helper()
	req, err := http.NewRequest(method, s.srv.URL+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set(DevCallerHeader, strings.TrimPrefix(stackCaller, DevCallerPrefix))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		if v == "-" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, raw}
}

// tokenize stores a test card and returns its token.
func (s *stack) tokenize(number string) string {
	s.t.Helper()
	a := s.send("POST", "/v1/cards", `{"number":"`+number+`","exp_month":12,"exp_year":`+strconv.Itoa(time.Now().Year()+2)+`,"cvc":"737","name":"Jane Doe"}`, nil)
	var info vaultclient.TokenInfo
	if err := json.Unmarshal(a.body, &info); a.status != http.StatusCreated || err != nil {
		s.t.Fatalf("POST /v1/cards = %d %s", a.status, a.body)
	}
	return info.Token
}

// auditRecords reads the audit file back.
func (s *stack) auditRecords() []audit.Record {
	s.t.Helper()
	f, err := os.Open(s.auditPath)
	if err != nil {
		s.t.Fatal(err)
	}
	defer f.Close()
	var out []audit.Record
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r audit.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			s.t.Fatalf("audit line %q: %v", sc.Bytes(), err)
		}
		out = append(out, r)
	}
	return out
}
