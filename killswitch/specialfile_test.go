package killswitch

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestFileStoreRefusesSpecialFiles: a FIFO, a device or a directory at the
// state file's path is refused at once, never read as "nothing disabled",
// and never blocks the watcher's poll or an operator's disable (issue 13,
// item 10: a FIFO named like a file cardgate reads hung its reload for
// good). A symlink to a regular file, as a Kubernetes ConfigMap mounts
// one, is read.
func TestFileStoreRefusesSpecialFiles(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
		ok    bool
	}{
		{"fifo", func(t *testing.T, path string) { mkfifo(t, path) }, false},
		{"symlink to a fifo", func(t *testing.T, path string) {
			mkfifo(t, path+".pipe")
			symlink(t, path+".pipe", path)
		}, false},
		{"symlink to /dev/zero", func(t *testing.T, path string) { symlink(t, "/dev/zero", path) }, false},
		{"directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"configmap symlink chain to a regular file", func(t *testing.T, path string) {
			dir := filepath.Dir(path)
			if err := os.Mkdir(filepath.Join(dir, "..2026_12_07"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "..2026_12_07", "ks.json"), []byte(`{"acme":{"reason":"INC-7"}}`), 0o600); err != nil {
				t.Fatal(err)
			}
			symlink(t, "..2026_12_07", filepath.Join(dir, "..data"))
			symlink(t, filepath.Join("..data", "ks.json"), path)
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ks.json")
			tt.setup(t, path)
			st := NewFileStore(path)
			w, err := NewWatcher(WatcherOptions{Store: st})
			if err != nil {
				t.Fatal(err)
			}
			err = within(t, "Refresh", func() error { return w.Refresh(context.Background()) })
			if tt.ok {
				if err != nil {
					t.Fatalf("Refresh = %v, want the state read", err)
				}
				if got := code(w.Check("acme")); got != CodeDisabled {
					t.Errorf("Check(acme) = %q, want %q from the linked file", got, CodeDisabled)
				}
				return
			}
			if err == nil {
				t.Errorf("Refresh = nil, want a refusal")
			}
			if got := code(w.Check("acme")); got != CodeUnavailable {
				t.Errorf("Check(acme) = %q, want %q: an unreadable state is not \"nothing disabled\"", got, CodeUnavailable)
			}
			if err := within(t, "Disable", func() error { return st.Disable(context.Background(), "acme", Switch{Reason: "INC-8"}) }); err == nil {
				t.Errorf("Disable over a special file = nil, want a refusal")
			}
		})
	}
}

// within runs f and fails the test if it has not returned in 5 seconds.
func within(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("%s has not returned after 5s: it blocks on the file", what)
		return nil
	}
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	// Unblock any open left waiting for a writer, so the test binary can
	// end even when the code under test hangs on the FIFO.
	t.Cleanup(func() {
		if f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
}

func symlink(t *testing.T, target, path string) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}
