package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardgate/cardgate/internal/redistest"
)

// Found by mutation testing (docs/mutation.md): the replay paths of
// Reconcile that no test reached: a replay longer than one mirror write, a
// Redis restarted from an older snapshot, a mirror that refuses the
// replay's writes, and a gap that no replay can fill.

// behindBy stops the stream's Redis after a snapshot of what it holds, and
// appends n results, which reach the file only. The restarted Redis then
// holds the snapshot.
func (m *mirrored) behindBy(t *testing.T, n int) {
	t.Helper()
	m.srv.RDB()
	m.srv.Stop()
	for i := range n {
		mustAppend(t, m.log, result(1000+i))
	}
	m.srv.Restart()
}

// A lag of more records than one mirror write carries (replayBatch) is
// copied whole, once: the copy from the lag's offset finds the mirror's
// next record, so the chain is not copied a second time from its start
// (whose first write the stream would refuse as a conflict).
func TestReconcileReplaysMoreThanOneBatch(t *testing.T) {
	srv := redistest.Start(t)
	m := newMirrored(t, srv, filepath.Join(t.TempDir(), "audit.log"))
	m.forwards(t, 4) // the lag starts after the chain's first records
	m.behindBy(t, replayBatch+44)

	if err := m.log.Reconcile(context.Background()); err != nil {
		t.Fatalf("Reconcile = %v", err)
	}
	if err := m.log.MirrorErr(); err != nil {
		t.Errorf("MirrorErr() after Reconcile = %v, want nil", err)
	}
	m.assertAgree(t)
}

// A Redis restarted from a snapshot older than the lag (it lost records
// the file holds before the lag's offset) gets the chain from its start,
// after the record its head names: the head's own record is not copied
// again.
func TestReconcileAfterARestartFromAnOlderSnapshot(t *testing.T) {
	srv := redistest.Start(t)
	m := newMirrored(t, srv, filepath.Join(t.TempDir(), "audit.log"))
	m.forwards(t, 10)
	srv.RDB()         // the snapshot: 20 records
	m.forwards(t, 10) // in both, but not in the snapshot
	srv.Stop()
	mustAppend(t, m.log, result(50)) // in the file only: the lag
	srv.Restart()

	if err := m.log.Reconcile(context.Background()); err != nil {
		t.Fatalf("Reconcile = %v", err)
	}
	if err := m.log.MirrorErr(); err != nil {
		t.Errorf("MirrorErr() after Reconcile = %v, want nil", err)
	}
	m.assertAgree(t)
}

// A mirror that answers the replay's head read but refuses its writes
// (here a Redis over its maxmemory) leaves the lag in place: Reconcile
// fails, and intents stay refused until a later Reconcile succeeds.
func TestReconcileMirrorRefusesTheReplay(t *testing.T) {
	srv := redistest.Start(t)
	m := newMirrored(t, srv, filepath.Join(t.TempDir(), "audit.log"))
	ctx := context.Background()
	m.forwards(t, 4)
	m.behindBy(t, 3)
	c := srv.Client()
	if err := c.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}

	err := m.log.Reconcile(ctx)
	if !errors.Is(err, ErrMirrorBehind) {
		t.Fatalf("Reconcile with the mirror refusing writes = %v, want ErrMirrorBehind", err)
	}
	if !strings.Contains(err.Error(), "OOM") {
		t.Errorf("Reconcile = %q, want the mirror's refusal (OOM) as its cause", err)
	}
	if m.log.MirrorErr() == nil {
		t.Error("MirrorErr() = nil after a replay the mirror refused")
	}
	if m.forward(t, 60) {
		t.Error("an intent was accepted after a replay the mirror refused")
	}

	if err := c.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := m.log.Reconcile(ctx); err != nil {
		t.Fatalf("Reconcile once the mirror accepts writes = %v", err)
	}
	m.assertAgree(t)
}

// A gap no replay can fill (the mirror lost the chain, and the file's
// first records of it are unreadable) is reported, and the lag stays:
// Reconcile never declares a mirror complete that lacks records.
func TestReconcileReportsAGapItCannotFill(t *testing.T) {
	srv := redistest.Start(t) // no persistence: the restart comes back empty
	m := newMirrored(t, srv, filepath.Join(t.TempDir(), "audit.log"))
	m.forwards(t, 4)
	srv.Stop()
	mustAppend(t, m.log, result(50)) // in the file only: the lag
	// Damage the chain's first record in place (same length, so every
	// offset stays): the file holds the chain only from seq 2.
	raw, err := os.ReadFile(m.path)
	if err != nil {
		t.Fatal(err)
	}
	end := bytes.IndexByte(raw, '\n')
	copy(raw[:end], bytes.Repeat([]byte{'x'}, end))
	if err := os.WriteFile(m.path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	srv.Restart()

	err = m.log.Reconcile(context.Background())
	if !errors.Is(err, ErrMirrorBehind) || !strings.Contains(err.Error(), "only from seq 2") {
		t.Fatalf("Reconcile over a gap = %v, want ErrMirrorBehind naming the gap", err)
	}
	if m.log.MirrorErr() == nil {
		t.Error("MirrorErr() = nil with a gap in the mirror")
	}
	if got := m.streamLines(t); len(got) != 0 {
		t.Errorf("the stream holds %d records after a refused replay, want none", len(got))
	}
	if markers, _ := filepath.Glob(m.path + markerPrefix + "*"); len(markers) != 1 {
		t.Errorf("lag markers after a refused replay: %v, want the chain's", markers)
	}
}
