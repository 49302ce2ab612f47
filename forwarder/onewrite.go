// The request to the processor as one write, from a buffer the forwarder
// owns and zeroes.

package forwarder

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
)

// ownedConn is an HTTP/1.1 connection to a processor. For a request with a
// body, net/http writes the header block, flushes it, and then hands the
// body to the connection's ReadFrom (our body is not one of the in-memory
// types it would buffer). Armed for such a request (exchange arms it when
// the transport hands it the connection), ownedConn collects the header
// block and reads the body straight from the forward's own buffer into a
// buffer from the forwarder's pool, sends the whole request in one write,
// so one TLS record and one system call, and zeroes the buffer. The
// rendered card thus never passes through net/http's write buffer, where
// it would stay until the connection wrote enough to overwrite it.
//
// The request is complete when the header block (which ends at the first
// blank line: net/http refuses a header value holding CR or LF) and then
// exactly the body's length have arrived; net/http checks that the body
// matches its ContentLength. The header block itself does pass through
// net/http's buffer, as it does for every request.
//
// Unarmed, every write goes straight to the TLS connection. HTTP/2
// connections are never wrapped (see handshake): their own framing writes
// the body.
type ownedConn struct {
	net.Conn // the *tls.Conn
	tc       *tls.Conn

	mu  sync.Mutex
	f   *Forwarder // the pool of the armed request's buffer
	buf *[]byte    // the armed request so far; nil when unarmed
	// want is the body length the armed request waits for after its header
	// block; hdrEnd is where that block ends in buf, -1 until seen.
	want, hdrEnd int
	err          error // sticky: the connection cannot carry another request
}

// errRequestIncomplete ends a connection on which an armed request was left
// part-written: its bytes are discarded, never sent later with another
// request's.
var errRequestIncomplete = errors.New("forwarder: request left incomplete on the connection")

func newOwnedConn(tc *tls.Conn) *ownedConn { return &ownedConn{Conn: tc, tc: tc} }

// ConnectionState is the TLS state; exchange's trace records it.
func (c *ownedConn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

// arm makes the next request on the connection one write: its header block
// and then bodyLen bytes of body are collected in a buffer from f's pool.
func (c *ownedConn) arm(f *Forwarder, bodyLen int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.releaseLocked()
	c.f = f
	c.buf = f.getBuf()
	// Room for a typical header block too, so that the body is read in
	// place without growing.
	*c.buf = growZeroed(*c.buf, bodyLen+bufSize)
	c.want, c.hdrEnd = bodyLen, -1
}

// settle ends the arming when exchange is done with the connection. A
// request still held here was never sent, and never will be: the
// connection is closed, so that net/http does not reuse it.
func (c *ownedConn) settle() {
	c.mu.Lock()
	held := c.buf != nil
	if held {
		c.releaseLocked()
		c.err = errRequestIncomplete
	}
	c.mu.Unlock()
	if held {
		c.Conn.Close()
	}
}

// releaseLocked zeroes the held request and returns its buffer to the pool.
func (c *ownedConn) releaseLocked() {
	if c.buf != nil {
		c.f.putBuf(c.buf)
		c.buf, c.f = nil, nil
	}
}

func (c *ownedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return 0, c.err
	}
	if c.buf == nil {
		c.mu.Unlock()
		return c.Conn.Write(p)
	}
	*c.buf = growZeroed(*c.buf, len(*c.buf)+len(p))
	*c.buf = append(*c.buf, p...)
	return len(p), c.sendIfComplete()
}

// ReadFrom is where net/http's io.Copy delivers the request body when its
// write buffer is empty (after the header block was flushed). Armed, the
// body is read straight into the owned buffer.
func (c *ownedConn) ReadFrom(r io.Reader) (int64, error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return 0, c.err
	}
	if c.buf == nil {
		c.mu.Unlock()
		return io.Copy(onlyWriter{c.Conn}, r)
	}
	var n int64
	for empty := 0; ; {
		b := *c.buf
		if len(b) == cap(b) {
			b = growZeroed(b, len(b)+minBufGrowth)
		}
		m, err := r.Read(b[len(b):cap(b)])
		*c.buf = b[:len(b)+m]
		n += int64(m)
		if err == io.EOF {
			break
		}
		if m == 0 && err == nil {
			empty++ // as bufio does: a reader that never ends is an error
			if empty == maxEmptyReads {
				err = io.ErrNoProgress
			}
		} else {
			empty = 0
		}
		if err != nil {
			c.mu.Unlock()
			return n, err
		}
	}
	return n, c.sendIfComplete()
}

// sendIfComplete sends the held request once it is whole. Called with mu
// held; it unlocks. The write itself runs unlocked, so that Close (which
// net/http uses to abort a stuck write) is never blocked behind it.
func (c *ownedConn) sendIfComplete() error {
	b := *c.buf
	if c.hdrEnd < 0 {
		if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
			c.hdrEnd = i + 4
		}
	}
	if c.hdrEnd < 0 || len(b) < c.hdrEnd+c.want {
		c.mu.Unlock()
		return nil
	}
	buf, f := c.buf, c.f
	c.buf, c.f = nil, nil
	c.mu.Unlock()

	_, err := c.Conn.Write(*buf)
	f.putBuf(buf) // zeroed
	if err != nil {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
	}
	return err
}

// Close zeroes a request still held and closes the connection.
func (c *ownedConn) Close() error {
	c.mu.Lock()
	c.releaseLocked()
	if c.err == nil {
		c.err = net.ErrClosed
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// maxEmptyReads is how many reads in a row may return nothing, as in bufio.
const maxEmptyReads = 100

// onlyWriter hides any ReadFrom of its Writer from io.Copy.
type onlyWriter struct{ io.Writer }
