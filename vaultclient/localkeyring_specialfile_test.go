package vaultclient

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestLocalKeyringRefusesSpecialFiles: a FIFO or a device at the keyring's
// path is refused at once by every reader (the gateway's open and the keys
// commands' rotate and retire), never waited on (issue 13, item 10: `keys
// status` against a FIFO hung and ignored SIGTERM). A symlink to a regular
// file, as a Kubernetes Secret mounts one, is read.
func TestLocalKeyringRefusesSpecialFiles(t *testing.T) {
	good, err := os.ReadFile("testdata/keyring/good.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
		ok    bool
	}{
		{"fifo", func(t *testing.T, path string) { keyringMkfifo(t, path) }, false},
		{"symlink to a fifo", func(t *testing.T, path string) {
			keyringMkfifo(t, path+".pipe")
			keyringSymlink(t, path+".pipe", path)
		}, false},
		{"symlink to /dev/zero", func(t *testing.T, path string) { keyringSymlink(t, "/dev/zero", path) }, false},
		{"symlink to a regular file", func(t *testing.T, path string) {
			if err := os.WriteFile(path+".real", good, 0o600); err != nil {
				t.Fatal(err)
			}
			keyringSymlink(t, filepath.Base(path)+".real", path)
		}, true},
	}
	ops := []struct {
		name string
		run  func(path string) error
	}{
		{"OpenLocalKeyring", func(path string) error {
			k, err := OpenLocalKeyring(path)
			if err == nil {
				k.Close()
			}
			return err
		}},
		{"RotateLocalKeyring", func(path string) error { _, err := RotateLocalKeyring(path); return err }},
		{"RetireLocalKeyring", func(path string) error { _, err := RetireLocalKeyring(path, 1); return err }},
	}
	for _, tt := range tests {
		for _, op := range ops {
			t.Run(tt.name+"/"+op.name, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "keyring.json")
				tt.setup(t, path)
				done := make(chan error, 1)
				go func() { done <- op.run(path) }()
				select {
				case err := <-done:
					if tt.ok && err != nil {
						t.Errorf("%s = %v, want the keyring read", op.name, err)
					}
					if !tt.ok && err == nil {
						t.Errorf("%s = nil, want a refusal", op.name)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("%s has not returned after 5s: it blocks on the file", op.name)
				}
			})
		}
	}
}

func keyringMkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	// Unblock an open left waiting for a writer, so that the test binary
	// can end even when the code under test hangs on the FIFO.
	t.Cleanup(func() {
		if f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
}

func keyringSymlink(t *testing.T, target, path string) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}
