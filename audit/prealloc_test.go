package audit

import (
	"errors"
	"path/filepath"
	"testing"
)

// noPreallocFile is a file on a file system that cannot preallocate.
type noPreallocFile struct {
	appendFile
	calls int
}

func (f *noPreallocFile) preallocate(off, n int64) error {
	f.calls++
	return errors.New("operation not supported")
}

// A file system that cannot preallocate costs nothing but the first try:
// every record is still written and synced.
func TestFileSinkWithoutPreallocation(t *testing.T) {
	fs, err := OpenFileSink(filepath.Join(t.TempDir(), "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	nf := &noPreallocFile{appendFile: fs.f}
	fs.f, fs.reserved = nf, 0
	l := newTestLog(t, fs)
	for i := range 3 {
		mustAppend(t, l, intent(i))
	}
	if nf.calls != 1 {
		t.Errorf("preallocate called %d times, want 1 (then given up)", nf.calls)
	}
	if fs.offset() == 0 {
		t.Error("nothing was written")
	}
}
