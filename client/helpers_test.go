package client

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cardgate/cardgate/internal/testpki"
)

// step is one scripted answer of a test gateway.
type step struct {
	status  int
	body    string
	headers map[string]string
	// abort drops the request after reading it, without an answer
	// (a closed connection over HTTP/1.1, a reset stream over HTTP/2).
	abort bool
	// hang waits until the request's context ends.
	hang bool
}

// seen is one request as the test gateway received it.
type seen struct {
	method, path, key, contentType string
	body                           string
	clientSerial                   string // the serial of the client's certificate
	clientURI                      string
	proto                          int // HTTP major version
}

// scripted is an mTLS test gateway that answers each request with the
// next step, and 500 once the script is over.
type scripted struct {
	srv      *httptest.Server
	serverCA *testpki.CA
	callerCA *testpki.CA
	dir      string // PEM files: ca.pem, caller.crt, caller.key

	mu    sync.Mutex
	steps []step
	reqs  []seen
}

// startScripted starts a scripted gateway on 127.0.0.1, over HTTP/2 when
// h2, and writes a caller certificate for it.
func startScripted(t *testing.T, h2 bool, steps ...step) *scripted {
	t.Helper()
	s := &scripted{steps: steps, dir: t.TempDir()}
	var err error
	if s.serverCA, err = testpki.NewCA("client test server CA"); err != nil {
		t.Fatal(err)
	}
	if s.callerCA, err = testpki.NewCA("client test callers CA"); err != nil {
		t.Fatal(err)
	}
	leaf, err := s.serverCA.Issue(testpki.Leaf{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake refusals are expected
	s.srv.EnableHTTP2 = h2
	s.srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{leaf.TLS},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    s.callerCA.Pool(),
		MinVersion:   tls.VersionTLS12,
	}
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	s.writeCaller(t, "spiffe://cardgate.test/billing")
	writeFile(t, filepath.Join(s.dir, "ca.pem"), s.serverCA.PEM())
	return s
}

// writeCaller writes a new caller certificate for identity.
func (s *scripted) writeCaller(t *testing.T, identity string) {
	t.Helper()
	c, err := s.callerCA.Issue(testpki.Leaf{URIs: []string{identity}, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(s.dir, "caller.crt"), c.CertPEM)
	writeFile(t, filepath.Join(s.dir, "caller.key"), c.KeyPEM)
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	// Through a rename, so that a reader never sees half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func (s *scripted) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rec := seen{proto: r.ProtoMajor, method: r.Method, path: r.URL.Path, key: r.Header.Get("Idempotency-Key"), contentType: r.Header.Get("Content-Type"), body: string(b)}
	if len(r.TLS.PeerCertificates) > 0 {
		cert := r.TLS.PeerCertificates[0]
		rec.clientSerial = cert.SerialNumber.String()
		if len(cert.URIs) > 0 {
			rec.clientURI = cert.URIs[0].String()
		}
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, rec)
	st := step{status: 500, body: `{"error":{"code":"internal_error","message":"script over","request_id":"req_over"}}`}
	if len(s.steps) > 0 {
		st, s.steps = s.steps[0], s.steps[1:]
	}
	s.mu.Unlock()
	switch {
	case st.abort:
		panic(http.ErrAbortHandler)
	case st.hang:
		<-r.Context().Done()
		return
	}
	for k, v := range st.headers {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(st.status)
	io.WriteString(w, st.body)
}

func (s *scripted) received() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.reqs...)
}

// client returns a client of s with PEM files, whose waits are recorded
// and skipped.
func (s *scripted) client(t *testing.T, opts ...Option) (*Client, *[]time.Duration) {
	t.Helper()
	opts = append([]Option{WithPEMFiles(filepath.Join(s.dir, "caller.crt"), filepath.Join(s.dir, "caller.key"), filepath.Join(s.dir, "ca.pem"))}, opts...)
	c, err := New(s.srv.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	var mu sync.Mutex
	waits := &[]time.Duration{}
	c.sleep = func(ctx context.Context, d time.Duration) bool {
		mu.Lock()
		*waits = append(*waits, d)
		mu.Unlock()
		return ctx.Err() == nil
	}
	return c, waits
}

// Canned answers.
const (
	forwardOK   = `{"forward_id":"fwd_1","allowlist_version":3,"outcome":"answered","status":201,"headers":{"Content-Type":["application/json"]},"body":"{\"id\":\"ch_1\"}"}`
	tokenizeOK  = `{"token":"tok_abc","last4":"4242","brand":"visa","exp_month":12,"exp_year":2030,"fingerprint":"fp"}`
	testCard    = "4242424242424242"
	testCVCText = "737"
)

func errAnswer(code, outcome string) string {
	o := ""
	if outcome != "" {
		o = `,"outcome":"` + outcome + `"`
	}
	return `{"error":{"code":"` + code + `","message":"scripted ` + code + `","request_id":"req_` + code + `"` + o + `}}`
}

func sampleForward() *ForwardRequest {
	return &ForwardRequest{
		Destination: "acme-charges",
		URL:         "https://api.acme.example/v1/charges",
		Method:      "POST",
		Card:        "tok_abc",
		Headers:     http.Header{"Content-Type": {"application/json"}},
		Body:        `{"number":"{{card.number}}"}`,
	}
}
