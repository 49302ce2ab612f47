package api

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cardgate/cardgate/internal/testpki"
)

// TestRevocationRefusesSpecialFiles: a caller CRL path that becomes a
// FIFO, a device or a directory is refused by the reload at once: the
// reload does not block (issue 13, item 10: a FIFO named like a file
// cardgate reads hung its reload, and every later reload queued behind
// it), the last good CRLs stay in force, Check reports the failure, and
// the next reload of a good file succeeds. A ConfigMap-style symlink to a
// regular file is read.
func TestRevocationRefusesSpecialFiles(t *testing.T) {
	ca, err := testpki.NewCA("callers")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	der, err := ca.CRL(nil, now.Add(-time.Minute), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		replace func(t *testing.T, path string) // path is gone when it runs
	}{
		{"fifo", func(t *testing.T, path string) { crlMkfifo(t, path) }},
		{"symlink to a fifo", func(t *testing.T, path string) {
			crlMkfifo(t, path+".pipe")
			crlSymlink(t, path+".pipe", path)
		}},
		{"symlink to /dev/zero", func(t *testing.T, path string) { crlSymlink(t, "/dev/zero", path) }},
		{"directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			// Loaded through a symlink, as a ConfigMap mounts the file.
			if err := os.WriteFile(filepath.Join(dir, "callers.crl.real"), der, 0o600); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "callers.crl")
			crlSymlink(t, "callers.crl.real", path)
			r, err := NewRevocation(path, []*x509.Certificate{ca.Cert}, nil)
			if err != nil {
				t.Fatalf("NewRevocation through a symlink = %v", err)
			}
			good := r.cur.Load()

			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			tt.replace(t, path)
			done := make(chan error, 1)
			go func() { done <- r.Load() }()
			select {
			case err := <-done:
				if err == nil {
					t.Errorf("Load of a %s = nil, want a refusal", tt.name)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("Load of a %s has not returned after 5s: it blocks on the file", tt.name)
			}
			if r.cur.Load() != good {
				t.Error("the failed reload replaced the last good CRLs")
			}
			if detail, err := r.Check(); err != nil || !strings.Contains(detail, "last reload failed") {
				t.Errorf("Check() = %q, %v after a refused reload; want ready (the last good CRLs hold) with the failure reported", detail, err)
			}

			// Later reloads still run.
			if err := os.RemoveAll(path); err != nil {
				t.Fatal(err)
			}
			crlSymlink(t, "callers.crl.real", path)
			if err := r.Load(); err != nil {
				t.Errorf("reload of the good file after the refusal = %v, want nil", err)
			}
		})
	}
}

func crlMkfifo(t *testing.T, path string) {
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

func crlSymlink(t *testing.T, target, path string) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}
