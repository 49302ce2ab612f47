//go:build unix

package audit

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// An audit file replaced by a named pipe or a directory fails at once:
// whoever can write the file's directory must not be able to hang
// `cardgate audit prove` or `consistency` (a plain open of a FIFO blocks
// until a writer appears, and ignores SIGTERM meanwhile).
func TestProveRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fifo, dir} {
		for _, tc := range []struct {
			name string
			call func() error
		}{
			{"ProveLines", func() error {
				_, _, err := ProveLines(path, 1, func([]byte) bool { return true })
				return err
			}},
			{"ProveConsistency", func() error {
				_, _, _, err := ProveConsistency(path, 1, 2)
				return err
			}},
		} {
			t.Run(tc.name+" "+filepath.Base(path), func(t *testing.T) {
				done := make(chan error, 1)
				go func() { done <- tc.call() }()
				select {
				case err := <-done:
					if err == nil {
						t.Error("err = nil, want a refusal")
					}
				case <-time.After(5 * time.Second):
					t.Fatal("hung on a special file")
				}
			})
		}
	}
}
