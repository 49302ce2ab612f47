package audit

import (
	"os"
	"path/filepath"
	"testing"
)

// seekCountingFile counts the sink's Seek calls.
type seekCountingFile struct {
	appendFile
	seeks int
}

func (f *seekCountingFile) Seek(offset int64, whence int) (int64, error) {
	f.seeks++
	return f.appendFile.Seek(offset, whence)
}

// A file sink without a Merkle tree tracks its end by adding what it
// wrote, with no system call per group; its end stays the file's size
// while it is the only writer, and a lower bound when another process
// appends too.
func TestFileSinkEndWithoutSeek(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	fs, err := OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	cf := &seekCountingFile{appendFile: fs.f}
	fs.f = cf
	l := newTestLog(t, fs)
	for i := range 3 {
		mustAppend(t, l, intent(i))
	}
	if cf.seeks != 0 {
		t.Errorf("%d Seek calls for 3 groups, want 0", cf.seeks)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fs.offset(); got != st.Size() {
		t.Errorf("offset %d, file size %d", got, st.Size())
	}

	// Another writer appends: the sink's end falls behind the file's,
	// never ahead of where its next record starts.
	other, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Write([]byte("{\"foreign\":true}\n")); err != nil {
		t.Fatal(err)
	}
	other.Close()
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, intent(3))
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	n := after.Size() - before.Size() // this sink's last group
	if got, want := fs.offset(), st.Size()+n; got != want || got > after.Size() {
		t.Errorf("offset %d after a foreign append, want %d (at or before the file's end %d)", got, want, after.Size())
	}
}
