package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardgate/cardgate/internal/testpki"
)

// Helpers for the fault drills: upstreams that misbehave on purpose, a
// load generator, and readers for the gateway's log.

// drillBody is a forward without the CVC: a CVC is single-use, and the
// drills forward one card many times.
func drillBody(token, destination, url string) map[string]any {
	return map[string]any{
		"destination": destination,
		"url":         url,
		"method":      "POST",
		"card":        token,
		"headers":     map[string][]string{"Content-Type": {"application/json"}},
		"body":        `{"amount":1000,"number":"{{card.number}}"}`,
	}
}

// drillEntry is an allowlist entry for a drill upstream at addr, to be
// appended to allowlistYAML's destinations.
func drillEntry(id, addr string) string {
	return fmt.Sprintf(`  - id: %s
    purpose: fault drill
    owner: payments@cardgate.test
    url: https://%s/v1/charges
    methods: [POST]
    callers: ["%s"]
    fields: [number]
    unsafe_allow_ranges: [127.0.0.1/32]
`, id, addr, billing)
}

// setConfig replaces old with new in the gateway's configuration file,
// which must hold old exactly once.
func (e *env) setConfig(old, new string) {
	e.t.Helper()
	p := filepath.Join(e.dir, "cardgate.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		e.t.Fatal(err)
	}
	if n := bytes.Count(b, []byte(old)); n != 1 {
		e.t.Fatalf("cardgate.yaml holds %q %d times, want once:\n%s", old, n, b)
	}
	e.write("cardgate.yaml", bytes.Replace(b, []byte(old), []byte(new), 1))
}

// redisConfig is the store.redis addrs line writeConfig writes.
func (e *env) redisConfig() string {
	return "    addrs: [" + e.redis.Addr() + "]\n"
}

// result is one forward as the caller saw it.
type result struct {
	status    int
	code      string // error code, "" on success
	outcome   string
	forwardID string
	err       error // transport error: no answer at all
	took      time.Duration
}

func (r result) String() string {
	if r.err != nil {
		return fmt.Sprintf("no answer after %v: %v", r.took, r.err)
	}
	return fmt.Sprintf("%d %s outcome=%s after %v", r.status, r.code, r.outcome, r.took)
}

// forward posts body to /v1/forward with ctx and never fails the test, so
// that load goroutines may call it.
func (e *env) forward(ctx context.Context, c *http.Client, body map[string]any) result {
	return e.forwardWith(ctx, c, body, nil)
}

