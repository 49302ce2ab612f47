package forwarder

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// recordCounter counts the TLS application-data records a client sends,
// by reading the record headers in the raw stream under the server's TLS.
type recordCounter struct {
	mu      sync.Mutex
	records int
}

func (c *recordCounter) take() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.records
	c.records = 0
	return n
}

type countingListener struct {
	net.Listener
	c *recordCounter
}

func (l countingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, c: l.c}, nil
}

// countingConn parses record headers (type, version, length) as the
// server reads them.
type countingConn struct {
	net.Conn
	c    *recordCounter
	hdr  []byte // a record header read in part
	skip int    // payload bytes of the current record still to come
}

func (cc *countingConn) Read(p []byte) (int, error) {
	n, err := cc.Conn.Read(p)
	for b := p[:n]; len(b) > 0; {
		if cc.skip > 0 {
			k := min(cc.skip, len(b))
			cc.skip -= k
			b = b[k:]
			continue
		}
		k := min(5-len(cc.hdr), len(b))
		cc.hdr = append(cc.hdr, b[:k]...)
		b = b[k:]
		if len(cc.hdr) == 5 {
			if cc.hdr[0] == 23 { // application_data
				cc.c.mu.Lock()
				cc.c.records++
				cc.c.mu.Unlock()
			}
			cc.skip = int(cc.hdr[3])<<8 | int(cc.hdr[4])
			cc.hdr = cc.hdr[:0]
		}
	}
	return n, err
}

// A request with a body leaves in one TLS record (so one write), whatever
// its size, and arrives whole; net/http alone sends the header block and
// the body in two. TLS 1.2, so that no handshake message travels as
// application data.
func TestRequestIsOneRecord(t *testing.T) {
	counter := &recordCounter{}
	p := &processor{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.reqs = append(p.reqs, &recorded{method: r.Method, body: body})
		p.mu.Unlock()
		io.WriteString(w, `{"ok":true}`)
	}))
	srv.Listener = countingListener{Listener: srv.Listener, c: counter}
	srv.TLS = &tls.Config{MaxVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p.srv = srv
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p.port, _ = strconv.Atoi(port)
	e := newEnvOn(t, p)

	tests := []struct {
		name, method, body string
		wantBody           string
	}{
		{"small json", "POST", `{"number":"{{card.number}}"}`, `{"number":"4242424242424242"}`},
		{"larger than net/http's write buffer", "POST",
			`{"pad":"` + strings.Repeat("x", 10000) + `","number":"{{card.number}}"}`,
			`{"pad":"` + strings.Repeat("x", 10000) + `","number":"4242424242424242"}`},
		{"no body", "GET", "", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counter.take()
			r := e.jsonRequest(tt.body)
			r.Method = tt.method
			if tt.body == "" {
				r.Headers = nil
			}
			if _, err := e.f.Forward(context.Background(), r); err != nil {
				t.Fatalf("Forward: %v", err)
			}
			if got := counter.take(); got != 1 {
				t.Errorf("request went out in %d TLS records, want 1", got)
			}
			reqs := p.requests()
			if len(reqs) != i+1 {
				t.Fatalf("processor saw %d requests, want %d", len(reqs), i+1)
			}
			if got := string(reqs[i].body); got != tt.wantBody {
				t.Errorf("processor got body %.60q…, want %.60q…", got, tt.wantBody)
			}
		})
	}
}

// fakeConn records each Write: a copy of its bytes, and the slice itself,
// which aliases the writer's buffer.
type fakeConn struct {
	net.Conn
	copies  [][]byte
	aliases [][]byte
	closed  bool
}

func (c *fakeConn) Write(p []byte) (int, error) {
	c.copies = append(c.copies, bytes.Clone(p))
	c.aliases = append(c.aliases, p)
	return len(p), nil
}

func (c *fakeConn) Close() error { c.closed = true; return nil }

