package audit

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardgate/cardgate/internal/redistest"
)

// Found by mutation testing (docs/mutation.md): the lag marker's contents
// and a marker that cannot be written.

// newMirroredLogging is newMirrored with the Log's logger writing to logs.
func newMirroredLogging(t *testing.T, srv *redistest.Server, path string, logs *lockedBuffer) *mirrored {
	t.Helper()
	fs, err := OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	m := &mirrored{srv: srv, path: path, file: fs, stream: newStreamSink(t, srv.Client(), 300*time.Millisecond)}
	m.log, err = New(Options{Sinks: []Sink{fs}, Mirror: m.stream, Now: fixedClock(), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The marker holds where the lag starts in the file and where its chain
// starts, so that the next Log replays from there, not from the file's
// start.
func TestMirrorLagMarkerHoldsTheOffsets(t *testing.T) {
	srv := redistest.Start(t)
	m := newMirrored(t, srv, filepath.Join(t.TempDir(), "audit.log"))
	m.forwards(t, 3)
	fi, err := os.Stat(m.path)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	mustAppend(t, m.log, result(50)) // in the file only: the lag
	chain, _, _ := m.log.Head()

	got, err := os.ReadFile(markerPath(m.path, chain))
	if err != nil {
		t.Fatalf("no lag marker: %v", err)
	}
	// The lag starts at the result's offset (the file's size before it);
	// the chain at the file's start.
	if want := fmt.Sprintf("%d 0\n", fi.Size()); string(got) != want {
		t.Errorf("lag marker = %q, want %q", got, want)
	}
}

// A marker that cannot be written (here: its path leads to /dev/full,
// where every write fails) is logged, and the lag is still refused and
// replayed by this process.
func TestMirrorLagMarkerWriteFailureIsLogged(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Fatalf("this test needs /dev/full: %v", err)
	}
	srv := redistest.Start(t)
	var logs lockedBuffer
	m := newMirroredLogging(t, srv, filepath.Join(t.TempDir(), "audit.log"), &logs)
	m.forwards(t, 2)
	chain, _, _ := m.log.Head()
	if err := os.Symlink("/dev/full", markerPath(m.path, chain)); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	mustAppend(t, m.log, result(50)) // in the file only: the lag

	if !strings.Contains(logs.String(), "audit mirror lag marker not written") {
		t.Errorf("a marker write to /dev/full was not logged; logs:\n%s", logs.String())
	}
	if m.log.MirrorErr() == nil {
		t.Error("MirrorErr() = nil with the lag's marker unwritten")
	}
	if m.forward(t, 60) {
		t.Error("an intent was accepted while the mirror lagged")
	}
}
