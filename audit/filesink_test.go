package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileSinkAppendsDurably(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	fs, err := OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	l := newTestLog(t, fs)
	for i := range 3 {
		mustAppend(t, l, intent(i))
	}
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fs.Write(context.Background(), []Entry{{Rec: &Record{}, Line: []byte("{}")}}); err == nil {
		t.Error("Write after Close = nil, want an error")
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode = %o, want 600", perm)
	}

	// A second writer (a restart) appends its own chain after the first.
	fs2, err := OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, newTestLog(t, fs2), result(1))
	fs2.Close()

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := Verify(f)
	if err != nil {
		t.Fatalf("Verify = %v, problems %v", err, rep.Problems)
	}
	if rep.Records != 4 || len(rep.Chains) != 2 {
		t.Errorf("Verify = %d records in %d chains, want 4 in 2", rep.Records, len(rep.Chains))
	}
}

// TestFileSinkRepairsIncompleteLine: after a crash mid-write the next
// record must start on its own line, and the broken line is reported.
func TestFileSinkRepairsIncompleteLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	fs, err := OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, newTestLog(t, fs), intent(1))
	fs.Close()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"chain":"0123`); err != nil {
		t.Fatal(err)
	}
	f.Close()

	fs, err = OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, newTestLog(t, fs), intent(2))
	fs.Close()

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(raw), "\n"); n != 3 {
		t.Fatalf("file has %d lines, want 3:\n%s", n, raw)
	}
	rep, _ := Verify(strings.NewReader(string(raw)))
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != ProblemMalformed || rep.Problems[0].Line != 2 {
		t.Errorf("Verify problems = %v, want line 2 malformed only", rep.Problems)
	}
}

func TestOpenFileSinkRefuses(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
	}{
		{"a directory", dir},
		{"missing directory", filepath.Join(dir, "nope", "audit.log")},
		{"a device", os.DevNull},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := OpenFileSink(tt.path); err == nil {
				s.Close()
				t.Errorf("OpenFileSink(%s) = nil error, want one", tt.path)
			}
		})
	}
}

// faultyFile wraps a real file and fails Sync (or Write) on demand,
// counting the calls.
type faultyFile struct {
	appendFile
	syncErr, writeErr error
	writes, syncs     int
}

func (f *faultyFile) Write(p []byte) (int, error) {
	f.writes++
	if f.writeErr != nil {
		return 0, f.writeErr
	}
	return f.appendFile.Write(p)
}

func (f *faultyFile) Sync() error {
	f.syncs++
	if f.syncErr != nil {
		return f.syncErr
	}
	return f.appendFile.Sync()
}

// TestFileSinkFsync checks that every write is followed by fsync before
// Write returns, and that a failed fsync or write stops the sink for good.
func TestFileSinkFsync(t *testing.T) {
	eio := errors.New("input/output error")
	tests := []struct {
		name              string
		syncErr, writeErr error
	}{
		{"fsync fails", eio, nil},
		{"write fails", nil, eio},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, err := OpenFileSink(filepath.Join(t.TempDir(), "audit.log"))
			if err != nil {
				t.Fatal(err)
			}
			defer fs.Close()
			ff := &faultyFile{appendFile: fs.f}
			fs.f = ff
			l := newTestLog(t, fs)

			for i := range 3 {
				mustAppend(t, l, intent(i))
				if ff.writes != i+1 || ff.syncs != i+1 {
					t.Fatalf("after %d appends: %d writes, %d fsyncs; want one fsync per write", i+1, ff.writes, ff.syncs)
				}
			}

			ff.syncErr, ff.writeErr = tt.syncErr, tt.writeErr
			if _, err := l.Append(context.Background(), intent(9)); !errors.Is(err, ErrUnavailable) || !errors.Is(err, eio) {
				t.Fatalf("Append = %v, want ErrUnavailable wrapping the I/O error", err)
			}
			// The fault clears, but the sink must not trust the file again.
			ff.syncErr, ff.writeErr = nil, nil
			if _, err := l.Append(context.Background(), intent(10)); !errors.Is(err, ErrUnavailable) {
				t.Errorf("Append after a fault = %v, want ErrUnavailable (sticky)", err)
			}
			if err := fs.Err(); !errors.Is(err, eio) {
				t.Errorf("Err() = %v, want the first fault", err)
			}
		})
	}
}
