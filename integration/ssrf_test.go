package integration

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardgate/cardgate/internal/testpki"
)

// trap is a TLS listener that no forward may reach: it counts every
// connection it accepts.
type trap struct {
	port     int
	accepted atomic.Int32
}

// startTrap listens on 127.0.0.1, and on ::1 at the same port where the
// machine has IPv6 loopback, with a certificate for localhost from ca.
func startTrap(t *testing.T, ca *testpki.CA) *trap {
	t.Helper()
	leaf, err := ca.Issue(testpki.Leaf{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MinVersion: tls.VersionTLS12}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	tr := &trap{port: ln.Addr().(*net.TCPAddr).Port}
	lns := []net.Listener{ln}
	if ln6, err := tls.Listen("tcp", net.JoinHostPort("::1", strconv.Itoa(tr.port)), cfg); err == nil {
		lns = append(lns, ln6)
	}
	for _, l := range lns {
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				tr.accepted.Add(1)
				c.Close()
			}
		}()
		t.Cleanup(func() { l.Close() })
	}
	return tr
}

// redisMonitor records every command the Redis server runs (MONITOR) from
// the moment it returns.
type redisMonitor struct {
	mu    sync.Mutex
	lines []string
}

func startRedisMonitor(t *testing.T, addr string) *redisMonitor {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Write([]byte("MONITOR\r\n")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	if ok, err := r.ReadString('\n'); err != nil || ok != "+OK\r\n" {
		t.Fatalf("MONITOR = %q, %v", ok, err)
	}
	m := &redisMonitor{}
	go func() {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			m.mu.Lock()
			m.lines = append(m.lines, line)
			m.mu.Unlock()
		}
	}()
	return m
}

// until sends a marker command and returns every line seen up to it, so
// that the caller knows the monitor caught up with everything run before.
func (m *redisMonitor) until(t *testing.T, e *env, marker string) []string {
	t.Helper()
	if err := e.redis.Client().Echo(context.Background(), marker).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		m.mu.Lock()
		for i, l := range m.lines {
			if strings.Contains(strings.ToLower(l), `"echo" "`+marker+`"`) {
				out := append([]string(nil), m.lines[:i]...)
				m.lines = m.lines[i+1:]
				m.mu.Unlock()
				return out
			}
		}
		m.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the Redis monitor never saw the marker %q", marker)
	return nil
}

// TestSSRFListedNameResolvesToLoopback: an entry lists a name (localhost)
// that resolves to a loopback address and has no unsafe_allow_ranges. A
// forward to it is refused as destination_address_forbidden, not_sent;
// nothing connects to the listener on that port; the card store is never
// read for the token (no command on its keys, and its CVC is still there
// for a later allowed forward); and the audit file holds a denied record
// and no intent.
func TestSSRFListedNameResolvesToLoopback(t *testing.T) {
	e := newEnv(t)
	tr := startTrap(t, e.procCA)
	url := fmt.Sprintf("https://localhost:%d/v1/charges", tr.port)
	e.signAllowlist(e.allowlistYAML(1) + fmt.Sprintf(`  - id: loopback-name
    purpose: a listed name that resolves to loopback, with no range override
    owner: payments@cardgate.test
    url: %s
    methods: [POST]
    callers: ["%s"]
    fields: [number, cvc, exp_month, exp_year, name]
`, url, billing))
	e.start()
	c := e.client(billing)
	tok := e.tokenize(c, visa)
	mon := startRedisMonitor(t, e.redis.Addr())
	storeKeys := "{" + tok + "}:"

	req := forwardBody(tok)
	req["destination"], req["url"] = "loopback-name", url
	status, out := e.post(c, "/v1/forward", req)
	errBody, _ := out["error"].(map[string]any)
	if code := errCode(out); code != "destination_address_forbidden" || errBody["outcome"] != "not_sent" {
		t.Errorf("forward to a name resolving to loopback = %d %v, want destination_address_forbidden, not_sent", status, out)
	}
	for _, l := range mon.until(t, e, "ssrf-refused") {
		if strings.Contains(l, storeKeys) {
			t.Errorf("the card store was read for the refused forward: %s", strings.TrimSpace(l))
		}
	}
	if n := tr.accepted.Load(); n != 0 {
		t.Errorf("the listener on the listed port accepted %d connections, want 0", n)
	}

	// The audit file: a denied record for the refusal, no intent.
	raw, err := os.ReadFile(filepath.Join(e.dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	denied := 0
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var rec struct {
			Kind, Reason, Outcome, Destination string
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		switch {
		case rec.Kind == "intent":
			t.Errorf("the audit file holds an intent record: %s", line)
		case rec.Kind == "denied" && rec.Reason == "destination_address_forbidden" && rec.Outcome == "not_sent" && rec.Destination == "loopback-name":
			denied++
		}
	}
	if denied != 1 {
		t.Errorf("the audit file holds %d denied destination_address_forbidden records for loopback-name, want 1:\n%s", denied, raw)
	}

	// The control: the same token, forwarded where the entry allows
	// loopback, reads the store and still has its CVC.
	req = forwardBody(tok)
	req["url"] = e.procURL
	if status, out := e.post(c, "/v1/forward", req); status != http.StatusOK {
		t.Fatalf("allowed forward of the same token = %d %v, want 200", status, out)
	}
	read := false
	for _, l := range mon.until(t, e, "allowed-sent") {
		read = read || strings.Contains(l, storeKeys)
	}
	if !read {
		t.Error("the Redis monitor saw no card store command for the allowed forward; it cannot see a read")
	}
	got := e.processor.received()
	if len(got) != 1 || !strings.Contains(got[0].Body, `"cvc":"`+testCVC+`"`) {
		t.Errorf("the processor got %d requests (%v), want one carrying the CVC the refused forward never consumed", len(got), got)
	}
}
