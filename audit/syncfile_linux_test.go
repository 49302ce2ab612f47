package audit

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// The sink allocates a segment of blocks beyond the file's end, and the
// file's size stays exactly the records, so Verify reads them as before.
func TestFileSinkPreallocates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	fs, err := OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	l := newTestLog(t, fs)
	for i := range 3 {
		mustAppend(t, l, intent(i))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if allocated := fi.Sys().(*syscall.Stat_t).Blocks * 512; allocated < preallocSegment {
		t.Errorf("allocated %d bytes for the file, want at least the %d-byte segment", allocated, preallocSegment)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != int64(len(b)) || fi.Size() != fs.offset() {
		t.Errorf("size %d, %d bytes read, sink's end %d; want all equal", fi.Size(), len(b), fs.offset())
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if rep, err := Verify(f); err != nil || rep.Records != 3 {
		t.Errorf("Verify = %d records, %v; want 3, nil", rep.Records, err)
	}
}
