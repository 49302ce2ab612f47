package forwarder

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/cardgate/cardgate/cardscan"
	"github.com/cardgate/cardgate/internal/hopbyhop"
)

// identityEncoding reports whether every Content-Encoding the processor
// named, in every header line and every comma-separated item, is identity
// (or empty). Anything else (gzip, br, an unknown token) is bytes we cannot
// scan for card numbers, which would reach the caller as base64.
func identityEncoding(h http.Header) bool {
	for _, v := range h.Values("Content-Encoding") {
		for item := range strings.SplitSeq(v, ",") {
			if item = strings.TrimSpace(item); item != "" && !strings.EqualFold(item, "identity") {
				return false
			}
		}
	}
	return true
}

// readCapped reads r into *buf, up to max bytes. More than max is an error.
// The buffer grows by copying into a larger one and zeroing the old, so no
// copy of the response is left behind for the GC.
func readCapped(buf *[]byte, r io.Reader, max int64) (int, error) {
	b := (*buf)[:0]
	lr := io.LimitReader(r, max+1)
	for {
		if len(b) == cap(b) {
			b = growZeroed(b, len(b)+minBufGrowth)
		}
		n, err := lr.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		*buf = b
		if int64(len(b)) > max {
			return 0, newError(CodeUpstreamTooLarge, Answered, "processor response is larger than the entry allows", nil)
		}
		if err == io.EOF {
			return len(b), nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// minBufGrowth is the least a full buffer grows by.
const minBufGrowth = 4 << 10

// growZeroed returns b's contents in a buffer of capacity at least n
// (doubling at least), and zeroes b: append would leave the old array, which
// may hold card data, to the GC as it is.
func growZeroed(b []byte, n int) []byte {
	if cap(b) >= n {
		return b
	}
	out := make([]byte, len(b), max(n, 2*cap(b)))
	copy(out, b)
	clear(b[:cap(b)])
	return out
}

// cleanResponseHeaders returns the processor's headers without hop-by-hop
// headers (including those its Connection header names), cookies and the
// configured extras, with card numbers and the CVC masked in every value.
// A header whose name holds a card number or a sent card's CVC is dropped:
// a name cannot be masked in place.
func (f *Forwarder) cleanResponseHeaders(h http.Header, sent sentCards) http.Header {
	drop := hopbyhop.Named(h)
	out := make(http.Header, len(h))
	var buf []byte
	for name, vals := range h {
		k := http.CanonicalHeaderKey(name)
		if hopbyhop.Is(k) || drop[k] || f.stripResp[k] || k == "Set-Cookie" || k == "Set-Cookie2" || cardscan.ContainsString(k) {
			continue
		}
		if buf = sent.redact(buf[:0], []byte(k)); string(buf) != k {
			continue
		}
		kept := make([]string, 0, len(vals))
		for _, v := range vals {
			// A value the mask left as it was is kept as it was, not
			// copied: only a masked value needs a string of its own.
			if buf = sent.redact(buf[:0], []byte(v)); string(buf) != v {
				v = string(buf)
			}
			kept = append(kept, v)
		}
		out[k] = append(out[k], kept...)
	}
	return out
}

// bufSize is the capacity of a new pooled buffer: enough for a typical
// request or response, small enough that hundreds of forwards in flight hold
// little memory. Larger bodies grow the buffer (growZeroed), and a grown
// buffer goes back to the pool at its new size.
const bufSize = 4 << 10

func (f *Forwarder) getBuf() *[]byte {
	if b, ok := f.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, bufSize)
	return &b
}

// putBuf zeroes a buffer before pooling it: it may have held card data.
// The whole capacity, not just the length: an io.Reader may use all of the
// buffer it is given as scratch space.
func (f *Forwarder) putBuf(b *[]byte) {
	clear((*b)[:cap(*b)])
	*b = (*b)[:0]
	if cap(*b) > 4<<20 {
		return // let the GC have outsized buffers
	}
	f.bufs.Put(b)
}

// pooledBody is the rendered request body. It returns its buffer to the
// pool, zeroed, when the transport closes it; a Read after Close fails.
type pooledBody struct {
	f      *Forwarder
	mu     sync.Mutex
	buf    *[]byte
	r      bytes.Reader
	closed bool
}

func (b *pooledBody) len() int { return len(*b.buf) }

func (b *pooledBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errors.New("forwarder: read after close")
	}
	return b.r.Read(p)
}

// close is Close for a body that may be nil (a request without a body).
func (b *pooledBody) close() {
	if b != nil {
		b.Close()
	}
}

func (b *pooledBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		b.r.Reset(nil)
		b.f.putBuf(b.buf)
	}
	return nil
}

func (f *Forwarder) renderBody(v *validated, cv fieldValues) (*pooledBody, *Error) {
	if v.body.text == "" {
		return nil, nil
	}
	// The buffer is sized for the worst case first, so that rendering never
	// grows it: append would leave a copy of the card to the GC.
	buf := f.getBuf()
	*buf = growZeroed(*buf, bodyBound(v.body, cv))
	out, e := renderBody((*buf)[:0], v.body, v.bodyKind, cv)
	*buf = out
	if e != nil {
		f.putBuf(buf)
		return nil, e
	}
	pb := &pooledBody{f: f, buf: buf}
	pb.r.Reset(*buf)
	return pb, nil
}
