package forwarder

import (
	"io"
	"testing"
)

// scratchReader uses the whole buffer it is given as scratch space, as
// io.Reader allows, but reports one byte per call.
type scratchReader struct{ calls int }

func (r *scratchReader) Read(p []byte) (int, error) {
	if r.calls == 3 {
		return 0, io.EOF
	}
	r.calls++
	for i := range p {
		p[i] = '4'
	}
	return 1, nil
}

// A pooled buffer must be all zeros, whatever a reader did beyond the
// bytes it reported.
func TestPutBufZeroesBeyondTheLength(t *testing.T) {
	f := &Forwarder{}
	buf := f.getBuf()
	if _, err := readCapped(buf, &scratchReader{}, 1<<20); err != nil {
		t.Fatal(err)
	}
	full := (*buf)[:cap(*buf)]
	f.putBuf(buf)
	for i, c := range full {
		if c != 0 {
			t.Fatalf("byte %d of the pooled buffer is %q, want 0", i, c)
		}
	}
}
