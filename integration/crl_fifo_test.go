package integration

import (
	"crypto/tls"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestCallerCRLReloadAgainstFIFO: a FIFO put where listen.tls.crl_file
// points is refused by the reload at once, /readyz says so while the last
// good CRL stays in force, and the next reload of a real file still runs
// (issue 13, item 10: a reload that opened a FIFO waited for a writer for
// good, and every later reload queued behind it).
func TestCallerCRLReloadAgainstFIFO(t *testing.T) {
	e := newEnv(t)
	revoked, kept := e.callerCert(billing), e.callerCert(billing)
	crl := e.withCRL()
	e.writeCRL(crl, time.Hour)
	e.signAllowlist(e.allowlistYAML(1))
	e.start()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: e.serverCA.Pool(), MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{kept.TLS},
	}}}
	t.Cleanup(c.CloseIdleConnections)

	mkfifoAt(t, crl)
	t.Cleanup(func() { // unblock a reader left waiting, so the gateway can stop
		if f, err := os.OpenFile(crl, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
	if err := e.gw.signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitReadyDetail(t, c, e.addr, "caller_crl", "last reload failed")
	if err := e.tryCaller(revoked); err != nil {
		t.Errorf("the last good CRL (revoking nothing) is no longer in force: %v", err)
	}

	if err := os.Remove(crl); err != nil {
		t.Fatal(err)
	}
	e.writeCRL(crl, time.Hour, revoked)
	if err := e.gw.signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.tryCaller(revoked) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("a reload after the refused one did not take effect: the revoked caller is still accepted\nlog:\n%s", e.gw.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := e.tryCaller(kept); err != nil {
		t.Errorf("a caller the new CRL does not list was refused: %v", err)
	}
}
