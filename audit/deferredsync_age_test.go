package audit

import (
	"context"
	"testing"
	"time"
)

// The deferred fsync goes by the age of the oldest unsynced record, not by
// when the timer was armed: a record that an intent's fsync covered needs
// no timer fsync, and the record written after it gets its fsync SyncDelay
// after its own write. Under steady load intents keep every result
// durable, and the timer adds no fsync of its own.
func TestDeferredSyncGoesByRecordAge(t *testing.T) {
	const delay = 400 * time.Millisecond
	l, fs, cf, _ := newDeferredLog(t, delay)
	ctx := context.Background()

	// A: written unsynced at 0; the timer is armed for delay.
	if _, err := l.AppendWritten(ctx, result(1)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(delay * 3 / 5)
	// B's fsync covers A; C is written unsynced at 0.6·delay.
	mustAppend(t, l, intent(2))
	if _, err := l.AppendWritten(ctx, result(2)); err != nil {
		t.Fatal(err)
	}
	if got := cf.syncs.Load(); got != 1 {
		t.Fatalf("%d fsyncs after the intent, want 1", got)
	}
	// At 1.3·delay the first timer has fired (at delay): C was then
	// 0.4·delay old, so it did not sync.
	time.Sleep(delay * 7 / 10)
	if got := cf.syncs.Load(); got != 1 {
		t.Errorf("%d fsyncs at 1.3×SyncDelay, want 1: the timer synced a record an intent had covered and one not yet due", got)
	}
	// C is due at 1.6·delay: by 2.2·delay it is durable.
	time.Sleep(delay * 9 / 10)
	if got := cf.syncs.Load(); got != 2 {
		t.Errorf("%d fsyncs at 2.2×SyncDelay, want 2: the last record was not synced when due", got)
	}
	fs.mu.Lock()
	dirty := fs.dirty
	fs.mu.Unlock()
	if dirty {
		t.Error("records still unsynced after SyncDelay")
	}
}
