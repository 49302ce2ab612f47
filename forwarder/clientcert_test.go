package forwarder

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/internal/testpki"
)

// mtlsProcessor is a real TLS test processor that asks for a client
// certificate (auth says how firmly) and records the one it got per
// request.
type mtlsProcessor struct {
	*processor
	mu    sync.Mutex
	peers []string // per request: the client certificate's URI, or ""
}

func newMTLSProcessor(t *testing.T, auth tls.ClientAuthType, clientCA *testpki.CA, maxVersion uint16) *mtlsProcessor {
	t.Helper()
	mp := &mtlsProcessor{processor: &processor{}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer := ""
		if len(r.TLS.PeerCertificates) > 0 {
			peer = "(no uri)"
			if u := r.TLS.PeerCertificates[0].URIs; len(u) > 0 {
				peer = u[0].String()
			}
		}
		mp.mu.Lock()
		mp.peers = append(mp.peers, peer)
		mp.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"succeeded"}`))
	}))
	srv.TLS = &tls.Config{ClientAuth: auth, ClientCAs: clientCA.Pool(), MaxVersion: maxVersion}
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mp.conns.Add(1)
		}
	}
	srv.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	mp.srv = srv
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	mp.port, _ = strconv.Atoi(port)
	return mp
}

func (p *mtlsProcessor) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.peers...)
}

func issueClient(t *testing.T, ca *testpki.CA, uri string) *tls.Certificate {
	t.Helper()
	c, err := ca.Issue(testpki.Leaf{URIs: []string{uri}, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	return &c.TLS
}

// TestForwardClientCert runs a processor that requires and verifies a
// client certificate, under TLS 1.2 (refused inside the handshake:
// upstream_tls_error, not_sent) and TLS 1.3 (refused after the client's
// side of the handshake ended: not_sent when the refusal alert is read).
func TestForwardClientCert(t *testing.T) {
	const gatewayID = "spiffe://cardgate.test/gateway"
	processorCA, err := testpki.NewCA("processor's client CA")
	if err != nil {
		t.Fatal(err)
	}
	otherCA, err := testpki.NewCA("someone else's CA")
	if err != nil {
		t.Fatal(err)
	}
	good := issueClient(t, processorCA, gatewayID)
	stranger := issueClient(t, otherCA, gatewayID)

	tests := []struct {
		name     string
		certs    map[string]*tls.Certificate // Options.ClientCerts
		entry    string                      // the entry's tls.client_cert
		wantCode string                      // "" means answered
		wantPeer string                      // what the processor saw
	}{
		{"entry names the right certificate", map[string]*tls.Certificate{"acme-mtls": good}, "acme-mtls", "", gatewayID},
		{"entry names none", map[string]*tls.Certificate{"acme-mtls": good}, "", CodeUpstreamTLSError, ""},
		{"entry names a certificate the processor does not trust", map[string]*tls.Certificate{"acme-mtls": stranger}, "acme-mtls", CodeUpstreamTLSError, ""},
		{"entry names an unconfigured certificate", map[string]*tls.Certificate{"other": good}, "acme-mtls", CodeInternal, ""},
		{"no certificates configured", nil, "acme-mtls", CodeInternal, ""},
	}
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, tt := range tests {
			t.Run(tls.VersionName(version)+"/"+tt.name, func(t *testing.T) {
				p := newMTLSProcessor(t, tls.RequireAndVerifyClientCert, processorCA, version)
				e := newEnvOn(t, p.processor, func(o *Options, d *allowlist.Destination) {
					o.ClientCerts = tt.certs
					if tt.entry != "" {
						d.TLS = &allowlist.TLS{ClientCert: tt.entry}
					}
				})
				resp, err := e.f.Forward(context.Background(), e.jsonRequest(`{"n":"{{card.number}}"}`))
				if tt.wantCode == "" {
					if err != nil {
						t.Fatalf("Forward = %v, want answered", err)
					}
					if resp.Outcome != Answered || resp.Status != http.StatusOK {
						t.Errorf("Forward = %q/%d, want answered/200", resp.Outcome, resp.Status)
					}
				} else {
					var fe *Error
					if !errors.As(err, &fe) {
						t.Fatalf("Forward = %+v, %v, want a *Error", resp, err)
					}
					switch {
					case fe.Code == tt.wantCode && fe.Outcome == NotSent:
					case version == tls.VersionTLS13 && tt.wantCode == CodeUpstreamTLSError &&
						fe.Code == CodeUpstreamError && fe.Outcome == SentNoResponse:
						// TLS 1.3: the processor's refusal follows the client's
						// side of the handshake. When its close beats the
						// refusal alert to the gateway, nothing proves the
						// request went unread, so the outcome stays the
						// cautious one.
					default:
						t.Errorf("Forward = %q/%q (%v), want %s/not_sent", fe.Code, fe.Outcome, fe, tt.wantCode)
					}
				}
				seen := p.seen()
				switch {
				case tt.wantCode != "" && len(seen) != 0:
					t.Errorf("processor handled %d requests, want none", len(seen))
				case tt.wantCode == "" && (len(seen) != 1 || seen[0] != tt.wantPeer):
					t.Errorf("processor saw client certificates %q, want [%q]", seen, tt.wantPeer)
				}
				if tt.wantCode == CodeInternal && p.conns.Load() != 0 {
					t.Errorf("processor saw %d connections for an unconfigured certificate, want none", p.conns.Load())
				}
			})
		}
	}
}

// TestForwardClientCertOnlyForItsEntry: a processor that asks for a client
// certificate without requiring one gets none from an entry that names
// none, although the gateway holds one.
func TestForwardClientCertOnlyForItsEntry(t *testing.T) {
	ca, err := testpki.NewCA("processor's client CA")
	if err != nil {
		t.Fatal(err)
	}
	cert := issueClient(t, ca, "spiffe://cardgate.test/gateway")
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			p := newMTLSProcessor(t, tls.RequestClientCert, ca, version)
			e := newEnvOn(t, p.processor, func(o *Options, d *allowlist.Destination) {
				o.ClientCerts = map[string]*tls.Certificate{"acme-mtls": cert}
			})
			if _, err := e.f.Forward(context.Background(), e.jsonRequest(`{"n":"{{card.number}}"}`)); err != nil {
				t.Fatalf("Forward = %v", err)
			}
			if seen := p.seen(); len(seen) != 1 || seen[0] != "" {
				t.Errorf("processor saw client certificates %q, want one request without any", seen)
			}
		})
	}
}
