package integration

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cardgate/cardgate/internal/testpki"
)

// withCRL rewrites the env's configuration to name DIR/callers.crl as
// listen.tls.crl_file (writeConfig appends extra YAML at the end, where a
// second listen block would be refused).
func (e *env) withCRL() string {
	e.t.Helper()
	path := filepath.Join(e.dir, "cardgate.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		e.t.Fatal(err)
	}
	ca := "    client_ca_file: " + e.dir + "/callers-ca.pem\n"
	if !strings.Contains(string(raw), ca) {
		e.t.Fatalf("configuration lacks %q", ca)
	}
	crl := filepath.Join(e.dir, "callers.crl")
	e.write("cardgate.yaml", []byte(strings.Replace(string(raw), ca, ca+"    crl_file: "+crl+"\n", 1)))
	return crl
}

// writeCRL writes a PEM CRL by the caller CA listing revoked.
func (e *env) writeCRL(path string, next time.Duration, revoked ...*testpki.Issued) {
	e.t.Helper()
	var certs []*x509.Certificate
	for _, r := range revoked {
		certs = append(certs, r.TLS.Leaf)
	}
	der, err := e.callerCA.CRL(certs, time.Now().Add(-time.Minute), time.Now().Add(next))
	if err != nil {
		e.t.Fatal(err)
	}
	// Replace the file in one rename, as a CRL distribution job should.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		e.t.Fatal(err)
	}
}

// callerCert issues a caller certificate for identity.
func (e *env) callerCert(identity string) *testpki.Issued {
	e.t.Helper()
	c, err := e.callerCA.Issue(testpki.Leaf{URIs: []string{identity}, Client: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// tryCaller makes one request on a fresh connection with cert and returns
// its error, nil when the gateway answered.
func (e *env) tryCaller(cert *testpki.Issued) error {
	e.t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: e.serverCA.Pool(), MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert.TLS},
	}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + e.addr + "/readyz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func TestCallerRevocation(t *testing.T) {
	e := newEnv(t)
	revoked, kept := e.callerCert(billing), e.callerCert(billing)
	crl := e.withCRL()
	e.writeCRL(crl, time.Hour, revoked)
	e.signAllowlist(e.allowlistYAML(1))
	e.start()

	if err := e.tryCaller(revoked); err == nil {
		t.Errorf("a revoked caller certificate was accepted")
	}
	if err := e.tryCaller(kept); err != nil {
		t.Errorf("a caller certificate that is not revoked was refused: %v", err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: e.serverCA.Pool(), MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{kept.TLS},
	}}}
	t.Cleanup(c.CloseIdleConnections)
	if tok := e.tokenize(c, visa); !strings.HasPrefix(tok, "tok_") {
		t.Errorf("tokenize with the kept certificate = %q", tok)
	}
	if !strings.Contains(e.gw.log(), "is revoked") {
		t.Errorf("gateway log does not say why the revoked caller was refused:\n%s", e.gw.log())
	}

	// A new CRL revoking the other one too takes effect on SIGHUP, for
	// new connections and for the open one.
	older, err := os.ReadFile(crl)
	if err != nil {
		t.Fatal(err)
	}
	e.writeCRL(crl, time.Hour, revoked, kept)
	waitForLogCount := func(msg string, before int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(e.gw.log(), msg) == before {
			if time.Now().After(deadline) {
				t.Fatalf("no %q after SIGHUP:\n%s", msg, e.gw.log())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	before := strings.Count(e.gw.log(), "caller CRL loaded")
	if err := e.gw.signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitForLogCount("caller CRL loaded", before)
	if err := e.tryCaller(kept); err == nil {
		t.Errorf("a caller certificate revoked by the reloaded CRL was accepted")
	}
	// c still holds its keep-alive connection from before the reload.
	if status, out := e.post(c, "/v1/cards", map[string]any{"number": visa, "exp_month": 12, "exp_year": time.Now().Year() + 2}); status != http.StatusUnauthorized || errCode(out) != "unauthenticated" {
		t.Errorf("revoked caller on its open connection = %d %v, want 401 unauthenticated", status, out)
	}

	// Putting the older CRL back is a rollback: refused, the newer one stays.
	if err := os.WriteFile(crl, older, 0o600); err != nil {
		t.Fatal(err)
	}
	failedBefore := strings.Count(e.gw.log(), "refusing a rollback")
	e.gw.signal(syscall.SIGHUP)
	waitForLogCount("refusing a rollback", failedBefore)
	if err := e.tryCaller(kept); err == nil {
		t.Errorf("an older CRL put back by a rollback readmitted a revoked caller")
	}
	if err := e.tryCaller(e.callerCert(billing)); err != nil {
		t.Errorf("a fresh caller certificate was refused after the reload: %v", err)
	}
}

func TestCallerRevocationRefusesStaleCRL(t *testing.T) {
	e := newEnv(t)
	crl := e.withCRL()
	e.writeCRL(crl, -time.Second)
	e.signAllowlist(e.allowlistYAML(1))
	p, err := startProcess(t, binary, "serve", "-config", filepath.Join(e.dir, "cardgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	code, err := p.wait(15 * time.Second)
	if err != nil || code == 0 {
		t.Fatalf("gateway with an expired CRL: exit %d, %v, want a refused start\n%s", code, err, p.log())
	}
	if log := p.log(); !strings.Contains(log, "listen.tls.crl_file") || !strings.Contains(log, "expired") {
		t.Errorf("refusal does not name listen.tls.crl_file and the expiry:\n%s", log)
	}
}

// TestClientCertNotConfigured: an allowlist entry naming a client
// certificate the gateway was not configured with refuses the start, so
// the gap shows at deploy time rather than as failed forwards.
func TestClientCertNotConfigured(t *testing.T) {
	e := newEnv(t)
	doc := strings.Replace(e.allowlistYAML(1), "    unsafe_allow_ranges: [127.0.0.1/32]\n",
		"    unsafe_allow_ranges: [127.0.0.1/32]\n    tls:\n      client_cert: acme-mtls\n", 1)
	e.signAllowlist(doc)
	p, err := startProcess(t, binary, "serve", "-config", filepath.Join(e.dir, "cardgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	code, err := p.wait(15 * time.Second)
	if err != nil || code == 0 {
		t.Fatalf("gateway with an unconfigured client_cert: exit %d, %v, want a refused start\n%s", code, err, p.log())
	}
	if log := p.log(); !strings.Contains(log, "unsupported_by_gateway") || !strings.Contains(log, `client certificate \"acme-mtls\"`) {
		t.Errorf("refusal does not name the problem and the certificate:\n%s", log)
	}
}
