package integration

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cardgate/cardgate/internal/testpki"
)

// intentCheckingProcessor is a test processor that, at the moment each
// request arrives, reads the gateway's audit file and counts the intent
// records in it: every request it has received, this one included, must
// already have its intent there.
type intentCheckingProcessor struct {
	auditFile string

	mu       sync.Mutex
	received int
	broken   []string
}

func (p *intentCheckingProcessor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	p.mu.Lock()
	p.received++
	// Counted by text, not with auditIntents: this is not the test's
	// goroutine, and a record being written may still be a partial line.
	b, err := os.ReadFile(p.auditFile)
	if n := bytes.Count(b, []byte(`"kind":"intent"`)); err != nil || n < p.received {
		p.broken = append(p.broken, fmt.Sprintf("request %d arrived with %d intent records in the audit file (%v)", p.received, n, err))
	}
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, `{"id":"ch_123","status":"succeeded"}`)
}

// TestIntentBeforeSendOverBinary: over the built gateway, each request
// reaches the processor only once its intent record is in the audit file.
func TestIntentBeforeSendOverBinary(t *testing.T) {
	e := newEnv(t)
	p := &intentCheckingProcessor{auditFile: filepath.Join(e.dir, "audit.log")}
	leaf, err := e.procCA.Issue(testpki.Leaf{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(p)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MinVersion: tls.VersionTLS12}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()

	e.signAllowlist(e.allowlistYAML(1) + drillEntry("ordered", addr))
	e.start()
	c := e.client(billing)
	const n = 3
	for i := range n {
		body := forwardBody(e.tokenize(c, visa))
		body["destination"], body["url"] = "ordered", "https://"+addr+"/v1/charges"
		body["body"] = `{"amount":1000,"number":"{{card.number}}"}`
		if status, out := e.post(c, "/v1/forward", body); status != http.StatusOK || out["status"] != float64(http.StatusCreated) {
			t.Fatalf("forward %d = %d %v, want 200 with the processor's 201", i+1, status, out)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.broken {
		t.Error(b)
	}
	if p.received != n {
		t.Errorf("the processor received %d requests, want %d", p.received, n)
	}
}
