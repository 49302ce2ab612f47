package audit

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardgate/cardgate/internal/redistest"
)

// Found by mutation testing (docs/mutation.md).

// A Log that starts on a lag an earlier run left says so: the reason
// reaches MirrorErr (and so /readyz and the refused intents' errors),
// not an empty cause.
func TestMirrorLagAtStartSaysWhy(t *testing.T) {
	srv := redistest.Start(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	m := newMirrored(t, srv, path)
	m.forwards(t, 2)
	srv.Stop()
	mustAppend(t, m.log, result(50)) // in the file only: a lag marker
	m.file.Close()
	srv.Restart()

	m2 := newMirrored(t, srv, path)
	err := m2.log.MirrorErr()
	if err == nil || !strings.Contains(err.Error(), "a lag left by an earlier run") {
		t.Errorf("MirrorErr() = %v, want it to name the earlier run's lag", err)
	}
}
