package audit

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardgate/cardgate/internal/redistest"
)

// Found by mutation testing (docs/mutation.md).

// A lag the mirror's own write failure caused keeps that failure as its
// cause: MirrorErr (and so /readyz) says why the mirror is behind, not
// only that it is.
func TestMirrorErrKeepsTheWriteFailure(t *testing.T) {
	srv := redistest.Start(t)
	m := newMirrored(t, srv, filepath.Join(t.TempDir(), "audit.log"))
	m.forwards(t, 2)
	srv.Stop()
	mustAppend(t, m.log, result(50)) // in the file only
	err := m.log.MirrorErr()
	if err == nil {
		t.Fatal("MirrorErr() = nil with the stream down")
	}
	if n := strings.Count(err.Error(), ErrMirrorBehind.Error()); n != 1 {
		t.Errorf("MirrorErr() = %q: names the lag %d times and not the write's failure", err, n)
	}
}

// Reconcile copies every lagging chain, not only the first: here one
// chain left by an earlier Log and one of the current Log.
func TestReconcileCopiesEveryLaggingChain(t *testing.T) {
	srv := redistest.Start(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	m := newMirrored(t, srv, path)
	m.forwards(t, 2)
	srv.Stop()
	mustAppend(t, m.log, result(50)) // chain 1, in the file only
	m.file.Close()

	m2 := newMirrored(t, srv, path)
	mustAppend(t, m2.log, result(51)) // chain 2, in the file only
	srv.Restart()
	if err := m2.log.Reconcile(context.Background()); err != nil {
		t.Fatalf("Reconcile = %v", err)
	}
	chains := map[string]bool{}
	for _, line := range m2.fileLines(t) {
		if rec, ok := decodeStored([]byte(line)); ok {
			chains[rec.Chain] = true
		}
	}
	if len(chains) != 2 {
		t.Fatalf("the file holds %d chains, want 2", len(chains))
	}
	m2.assertAgree(t)
}