func allZero(b []byte) bool { return !bytes.ContainsFunc(b, func(r rune) bool { return r != 0 }) }

// The owned buffer holds the header block and the body until the request is
// whole, goes out in one write, and is zeroed once written.
func TestOwnedConnSendsOnceAndZeroes(t *testing.T) {
	head := "POST /v1/charges HTTP/1.1\r\nHost: pay.example.com\r\nContent-Length: 30\r\n\r\n"
	body := `{"number":"4242424242424242"}` + "\n"
	tests := []struct {
		name  string
		write func(c *ownedConn) error
	}{
		{"header block, then the body read in place", func(c *ownedConn) error {
			if _, err := c.Write([]byte(head)); err != nil {
				return err
			}
			_, err := c.ReadFrom(io.LimitReader(strings.NewReader(body), int64(len(body))))
			return err
		}},
		{"header block in two writes, body written", func(c *ownedConn) error {
			for _, s := range []string{head[:20], head[20:], body[:7], body[7:]} {
				if _, err := c.Write([]byte(s)); err != nil {
					return err
				}
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := &fakeConn{}
			c := &ownedConn{Conn: fc}
			c.arm(&Forwarder{}, len(body))
			if err := tt.write(c); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{head + body}, stringsOf(fc.copies)); diff != "" {
				t.Errorf("writes (-want +got):\n%s", diff)
			}
			for i, a := range fc.aliases {
				if !allZero(a[:cap(a)]) {
					t.Errorf("buffer of write %d is not zeroed after the send", i)
				}
			}
			c.settle()
			if fc.closed {
				t.Error("settle closed a connection whose request was sent")
			}
			// Unarmed, a write goes straight through.
			if _, err := c.Write([]byte("x")); err != nil || len(fc.copies) != 2 {
				t.Errorf("unarmed Write = %v with %d writes, want nil with 2", err, len(fc.copies))
			}
		})
	}
}

// A request left part-written is zeroed and never sent; settle closes the
// connection so that nothing is written on it again.
func TestOwnedConnIncompleteRequest(t *testing.T) {
	for _, end := range []string{"settle", "Close"} {
		t.Run(end, func(t *testing.T) {
			fc := &fakeConn{}
			c := &ownedConn{Conn: fc}
			c.arm(&Forwarder{}, 100)
			if _, err := c.Write([]byte("POST / HTTP/1.1\r\n\r\n{\"number\":\"4242424242424242\"")); err != nil {
				t.Fatal(err)
			}
			held := (*c.buf)[:cap(*c.buf)]
			if end == "settle" {
				c.settle()
			} else {
				c.Close()
			}
			if !allZero(held) {
				t.Error("the held request was not zeroed")
			}
			if len(fc.copies) != 0 {
				t.Errorf("%d writes reached the connection, want none", len(fc.copies))
			}
			if !fc.closed {
				t.Error("the connection was left open")
			}
			if _, err := c.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err == nil || len(fc.copies) != 0 {
				t.Errorf("Write after %s = %v, want an error and nothing written", end, err)
			}
		})
	}
}

// stuckReader returns nothing, and no error, forever.
type stuckReader struct{}

func (stuckReader) Read([]byte) (int, error) { return 0, nil }

// A body reader that makes no progress fails the write rather than spin;
// nothing is sent.
func TestOwnedConnBodyWithoutProgress(t *testing.T) {
	fc := &fakeConn{}
	c := &ownedConn{Conn: fc}
	c.arm(&Forwarder{}, 10)
	if _, err := c.Write([]byte("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadFrom(stuckReader{}); !errors.Is(err, io.ErrNoProgress) {
		t.Errorf("ReadFrom = %v, want io.ErrNoProgress", err)
	}
	c.settle()
	if len(fc.copies) != 0 || !fc.closed {
		t.Errorf("%d writes, closed %v; want none and closed", len(fc.copies), fc.closed)
	}
}

func stringsOf(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}
