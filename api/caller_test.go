package api

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/cardgate/cardgate/cardscan"
	"github.com/cardgate/cardgate/internal/testpki"
)

func TestMaskCaller(t *testing.T) {
	tests := []struct{ in, want string }{
		{"dev:billing", "dev:billing"},
		{"dev:4242424242424242", "dev:************4242"},
		{"spiffe://cardgate.test/4111111111111111", "spiffe://cardgate.test/************1111"},
		{"4242.4242.4242.4242.billing.internal", "****.****.****.4242.billing.internal"},
		{"dev:order-1234-5678", "dev:order-1234-5678"}, // too few digits to be a card
		// A card glued to another digit hides from the group-aligned
		// masker: every digit goes.
		{"dev:74242424242424242", "dev:*****************"},
		// A card in base64 (here unpadded) is masked too.
		{"dev:NDI0MjQyNDI0MjQyNDI0Mg", "dev:**********************"},
	}
	for _, tt := range tests {
		got := MaskCaller(tt.in)
		if got != tt.want {
			t.Errorf("MaskCaller(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if cardscan.ContainsAnyWindow(got) {
			t.Errorf("MaskCaller(%q) = %q still holds a card-like run", tt.in, got)
		}
	}
}

// A card-like dev caller name reaches neither the forwarder, the log nor
// the answer in clear: the request goes on as the masked identity.
func TestDevCallerCardLikeNameIsMasked(t *testing.T) {
	var logs bytes.Buffer
	rec := &recorder{err: codedErr{"caller_not_allowed"}}
	h := newHandler(t, rec, Options{DevCallers: true, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	w, eb := do(h, "POST", "/v1/forward", `{"destination":"d"}`, map[string]string{DevCallerHeader: "4242424242424242"})
	if rec.caller != "dev:************4242" {
		t.Errorf("the forwarder got caller %q, want dev:************4242", rec.caller)
	}
	if w.Code != http.StatusForbidden || eb.Error.Code != "caller_not_allowed" {
		t.Errorf("answer = %d %q, want 403 caller_not_allowed", w.Code, eb.Error.Code)
	}
	for what, b := range map[string]string{"log": logs.String(), "answer": w.Body.String()} {
		if strings.Contains(b, "4242424242424242") || cardscan.ContainsString(b) {
			t.Errorf("the %s holds the card-like caller name: %s", what, b)
		}
	}
	if !strings.Contains(logs.String(), `"caller":"dev:************4242"`) {
		t.Errorf("the log does not name the masked caller:\n%s", logs.String())
	}
}

// mtlsServer runs h behind a real TLS listener that requires and verifies
// client certificates from ca, and returns it with a client factory that
// presents cert.
func mtlsServer(t *testing.T, h http.Handler, ca *testpki.CA) (*httptest.Server, func(cert tls.Certificate) *http.Client) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, func(cert tls.Certificate) *http.Client {
		tr := srv.Client().Transport.(*http.Transport).Clone()
		tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
}

// TestSPIFFEIdentity checks the X.509-SVID rules over real handshakes.
func TestSPIFFEIdentity(t *testing.T) {
	ca, err := testpki.NewCA("callers")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	srv, client := mtlsServer(t, newHandler(t, rec, Options{}), ca)
	tests := []struct {
		name   string
		leaf   testpki.Leaf
		status int
		caller string
	}{
		{"one spiffe id", testpki.Leaf{URIs: []string{"spiffe://cardgate.test/billing"}}, 200, "spiffe://cardgate.test/billing"},
		{"one spiffe id and a dns san", testpki.Leaf{URIs: []string{"spiffe://cardgate.test/billing"}, DNSNames: []string{"billing.internal"}}, 200, "spiffe://cardgate.test/billing"},
		{"two spiffe ids", testpki.Leaf{URIs: []string{"spiffe://cardgate.test/billing", "spiffe://cardgate.test/payouts"}}, 401, ""},
		{"a spiffe id and an https uri", testpki.Leaf{URIs: []string{"spiffe://cardgate.test/billing", "https://billing.example/"}, DNSNames: []string{"billing.internal"}}, 401, ""},
		{"uppercase trust domain", testpki.Leaf{URIs: []string{"spiffe://Cardgate.test/billing"}}, 401, ""},
		{"empty path segment", testpki.Leaf{URIs: []string{"spiffe://cardgate.test/a//b"}}, 401, ""},
		{"percent escape", testpki.Leaf{URIs: []string{"spiffe://cardgate.test/bill%20ing"}}, 401, ""},
		{"query", testpki.Leaf{URIs: []string{"spiffe://cardgate.test/billing?x=1"}}, 401, ""},
		{"no path", testpki.Leaf{URIs: []string{"spiffe://cardgate.test"}}, 401, ""},
		{"malformed spiffe id does not fall back to the dns san", testpki.Leaf{URIs: []string{"spiffe://cardgate.test/a/../b"}, DNSNames: []string{"billing.internal"}}, 401, ""},
		{"dns san", testpki.Leaf{DNSNames: []string{"billing.internal", "other.internal"}}, 200, "billing.internal"},
		{"non-spiffe uri san with a dns san is the dns san", testpki.Leaf{URIs: []string{"https://billing.example/"}, DNSNames: []string{"billing.internal"}}, 200, "billing.internal"},
		{"non-spiffe uri san alone", testpki.Leaf{URIs: []string{"https://billing.example/"}}, 401, ""},
		{"wildcard dns san", testpki.Leaf{DNSNames: []string{"*.billing.internal"}}, 401, ""},
		{"too long a spiffe id", testpki.Leaf{URIs: []string{"spiffe://cardgate.test/" + strings.Repeat("a", 110)}}, 401, ""},
		{"card-like spiffe id is masked", testpki.Leaf{URIs: []string{"spiffe://cardgate.test/4242424242424242"}}, 200, "spiffe://cardgate.test/************4242"},
		{"card-like dns san is masked", testpki.Leaf{DNSNames: []string{"4111111111111111.internal"}}, 200, "************1111.internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec.caller, rec.calls = "", 0
			tt.leaf.Client = true
			cert, err := ca.Issue(tt.leaf)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client(cert.TLS).Post(srv.URL+"/v1/forward", "application/json", strings.NewReader(`{"destination":"d"}`))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || rec.caller != tt.caller {
				t.Errorf("status %d caller %q, want %d %q (%s)", resp.StatusCode, rec.caller, tt.status, tt.caller, body)
			}
			if tt.status == 401 && rec.calls != 0 {
				t.Errorf("the forwarder was called for a refused certificate")
			}
			if cardscan.ContainsString(string(body)) {
				t.Errorf("the answer holds a card number: %s", body)
			}
		})
	}
}

// The leaf rules that a test CA cannot be asked to break over a real
// handshake: checked on certificates as crypto/x509 parses them.
func TestSPIFFELeafRules(t *testing.T) {
	id, _ := url.Parse("spiffe://cardgate.test/billing")
	chain := [][]*x509.Certificate{{{}}}
	tests := []struct {
		name string
		cert x509.Certificate
		ok   bool
	}{
		{"plain leaf", x509.Certificate{URIs: []*url.URL{id}, KeyUsage: x509.KeyUsageDigitalSignature}, true},
		{"ca flag", x509.Certificate{URIs: []*url.URL{id}, IsCA: true, BasicConstraintsValid: true}, false},
		{"keyCertSign", x509.Certificate{URIs: []*url.URL{id}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}, false},
		{"cRLSign", x509.Certificate{URIs: []*url.URL{id}, KeyUsage: x509.KeyUsageCRLSign}, false},
		{"scheme in capitals", x509.Certificate{URIs: []*url.URL{{Scheme: "SPIFFE", Host: "cardgate.test", Path: "/billing"}}, DNSNames: []string{"billing.internal"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CallerFromTLS(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{&tt.cert}, VerifiedChains: chain})
			if (err == nil) != tt.ok {
				t.Errorf("CallerFromTLS = %q, %v; want ok=%v", got, err, tt.ok)
			}
			if err != nil && errorCode(err) != CodeUnauthenticated {
				t.Errorf("error code = %q, want %s", errorCode(err), CodeUnauthenticated)
			}
		})
	}
}
