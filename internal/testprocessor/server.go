package testprocessor

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cardgate/cardgate/internal/testpki"
)

// Identifiers every authorised answer carries. They look like card
// numbers to a scanner that knows nothing of the answer's structure: the
// ARN is 23 digits with Luhn-valid runs inside, and the network
// transaction id is 15 Luhn-valid digits, as about one in ten are.
const (
	// ARN is an acquirer reference number (23 digits).
	ARN = "74537604221431003881310"
	// NetworkTransactionID is a Visa-style network transaction id (15
	// digits, Luhn-valid).
	NetworkTransactionID = "722463149772052"
	// AuthCode is the issuer's authorization code.
	AuthCode = "831000"
)

// The card an AnswerAccountUpdated answer carries: a standard test card.
const (
	UpdatedNumber   = "5555555555554444"
	UpdatedExpMonth = 3
	UpdatedExpYear  = 2031
)

// Card is the card a processor expects to receive. Empty CVC or Name
// means the request must not carry that field (a merchant-initiated
// payment sends no CVC).
type Card struct {
	Number   string
	ExpMonth int
	ExpYear  int
	CVC      string
	Name     string
}

// Answer selects the success body.
type Answer int

const (
	// AnswerAuthorised is a plain authorisation with its identifiers.
	AnswerAuthorised Answer = iota
	// AnswerAccountUpdated also carries a new card number (UpdatedNumber)
	// and expiry, as an account updater answers when the card was
	// replaced.
	AnswerAccountUpdated
)

// Verdict is how a processor judged a request.
type Verdict string

// Verdicts.
const (
	Accepted Verdict = "accepted"
	// RefusedAuth: a credential, signature or digest is missing or wrong.
	RefusedAuth Verdict = "refused-auth"
	// RefusedRequest: the path, method, media type or body is wrong.
	RefusedRequest Verdict = "refused-request"
	// RefusedCard: the request is well formed and authenticated, but the
	// card fields are not the expected card (or are in the wrong format).
	RefusedCard Verdict = "refused-card"
)

// Exchange is one request a processor received and its judgement.
type Exchange struct {
	Method string
	Path   string // the request target as received (path and query)
	Host   string
	Header http.Header
	Body   []byte
	// Verdict and Reason say how it was judged; Reason names the check
	// that failed (never a value) and is empty when accepted.
	Verdict Verdict
	Reason  string
	Status  int
}

// Processor is one processor shape. The shapes in this package are its
// only implementations.
type Processor interface {
	handle(r *http.Request, body []byte, now time.Time) reply
}

// reply is a processor's judgement and its answer.
type reply struct {
	verdict     Verdict
	reason      string
	status      int
	contentType string
	header      http.Header
	body        []byte
}

// maxBody bounds what a processor reads of a request.
const maxBody = 1 << 20

// Server is a running test processor.
type Server struct {
	// URL is the base URL, https://127.0.0.1:PORT, without a path.
	URL string
	// Addr is 127.0.0.1:PORT.
	Addr string

	ca  *testpki.CA
	srv *http.Server
	now func() time.Time
	// mu serializes requests with each other and with Update, so a test
	// may change what the processor expects between requests.
	mu   sync.Mutex
	p    Processor
	seen []Exchange
}

// Start runs p on 127.0.0.1 over TLS with a certificate for 127.0.0.1 and
// localhost issued by ca, and stops it when the test ends.
func Start(tb testing.TB, ca *testpki.CA, p Processor) *Server {
	tb.Helper()
	leaf, err := ca.Issue(testpki.Leaf{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}})
	if err != nil {
		tb.Fatalf("testprocessor: %v", err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{leaf.TLS},
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		tb.Fatalf("testprocessor: listen: %v", err)
	}
	s := &Server{Addr: ln.Addr().String(), ca: ca, p: p, now: time.Now}
	s.URL = "https://" + s.Addr
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          nil,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			tb.Errorf("testprocessor: serve: %v", err)
		}
	}()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.srv.Shutdown(ctx)
		<-done
	})
	return s
}

// ServeHTTP judges a request with the processor and records it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	var rp reply
	switch {
	case err != nil:
		rp = reply{verdict: RefusedRequest, reason: "body unreadable", status: http.StatusBadRequest, contentType: "text/plain", body: []byte("bad request\n")}
	case len(body) > maxBody:
		rp = reply{verdict: RefusedRequest, reason: "body too large", status: http.StatusRequestEntityTooLarge, contentType: "text/plain", body: []byte("too large\n")}
	}
	s.mu.Lock()
	if rp.status == 0 {
		rp = s.p.handle(r, body, s.now())
	}
	s.seen = append(s.seen, Exchange{
		Method: r.Method, Path: r.RequestURI, Host: r.Host, Header: r.Header.Clone(), Body: body,
		Verdict: rp.verdict, Reason: rp.reason, Status: rp.status,
	})
	s.mu.Unlock()
	for k, v := range rp.header {
		w.Header()[k] = v
	}
	if rp.contentType != "" {
		w.Header().Set("Content-Type", rp.contentType)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(rp.body)))
	w.WriteHeader(rp.status)
	_, _ = w.Write(rp.body)
}

// Update runs f, which may change the processor's fields, while no
// request is being judged.
func (s *Server) Update(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
}

// Exchanges returns every request received so far, oldest first.
func (s *Server) Exchanges() []Exchange {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Exchange, len(s.seen))
	copy(out, s.seen)
	return out
}

// Last returns the latest request received; ok is false when there was
// none.
func (s *Server) Last() (x Exchange, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.seen) == 0 {
		return Exchange{}, false
	}
	return s.seen[len(s.seen)-1], true
}

// Client returns an HTTPS client that trusts the server's CA, for tests
// that talk to the processor directly.
func (s *Server) Client() *http.Client {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: s.ca.Pool(), MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 5 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}
