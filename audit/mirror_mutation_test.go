package audit

import (
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
