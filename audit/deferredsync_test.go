package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// countingFile wraps the sink's real file, counts writes and fsyncs
// (atomically: the deferred fsync runs on a timer's goroutine), and fails
// Sync once syncErr is set.
type countingFile struct {
	appendFile
	writes, syncs atomic.Int64
	syncErr       atomic.Pointer[error]
}

func (f *countingFile) Write(p []byte) (int, error) {
	f.writes.Add(1)
	return f.appendFile.Write(p)
}

func (f *countingFile) Sync() error {
	f.syncs.Add(1)
	if e := f.syncErr.Load(); e != nil {
		return *e
	}
	return f.appendFile.Sync()
}

// newDeferredLog returns a Log on a file sink whose file counts its
// fsyncs, with the given SyncDelay.
func newDeferredLog(t *testing.T, delay time.Duration) (*Log, *FileSink, *countingFile, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	fs, err := OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	cf := &countingFile{appendFile: fs.f}
	fs.f = cf
	l, err := New(Options{Sinks: []Sink{fs}, Now: fixedClock(), SyncDelay: delay})
	if err != nil {
		t.Fatal(err)
	}
	return l, fs, cf, path
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte{'\n'})
}

// TestAppendWrittenDefersTheFsync checks the shape of a forward's
// critical path: the intent is written and fsynced before Append returns;
// the result is written (a crash of the process keeps it) before
// AppendWritten returns, and fsynced later, by the next intent's fsync.
func TestAppendWrittenDefersTheFsync(t *testing.T) {
	// A delay no test waits for: only the next intent's fsync can cover
	// the result here.
	l, fs, cf, path := newDeferredLog(t, time.Hour)
	ctx := context.Background()

	mustAppend(t, l, intent(1))
	if w, s := cf.writes.Load(), cf.syncs.Load(); w != 1 || s != 1 {
		t.Fatalf("after an intent: %d writes, %d fsyncs; want 1 and 1", w, s)
	}
	if _, err := l.AppendWritten(ctx, result(1)); err != nil {
		t.Fatalf("AppendWritten(result) = %v", err)
	}
	if w, s := cf.writes.Load(), cf.syncs.Load(); w != 2 || s != 1 {
		t.Fatalf("after a result: %d writes, %d fsyncs; want 2 and 1 (the result's fsync deferred)", w, s)
	}
	if n := countLines(t, path); n != 2 {
		t.Errorf("the file holds %d lines after AppendWritten returned, want 2: the result must be written before the answer", n)
	}
	mustAppend(t, l, intent(2))
	if w, s := cf.writes.Load(), cf.syncs.Load(); w != 3 || s != 2 {
		t.Fatalf("after the next intent: %d writes, %d fsyncs; want 3 and 2 (one fsync per forward)", w, s)
	}
	fs.mu.Lock()
	dirty := fs.dirty
	fs.mu.Unlock()
	if dirty {
		t.Errorf("the intent's fsync left the sink dirty; it covers the result written before it")
	}
	rep, err := Verify(bytes.NewReader(mustRead(t, path)))
	if err != nil {
		t.Fatalf("Verify: %v (%v)", err, rep.Problems)
	}
}

// TestAppendWrittenSyncsWithinTheDelay checks that a result no intent
// follows is fsynced by the timer, and that Close syncs what is pending.
func TestAppendWrittenSyncsWithinTheDelay(t *testing.T) {
	t.Run("timer", func(t *testing.T) {
		l, _, cf, _ := newDeferredLog(t, 5*time.Millisecond)
		if _, err := l.AppendWritten(context.Background(), result(1)); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for cf.syncs.Load() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the deferred result was never fsynced")
			}
			time.Sleep(time.Millisecond)
		}
	})
	t.Run("close", func(t *testing.T) {
		l, fs, cf, _ := newDeferredLog(t, time.Hour)
		if _, err := l.AppendWritten(context.Background(), result(1)); err != nil {
			t.Fatal(err)
		}
		if err := fs.Close(); err != nil {
			t.Fatal(err)
		}
		if s := cf.syncs.Load(); s != 1 {
			t.Errorf("Close ran %d fsyncs with a result pending, want 1", s)
		}
	})
}

// TestAppendWrittenRefusesIntents: an intent is durable before its send,
// always.
func TestAppendWrittenRefusesIntents(t *testing.T) {
	l, _, cf, _ := newDeferredLog(t, time.Hour)
	if _, err := l.AppendWritten(context.Background(), intent(1)); !errors.Is(err, ErrInvalid) {
		t.Errorf("AppendWritten(intent) = %v, want ErrInvalid", err)
	}
	if w := cf.writes.Load(); w != 0 {
		t.Errorf("a refused intent was written (%d writes)", w)
	}
}

// TestAppendWrittenFsyncFailureStopsTheLog checks that a deferred fsync
// that fails fails every later append: no intent, and so no card, goes
// out after records may have been lost.
func TestAppendWrittenFsyncFailureStopsTheLog(t *testing.T) {
	l, fs, cf, _ := newDeferredLog(t, time.Millisecond)
	eio := errors.New("input/output error")
	cf.syncErr.Store(&eio)
	if _, err := l.AppendWritten(context.Background(), result(1)); err != nil {
		t.Fatalf("AppendWritten = %v; the write itself succeeds", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for fs.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the failed deferred fsync never stopped the sink")
		}
		time.Sleep(time.Millisecond)
	}
	cf.syncErr.Store(nil)
	if _, err := l.Append(context.Background(), intent(2)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Append(intent) after a failed deferred fsync = %v, want ErrUnavailable", err)
	}
	if chain, _, _ := l.Head(); chain != "" {
		t.Errorf("Head() chain = %q after a failed deferred fsync, want the chain closed", chain)
	}
}

// TestAppendWrittenWithATreeSyncsAtOnce: a checkpoint must never cover a
// line a machine crash could take back, so a sink keeping a Merkle tree
// does not defer.
func TestAppendWrittenWithATreeSyncsAtOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	fs, _, err := OpenFileSinkTree(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	cf := &countingFile{appendFile: fs.f}
	fs.f = cf
	l, err := New(Options{Sinks: []Sink{fs}, Now: fixedClock(), SyncDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendWritten(context.Background(), result(1)); err != nil {
		t.Fatal(err)
	}
	if s := cf.syncs.Load(); s != 1 {
		t.Errorf("AppendWritten on a tree sink ran %d fsyncs before returning, want 1", s)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
