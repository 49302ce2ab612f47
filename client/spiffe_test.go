package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/cardgate/cardgate/internal/testpki"
)

// svidSource is an x509svid.Source whose SVID the test rotates, as the
// Workload API rotates a workloadapi.X509Source's.
type svidSource struct {
	mu    sync.Mutex
	svid  *x509svid.SVID
	calls int
}

func (s *svidSource) GetX509SVID() (*x509svid.SVID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	return s.svid, nil
}

func (s *svidSource) rotate(t *testing.T, ca *testpki.CA, id string) {
	t.Helper()
	issued, err := ca.Issue(testpki.Leaf{URIs: []string{id}, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	svid, err := x509svid.Parse(issued.CertPEM, issued.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.svid = svid
	s.mu.Unlock()
}

// startSPIFFEGateway starts a scripted gateway whose own certificate is an
// X.509-SVID of gatewayID, issued, like the callers', by ca.
func startSPIFFEGateway(t *testing.T, ca *testpki.CA, gatewayID string, steps ...step) *scripted {
	t.Helper()
	leaf, err := ca.Issue(testpki.Leaf{URIs: []string{gatewayID}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	s := &scripted{steps: steps}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake refusals are expected
	s.srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{leaf.TLS},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool(),
		MinVersion:   tls.VersionTLS12,
	}
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	return s
}

// TestX509Source: the client presents the source's current SVID at each
// handshake, so a rotation takes effect without a new Client, and it
// accepts only the gateway ID its authorizer names.
func TestX509Source(t *testing.T) {
	ca, err := testpki.NewCA("cardgate.test SPIFFE CA")
	if err != nil {
		t.Fatal(err)
	}
	td := spiffeid.RequireTrustDomainFromString("cardgate.test")
	bundle := x509bundle.FromX509Authorities(td, []*x509.Certificate{ca.Cert})
	gatewayID := spiffeid.RequireFromString("spiffe://cardgate.test/gateway")
	s := startSPIFFEGateway(t, ca, gatewayID.String(), step{status: 200, body: forwardOK}, step{status: 200, body: forwardOK})
	src := &svidSource{}
	src.rotate(t, ca, "spiffe://cardgate.test/billing")

	c, err := New(s.srv.URL, WithX509Source(src, bundle, tlsconfig.AuthorizeID(gatewayID)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	ctx := context.Background()
	if _, err := c.Forward(ctx, sampleForward()); err != nil {
		t.Fatal(err)
	}
	src.rotate(t, ca, "spiffe://cardgate.test/billing-rotated")
	c.CloseIdleConnections()
	if _, err := c.Forward(ctx, sampleForward()); err != nil {
		t.Fatal(err)
	}
	got := s.received()
	if got[0].clientURI != "spiffe://cardgate.test/billing" || got[1].clientURI != "spiffe://cardgate.test/billing-rotated" {
		t.Errorf("identities presented = %q, %q; want the SVID before and after the rotation", got[0].clientURI, got[1].clientURI)
	}

	// Another gateway ID: the handshake fails and nothing is sent.
	other, err := New(s.srv.URL, WithX509Source(src, bundle, tlsconfig.AuthorizeID(spiffeid.RequireFromString("spiffe://cardgate.test/not-the-gateway"))))
	if err != nil {
		t.Fatal(err)
	}
	other.sleep = func(context.Context, time.Duration) bool { return true }
	_, err = other.Forward(ctx, sampleForward())
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrNoAnswer) || e.Outcome != NotSent {
		t.Fatalf("Forward to an unauthorized gateway ID: %v, want no answer, not_sent", err)
	}
	if n := len(s.received()); n != 2 {
		t.Errorf("the gateway received %d requests, want the 2 earlier ones", n)
	}
}

// TestX509SourceAndServerCA: an SVID for the caller, and an ordinary
// certificate for the gateway, verified against a CA file and the host.
func TestX509SourceAndServerCA(t *testing.T) {
	s := startScripted(t, false, step{status: 201, body: tokenizeOK})
	src := &svidSource{}
	src.rotate(t, s.callerCA, "spiffe://cardgate.test/collector")
	c, err := New(s.srv.URL, WithX509SourceAndServerCA(src, filepath.Join(s.dir, "ca.pem")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	if _, err := c.Tokenize(context.Background(), Card{Number: testCard, ExpMonth: 12, ExpYear: 2030}); err != nil {
		t.Fatal(err)
	}
	if got := s.received()[0].clientURI; got != "spiffe://cardgate.test/collector" {
		t.Errorf("identity presented = %q, want the SVID's", got)
	}
}
