package forwarder

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"testing"
)

// TestSetTLSHashesEachLeafOnce: the fingerprint in the audit record is
// the last connection's leaf certificate; setting the same connection's
// state again (the answer's, after the connection's) does not hash it
// again, and a new leaf (a retry on another connection) replaces it.
func TestSetTLSHashesEachLeafOnce(t *testing.T) {
	a := &x509.Certificate{Raw: []byte("leaf a")}
	b := &x509.Certificate{Raw: []byte("leaf b")}
	fp := func(c *x509.Certificate) string { s := sha256.Sum256(c.Raw); return hex.EncodeToString(s[:]) }
	stateOf := func(c *x509.Certificate) tls.ConnectionState {
		return tls.ConnectionState{Version: tls.VersionTLS13, PeerCertificates: []*x509.Certificate{c}}
	}
	fw := &forward{}
	fw.setTLS(stateOf(a))
	if got := testing.AllocsPerRun(100, func() { fw.setTLS(stateOf(a)) }); got != 0 {
		t.Errorf("setTLS with the same leaf again: %v allocations, want 0 (no new fingerprint)", got)
	}
	if v, cert := fw.tlsInfo(); v != "TLS 1.3" || cert != fp(a) {
		t.Errorf("tlsInfo() = %q, %q; want TLS 1.3, %q", v, cert, fp(a))
	}
	fw.setTLS(stateOf(b))
	if _, cert := fw.tlsInfo(); cert != fp(b) {
		t.Errorf("after a new leaf, fingerprint %q, want %q", cert, fp(b))
	}
}
