package api

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardgate/cardgate/internal/testpki"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestRevocation(t *testing.T) {
	ca, err := testpki.NewCA("callers")
	if err != nil {
		t.Fatal(err)
	}
	other, err := testpki.NewCA("not the callers' CA")
	if err != nil {
		t.Fatal(err)
	}
	issue := func(ca *testpki.CA) *x509.Certificate {
		c, err := ca.Issue(testpki.Leaf{URIs: []string{"spiffe://cardgate.test/billing"}, Client: true})
		if err != nil {
			t.Fatal(err)
		}
		return c.TLS.Leaf
	}
	revoked, kept := issue(ca), issue(ca)
	now := time.Now()
	crl := func(ca *testpki.CA, next time.Duration, revoked ...*x509.Certificate) []byte {
		der, err := ca.CRL(revoked, now.Add(-time.Minute), now.Add(next))
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	asPEM := func(der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}) }
	chain := func(leaf *x509.Certificate) tls.ConnectionState {
		return tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{leaf, ca.Cert}}}
	}
	write := func(t *testing.T, b []byte) string {
		p := filepath.Join(t.TempDir(), "callers.crl")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	for _, form := range []struct {
		name string
		enc  func([]byte) []byte
	}{{"der", func(b []byte) []byte { return b }}, {"pem", asPEM}} {
		t.Run(form.name, func(t *testing.T) {
			clk := &testClock{t: now}
			r, err := NewRevocation(write(t, form.enc(crl(ca, time.Hour, revoked))), []*x509.Certificate{ca.Cert}, clk.now)
			if err != nil {
				t.Fatalf("NewRevocation = %v", err)
			}
			if err := r.VerifyConnection(chain(revoked)); err == nil || !strings.Contains(err.Error(), "is revoked") {
				t.Errorf("VerifyConnection(revoked) = %v, want revoked", err)
			}
			if err := r.VerifyConnection(chain(kept)); err != nil {
				t.Errorf("VerifyConnection(not revoked) = %v, want nil", err)
			}
			if _, err := r.Check(); err != nil {
				t.Errorf("Check() = %v, want ready", err)
			}
			// Past nextUpdate: fail closed, for every caller.
			clk.add(2 * time.Hour)
			if err := r.VerifyConnection(chain(kept)); err == nil || !strings.Contains(err.Error(), "expired") {
				t.Errorf("VerifyConnection after nextUpdate = %v, want refused as expired", err)
			}
			if _, err := r.Check(); err == nil {
				t.Errorf("Check() after nextUpdate = nil, want not ready")
			}
		})
	}

	refusedAtLoad := []struct {
		name string
		file []byte
		want string
	}{
		{"signed by another CA", crl(other, time.Hour), "not signed by a CA"},
		{"expired", crl(ca, -time.Second), "expired"},
		{"not a CRL", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "not an X509 CRL"},
		{"garbage", []byte("garbage"), "CRL 1"},
		{"empty", nil, "empty file"},
		{"two for one CA", append(asPEM(crl(ca, time.Hour)), asPEM(crl(ca, time.Hour))...), "two CRLs"},
	}
	for _, tt := range refusedAtLoad {
		t.Run("refused/"+tt.name, func(t *testing.T) {
			_, err := NewRevocation(write(t, tt.file), []*x509.Certificate{ca.Cert}, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "api: ") {
				t.Errorf("NewRevocation(%s) = %v, want an error containing %q", tt.name, err, tt.want)
			}
		})
	}
	t.Run("refused/a caller CA without a CRL", func(t *testing.T) {
		_, err := NewRevocation(write(t, crl(ca, time.Hour)), []*x509.Certificate{ca.Cert, other.Cert}, nil)
		if err == nil || !strings.Contains(err.Error(), "no CRL for caller CA") {
			t.Errorf("NewRevocation = %v, want no CRL for the second CA", err)
		}
	})

	t.Run("reload", func(t *testing.T) {
		path := write(t, crl(ca, time.Hour))
		r, err := NewRevocation(path, []*x509.Certificate{ca.Cert}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.VerifyConnection(chain(revoked)); err != nil {
			t.Fatalf("VerifyConnection before revocation = %v", err)
		}
		// A broken file is refused and the last good CRL stays.
		if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
			t.Fatal(err)
		}
		if !r.Changed() {
			t.Errorf("Changed() = false after the file changed")
		}
		if err := r.Load(); err == nil {
			t.Errorf("Load(garbage) = nil")
		}
		if d, err := r.Check(); err != nil || !strings.Contains(d, "last reload failed") {
			t.Errorf("Check() = %q, %v, want ready with the failed reload reported", d, err)
		}
		if err := os.WriteFile(path, crl(ca, time.Hour, revoked), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := r.Load(); err != nil {
			t.Fatalf("Load = %v", err)
		}
		if err := r.VerifyConnection(chain(revoked)); err == nil {
			t.Errorf("VerifyConnection after the reload = nil, want revoked")
		}
	})

	t.Run("leaf from an intermediate without a CRL", func(t *testing.T) {
		r, err := NewRevocation(write(t, crl(ca, time.Hour)), []*x509.Certificate{ca.Cert}, nil)
		if err != nil {
			t.Fatal(err)
		}
		cs := tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{kept, other.Cert, ca.Cert}}}
		if err := r.VerifyConnection(cs); err == nil || !strings.Contains(err.Error(), "has no CRL") {
			t.Errorf("VerifyConnection = %v, want refused: no CRL covers the leaf", err)
		}
	})
}

// A delta CRL, or one scoped by an issuing distribution point, covers only
// part of what its CA revoked; loaded as the CA's CRL it would admit the
// rest, so it is refused.
func TestRevocationRefusesPartialCRLs(t *testing.T) {
	ca, err := testpki.NewCA("callers")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for name, oid := range map[string]asn1.ObjectIdentifier{
		"delta":                      {2, 5, 29, 27},
		"issuing distribution point": {2, 5, 29, 28},
	} {
		t.Run(name, func(t *testing.T) {
			value, _ := asn1.Marshal(1)
			if name != "delta" {
				value, _ = asn1.Marshal(struct{}{})
			}
			der, err := ca.CRLWithExtensions(nil, now.Add(-time.Minute), now.Add(time.Hour), []pkix.Extension{{Id: oid, Critical: true, Value: value}})
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(t.TempDir(), "callers.crl")
			if err := os.WriteFile(p, der, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := NewRevocation(p, []*x509.Certificate{ca.Cert}, time.Now); err == nil || !strings.Contains(err.Error(), "delta or partitioned") {
				t.Errorf("NewRevocation(%s CRL) = %v, want a refusal", name, err)
			}
		})
	}
}