// forwardWith is forward with extra request headers.
func (e *env) forwardWith(ctx context.Context, c *http.Client, body map[string]any, h http.Header) result {
	b, err := json.Marshal(body)
	if err != nil {
		return result{err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+e.addr+"/v1/forward", bytes.NewReader(b))
	if err != nil {
		return result{err: err}
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return result{err: err, took: time.Since(start)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	r := result{status: resp.StatusCode, took: time.Since(start)}
	if err != nil {
		r.err = err
		return r
	}
	var out struct {
		ForwardID string `json:"forward_id"`
		Outcome   string `json:"outcome"`
		Error     struct {
			Code    string `json:"code"`
			Outcome string `json:"outcome"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		r.err = fmt.Errorf("answer is not JSON: %w: %q", err, raw)
		return r
	}
	r.code, r.forwardID, r.outcome = out.Error.Code, out.ForwardID, out.Outcome
	if r.code != "" {
		r.outcome = out.Error.Outcome
	}
	return r
}

// load runs forwards from several goroutines until stopped.
type load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	res    []result
}

// startLoad starts workers goroutines, each sending body in a loop.
func (e *env) startLoad(c *http.Client, workers int, body map[string]any) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel}
	for range workers {
		l.wg.Go(func() {
			for ctx.Err() == nil {
				// Not ctx: stopping the load must not cut a request short
				// and count as a failure. The client's timeout bounds it.
				r := e.forward(context.Background(), c, body)
				l.mu.Lock()
				l.res = append(l.res, r)
				l.mu.Unlock()
				if r.err != nil {
					return // a broken gateway must not spin the loop
				}
			}
		})
	}
	e.t.Cleanup(l.stop)
	return l
}

// waitFor waits until at least n results satisfy ok, or limit passes.
func (l *load) waitFor(t *testing.T, what string, n int, limit time.Duration, ok func(result) bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		got := 0
		l.mu.Lock()
		for _, r := range l.res {
			if ok(r) {
				got++
			}
		}
		total := len(l.res)
		l.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("load: %d of %d results are %s after %v, want %d", got, total, what, limit, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop stops the workers, waits for their requests in flight, and returns
// every result.
func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

func (l *load) results() []result {
	l.stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]result(nil), l.res...)
}

// upstream is a TLS processor that holds every request until released
// (or forever, for a processor that hangs), and counts what it received.
type upstream struct {
	addr    string
	release chan struct{}
	once    sync.Once

	mu       sync.Mutex
	received int // requests whose body was read in full
	active   int // handlers still running
	gone     int // handlers that ended because the connection closed
}

// startUpstream starts a held upstream with a certificate from ca.
func startUpstream(t *testing.T, ca *testpki.CA) *upstream {
	t.Helper()
	ln := tlsListener(t, ca)
	u := &upstream{addr: ln.Addr().String(), release: make(chan struct{})}
	srv := &http.Server{Handler: u, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	// Close, not Shutdown: a held handler only ends when its connection
	// does.
	t.Cleanup(func() { u.Release(); srv.Close() })
	return u
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, err := io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	u.mu.Lock()
	if err == nil {
		u.received++
	}
	u.active++
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		u.active--
		u.mu.Unlock()
	}()
	select {
	case <-u.release:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"id":"ch_drill","status":"succeeded"}`)
	case <-r.Context().Done():
		u.mu.Lock()
		u.gone++
		u.mu.Unlock()
	}
}

// Release lets every held request, and every later one, be answered.
func (u *upstream) Release() { u.once.Do(func() { close(u.release) }) }

func (u *upstream) counts() (received, active, gone int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.received, u.active, u.gone
}

// waitUntil polls cond every 20ms until it holds or limit passes.
func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startResetter starts a TLS upstream that reads one request in full and
// then resets the connection (SO_LINGER 0) without answering. It returns
// its address and the number of requests it has read.
func startResetter(t *testing.T, ca *testpki.CA) (addr string, received func() int) {
	t.Helper()
	leaf, err := ca.Issue(testpki.Leaf{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	n := 0
	conf := &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MinVersion: tls.VersionTLS12}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				tc := tls.Server(c, conf)
				req, err := http.ReadRequest(bufio.NewReader(tc))
				if err != nil {
					return
				}
				if _, err := io.Copy(io.Discard, req.Body); err != nil {
					return
				}
				mu.Lock()
				n++
				mu.Unlock()
				c.(*net.TCPConn).SetLinger(0) // Close now sends RST
			}()
		}
	}()
	return ln.Addr().String(), func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// tlsListener listens on a loopback port with a certificate from ca.
func tlsListener(t *testing.T, ca *testpki.CA) net.Listener {
	t.Helper()
	leaf, err := ca.Issue(testpki.Leaf{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// logLines returns the gateway's JSON log lines whose msg is msg.
func (p *process) logLines(msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.log()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == msg {
			out = append(out, line)
		}
	}
	return out
}

// rawForward opens a TLS connection of its own as identity, writes a
// forward of body on it and returns it unread, for a drill that closes it
// mid-forward as a caller that goes away would.
func (e *env) rawForward(identity string, body map[string]any) *tls.Conn {
	e.t.Helper()
	cert, err := e.callerCA.Issue(testpki.Leaf{URIs: []string{identity}, Client: true})
	if err != nil {
		e.t.Fatal(err)
	}
	b, err := json.Marshal(body)
	if err != nil {
		e.t.Fatal(err)
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", e.addr, &tls.Config{
		RootCAs: e.serverCA.Pool(), Certificates: []tls.Certificate{cert.TLS}, MinVersion: tls.VersionTLS12,
	})
	if err != nil {
		e.t.Fatalf("dial the gateway: %v", err)
	}
	e.t.Cleanup(func() { conn.Close() })
	req := fmt.Sprintf("POST /v1/forward HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", e.addr, len(b), b)
	if _, err := io.WriteString(conn, req); err != nil {
		e.t.Fatalf("write the forward: %v", err)
	}
	return conn
}

// auditIntents returns the forward ids of the intent records in the audit
// file at path.
func auditIntents(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the audit file: %v", err)
	}
	out := map[string]bool{}
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var rec struct {
			Kind      string `json:"kind"`
			ForwardID string `json:"forward_id"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("audit file line %q: %v", line, err)
		}
		if rec.Kind == "intent" {
			out[rec.ForwardID] = true
		}
	}
	return out
}

// ready returns the status of GET /readyz.
func (e *env) ready(c *http.Client) int {
	resp, err := c.Get("https://" + e.addr + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
