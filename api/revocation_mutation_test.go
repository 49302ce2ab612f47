package api

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardgate/cardgate/internal/testpki"
)

// Found by mutation testing (docs/mutation.md): the poller's change test,
// the file size bound at its edge, and which CRL of a file a refusal names.

// Changed is false for the file just loaded, so the poller does not reload
// (and log) every ten seconds, and true once the file changes or goes.
func TestRevocationChanged(t *testing.T) {
	ca, err := testpki.NewCA("callers")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	der, err := ca.CRL(nil, now.Add(-time.Minute), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "callers.crl")
	if err := os.WriteFile(path, der, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := NewRevocation(path, []*x509.Certificate{ca.Cert}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Changed() {
		t.Error("Changed() = true for the file just loaded, want false")
	}
	// Same bytes, a new modification time.
	later := now.Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	if !r.Changed() {
		t.Error("Changed() = false after the modification time changed, want true")
	}
	if err := r.Load(); err != nil {
		t.Fatal(err)
	}
	if r.Changed() {
		t.Error("Changed() = true right after a reload, want false")
	}
	// Another size, the same modification time.
	if err := os.WriteFile(path, append(der, 0), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	if !r.Changed() {
		t.Error("Changed() = false after the size changed, want true")
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if !r.Changed() {
		t.Error("Changed() = false after the file was removed, want true")
	}
}

// A CRL file of exactly maxCRLBytes is read whole; one byte more is
// refused. The padding comes first and the PEM block has no final newline,
// so that a read one byte short would cut its END line.
func TestRevocationSizeBound(t *testing.T) {
	ca, err := testpki.NewCA("callers")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	der, err := ca.CRL(nil, now.Add(-time.Minute), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	block := bytes.TrimRight(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), "\n")
	for _, tt := range []struct {
		size int
		ok   bool
	}{{maxCRLBytes, true}, {maxCRLBytes + 1, false}} {
		file := append(bytes.Repeat([]byte{'\n'}, tt.size-len(block)), block...)
		path := filepath.Join(t.TempDir(), "callers.crl")
		if err := os.WriteFile(path, file, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := NewRevocation(path, []*x509.Certificate{ca.Cert}, nil)
		if tt.ok && err != nil {
			t.Errorf("NewRevocation(%d bytes) = %v, want it loaded", tt.size, err)
		}
		if !tt.ok && (err == nil || !strings.Contains(err.Error(), "larger than")) {
			t.Errorf("NewRevocation(%d bytes) = %v, want refused as too large", tt.size, err)
		}
	}
}

// A refusal names the CRL that caused it by its place in the file,
// counted from 1.
func TestRevocationRefusalNamesTheCRL(t *testing.T) {
	ca, err := testpki.NewCA("callers")
	if err != nil {
		t.Fatal(err)
	}
	other, err := testpki.NewCA("not the callers' CA")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	asPEM := func(ca *testpki.CA, next time.Duration, ext []pkix.Extension) []byte {
		der, err := ca.CRLWithExtensions(nil, now.Add(-time.Minute), now.Add(next), ext)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
	}
	delta, _ := asn1.Marshal(1)
	good := asPEM(ca, time.Hour, nil)
	for _, tt := range []struct {
		name   string
		second []byte
		want   string
	}{
		{"signed by another CA", asPEM(other, time.Hour, nil), "CRL 2 (issuer CN=not the callers' CA"},
		{"expired", asPEM(ca, -time.Second, nil), "CRL 2 (issuer CN=callers"},
		{"delta", asPEM(ca, time.Hour, []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 27}, Critical: true, Value: delta}}), "CRL 2 (issuer CN=callers"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "callers.crl")
			if err := os.WriteFile(path, append(append([]byte(nil), good...), tt.second...), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := NewRevocation(path, []*x509.Certificate{ca.Cert}, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewRevocation = %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

// A reload refuses a CRL numbered lower than the one in force (a
// rollback that would readmit a revoked caller), accepts the same CRL
// again, and goes by the numbers, not the issue dates, when both CRLs are
// numbered.
func TestRevocationRefusesRollback(t *testing.T) {
	ca, err := testpki.NewCA("callers")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	crl := func(thisUpdate time.Time) []byte { // each gets the next CRL number
		der, err := ca.CRL(nil, thisUpdate, now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	first := crl(now.Add(-time.Minute))      // number 1
	second := crl(now.Add(-2 * time.Minute)) // number 2, issued earlier
	third := crl(now.Add(-30 * time.Second)) // number 3
	path := filepath.Join(t.TempDir(), "callers.crl")
	load := func(der []byte) {
		if err := os.WriteFile(path, der, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	load(first)
	r, err := NewRevocation(path, []*x509.Certificate{ca.Cert}, nil)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		der  []byte
		ok   bool
	}{
		{"the same CRL again", first, true},
		{"a higher number issued earlier", second, true},
		{"a higher number", third, true},
		{"a lower number", first, false},
	}
	for _, s := range steps {
		load(s.der)
		err := r.Load()
		if s.ok && err != nil {
			t.Errorf("Load(%s) = %v, want accepted", s.name, err)
		}
		if !s.ok && (err == nil || !strings.Contains(err.Error(), "refusing a rollback")) {
			t.Errorf("Load(%s) = %v, want refused as a rollback", s.name, err)
		}
	}
}
