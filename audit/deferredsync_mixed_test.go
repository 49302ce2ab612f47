package audit

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// gatedFile holds the first Write until release is closed.
type gatedFile struct {
	countingFile
	entered, release chan struct{}
	once             sync.Once
}

func (f *gatedFile) Write(p []byte) (int, error) {
	f.once.Do(func() { close(f.entered); <-f.release })
	return f.countingFile.Write(p)
}

// TestIntentInAGroupWithResultsIsSynced: a group that holds an intent is
// fsynced before any of its appends returns, even when the rest of the
// group came from AppendWritten: the intent's card is sent once Append
// returns.
func TestIntentInAGroupWithResultsIsSynced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	fs, err := OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	gf := &gatedFile{countingFile: countingFile{appendFile: fs.f}, entered: make(chan struct{}), release: make(chan struct{})}
	fs.f = gf
	l, err := New(Options{Sinks: []Sink{fs}, Now: fixedClock(), SyncDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = l.AppendWritten(ctx, result(1)) }) // leads; its write is held
	<-gf.entered
	wg.Go(func() { _, _ = l.AppendWritten(ctx, result(2)) })
	queued := func(n int) bool {
		l.qmu.Lock()
		defer l.qmu.Unlock()
		return len(l.queue) == n
	}
	waitForCond(t, func() bool { return queued(1) })
	intentDone := make(chan error, 1)
	go func() {
		_, err := l.Append(ctx, intent(3))
		if err == nil && fs.dirtyNow() {
			t.Error("Append(intent) returned with its group written but not fsynced")
		}
		intentDone <- err
	}()
	waitForCond(t, func() bool { return queued(2) })
	close(gf.release)
	if err := <-intentDone; err != nil {
		t.Fatalf("Append(intent) = %v", err)
	}
	wg.Wait()
	if w := gf.writes.Load(); w != 2 {
		t.Fatalf("%d writes, want 2: the result and the intent were not one group", w)
	}
	if s := gf.syncs.Load(); s != 1 {
		t.Errorf("%d fsyncs, want 1: the group holding the intent must be synced, the first result's need not be", s)
	}
}

func waitForCond(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
