package api

import (
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/cardgate/cardgate/internal/testpki"
)

// TestCallerChainMustBeVerified: a caller certificate names someone only
// when the TLS handshake verified its chain against the caller CA. The
// refused cases are real handshakes on a listener that asks for a
// certificate but does not verify it (tls.RequireAnyClientCert, a
// misconfiguration this package must survive): the connection state then
// holds the peer certificate and no verified chain, so only CallerFromTLS's
// own chain check stands between the certificate and an identity. One
// certificate comes from the caller CA, one from a CA nobody trusts; both
// carry an identity the allowlist would accept.
func TestCallerChainMustBeVerified(t *testing.T) {
	const id = "spiffe://cardgate.test/billing"
	trusted, err := testpki.NewCA("callers")
	if err != nil {
		t.Fatal(err)
	}
	untrusted, err := testpki.NewCA("not the callers' CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf := testpki.Leaf{URIs: []string{id}, DNSNames: []string{"billing.internal"}, Client: true}
	fromTrusted, err := trusted.Issue(leaf)
	if err != nil {
		t.Fatal(err)
	}
	fromUntrusted, err := untrusted.Issue(leaf)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		auth      tls.ClientAuthType
		cert      tls.Certificate
		handshake bool   // false: the handshake itself must fail
		status    int    // when the handshake succeeds
		caller    string // what the forwarder must see; "" for none
	}{
		// The control: the same certificate, verified, is an identity.
		{"caller CA, verified", tls.RequireAndVerifyClientCert, fromTrusted.TLS, true, http.StatusOK, id},
		{"caller CA, chain never verified", tls.RequireAnyClientCert, fromTrusted.TLS, true, http.StatusUnauthorized, ""},
		{"untrusted CA, chain never verified", tls.RequireAnyClientCert, fromUntrusted.TLS, true, http.StatusUnauthorized, ""},
		// The gateway's own setting refuses it before any handler runs.
		{"untrusted CA, verifying listener", tls.RequireAndVerifyClientCert, fromUntrusted.TLS, false, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			var (
				mu   sync.Mutex
				seen *tls.ConnectionState
			)
			api := newHandler(t, rec, Options{})
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				cs := *r.TLS
				seen = &cs
				mu.Unlock()
				api.ServeHTTP(w, r)
			}))
			srv.TLS = &tls.Config{ClientAuth: tt.auth, ClientCAs: trusted.Pool(), MinVersion: tls.VersionTLS12}
			srv.Config.ErrorLog = log.New(io.Discard, "", 0)
			srv.StartTLS()
			t.Cleanup(srv.Close)
			tr := srv.Client().Transport.(*http.Transport).Clone()
			// Always present the certificate: crypto/tls would otherwise
			// hold back one the server's list of acceptable CAs leaves out.
			cert := tt.cert
			tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
			t.Cleanup(tr.CloseIdleConnections)

			resp, err := (&http.Client{Transport: tr}).Post(srv.URL+"/v1/forward", "application/json", strings.NewReader(`{"destination":"d"}`))
			if !tt.handshake {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("POST = %d, want the handshake refused", resp.StatusCode)
				}
				if rec.calls != 0 {
					t.Errorf("the forwarder was called %d times, want 0", rec.calls)
				}
				return
			}
			if err != nil {
				t.Fatalf("POST: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || rec.caller != tt.caller {
				t.Errorf("POST = %d, forwarder saw caller %q; want %d, %q (%s)", resp.StatusCode, rec.caller, tt.status, tt.caller, body)
			}
			if tt.caller == "" && rec.calls != 0 {
				t.Errorf("the forwarder was called %d times for a refused certificate, want 0", rec.calls)
			}

			// The same state, handed to CallerFromTLS directly.
			mu.Lock()
			cs := seen
			mu.Unlock()
			if cs == nil {
				t.Fatal("the handler never saw the connection state")
			}
			if len(cs.PeerCertificates) == 0 {
				t.Fatal("fixture: the handshake carried no peer certificate")
			}
			if tt.caller == "" && len(cs.VerifiedChains) != 0 {
				t.Fatalf("fixture: the handshake verified %d chains, want none", len(cs.VerifiedChains))
			}
			got, err := CallerFromTLS(cs)
			switch {
			case tt.caller != "" && (err != nil || got != tt.caller):
				t.Errorf("CallerFromTLS(verified) = %q, %v; want %q", got, err, tt.caller)
			case tt.caller == "" && (err == nil || got != ""):
				t.Errorf("CallerFromTLS(never verified) = %q, %v; want unauthenticated", got, err)
			case tt.caller == "" && errorCode(err) != CodeUnauthenticated:
				t.Errorf("CallerFromTLS(never verified) error code = %q, want %s", errorCode(err), CodeUnauthenticated)
			}
		})
	}
}
