package audit

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// faultFile is countingFile that can also fail Write once writeErr is set.
type faultFile struct {
	countingFile
	writeErr atomic.Pointer[error]
}

func (f *faultFile) Write(p []byte) (int, error) {
	if e := f.writeErr.Load(); e != nil {
		return 0, *e
	}
	return f.countingFile.Write(p)
}

// TestAnsweredUnsyncedRecordsOnALaterFailure: results AppendWritten
// answered before their fsync are still only in the page cache when a
// later group's write or fsync fails. A failed write must not leave them
// unsynced (the sink stops, so no later fsync would ever cover them), and
// whatever fails says which answered records may be lost: the failed
// group's own range is not all an auditor must look for.
func TestAnsweredUnsyncedRecordsOnALaterFailure(t *testing.T) {
	eio := errors.New("input/output error")
	tests := []struct {
		name      string
		failWrite bool // the intent's write(2) fails
		failSync  bool // every fsync fails
		wantSyncs int64
		wantLost  bool // the operational log names the answered records as possibly lost
	}{
		{name: "failed write still fsyncs the answered records", failWrite: true, wantSyncs: 1},
		{name: "failed write and fsync name the answered records", failWrite: true, failSync: true, wantSyncs: 1, wantLost: true},
		{name: "failed fsync names the answered records", failSync: true, wantSyncs: 1, wantLost: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			fs, err := OpenFileSink(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { fs.Close() })
			ff := &faultFile{countingFile: countingFile{appendFile: fs.f}}
			fs.f = ff
			var logs lockedBuffer
			l, err := New(Options{Sinks: []Sink{fs}, Now: fixedClock(), SyncDelay: time.Hour,
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			mustAppend(t, l, intent(1))
			ans, err := l.AppendWritten(ctx, result(1))
			if err != nil {
				t.Fatalf("AppendWritten(result) = %v", err)
			}
			syncsBefore := ff.syncs.Load()
			if tt.failWrite {
				ff.writeErr.Store(&eio)
			}
			if tt.failSync {
				ff.syncErr.Store(&eio)
			}
			if _, err := l.Append(ctx, intent(2)); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Append(intent) = %v, want ErrUnavailable", err)
			}
			if got := ff.syncs.Load() - syncsBefore; got != tt.wantSyncs {
				t.Errorf("fsyncs after the failure = %d, want %d: the answered result was left in the page cache", got, tt.wantSyncs)
			}
			if dirty := fs.dirtyNow(); dirty != tt.wantLost {
				t.Errorf("sink dirty = %v, want %v", dirty, tt.wantLost)
			}
			lost := "from seq 2 of chain " + ans.Chain + ", already answered, may be lost"
			if got := strings.Contains(logs.String(), lost); got != tt.wantLost {
				t.Errorf("log names the answered records as possibly lost = %v, want %v; log:\n%s", got, tt.wantLost, logs.String())
			}
		})
	}
}

func (s *FileSink) dirtyNow() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dirty
}
