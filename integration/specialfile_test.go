package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// specialFileCases name a FIFO after each file cardgate reads for the
// allowlist. Before the fix, open(2) on any of them blocked until a writer
// came: `allowlist verify` hung (and ignored SIGTERM), serve never
// started, and a reload wedged the gateway's main loop.
var specialFileCases = []struct {
	name string
	path string // relative to the env's directory
}{
	{"allowlist is a fifo", "allowlist.yaml"},
	{"a signature is a fifo", "allowlist.sigs/mallory.sig"},
	{"allowed_signers is a fifo", "allowed_signers"},
}

// mkfifoAt replaces path with a FIFO.
func mkfifoAt(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
}

// copyAllowlistFiles copies the regular files cardgate reads for the allowlist
// from src to a fresh directory.
func copyAllowlistFiles(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	for _, name := range []string{"allowlist.yaml", "allowlist.sigs/auditor.sig", "allowed_signers"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, name)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestSpecialFileVerify: `cardgate allowlist verify` exits non-zero
// promptly, naming the refusal, when any file it reads is a FIFO.
func TestSpecialFileVerify(t *testing.T) {
	e := newEnv(t)
	e.signAllowlist(e.allowlistYAML(1))
	verify := func(t *testing.T, dir string) (out string, hung bool, err error) {
		t.Helper()
		// The deadline kills a hung process; a refusal must come long
		// before it.
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, "allowlist", "verify",
			"--allowed-signers", filepath.Join(dir, "allowed_signers"), "--threshold", "1",
			"--environment", "integration", filepath.Join(dir, "allowlist.yaml"))
		b, err := cmd.CombinedOutput()
		return string(b), ctx.Err() != nil, err
	}
	// The good set verifies, so each refusal below is the FIFO's.
	if out, _, err := verify(t, copyAllowlistFiles(t, e.dir)); err != nil {
		t.Fatalf("allowlist verify on the good files = %v\n%s", err, out)
	}
	for _, tt := range specialFileCases {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyAllowlistFiles(t, e.dir)
			mkfifoAt(t, filepath.Join(dir, tt.path))
			out, hung, err := verify(t, dir)
			if hung {
				t.Fatalf("allowlist verify hung on a FIFO (killed at the test's deadline)\n%s", out)
			}
			if err == nil {
				t.Fatalf("allowlist verify = exit 0 with a FIFO, want a refusal\n%s", out)
			}
			if !strings.Contains(out, "not_regular_file (named pipe)") {
				t.Errorf("allowlist verify output does not name the FIFO:\n%s", out)
			}
		})
	}
}

// TestSpecialFileServe: serve refuses to start when a file it reads for
// the allowlist is a FIFO; and a running gateway whose allowlist becomes a
// FIFO refuses that reload, keeps serving, and loads the next good file.
func TestSpecialFileServe(t *testing.T) {
	e := newEnv(t)
	v1 := e.allowlistYAML(1)
	e.signAllowlist(v1)
	signers, err := os.ReadFile(filepath.Join(e.dir, "allowed_signers"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range specialFileCases {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(e.dir, tt.path)
			mkfifoAt(t, p)
			defer func() {
				// Restore the good files (a FIFO must be removed before it
				// is written, or the write blocks).
				os.Remove(p)
				os.Remove(filepath.Join(e.dir, "allowlist.yaml"))
				e.write("allowed_signers", signers)
				e.signAllowlist(v1)
			}()
			gw, err := startProcess(t, binary, "serve", "-config", filepath.Join(e.dir, "cardgate.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			code, err := gw.wait(20 * time.Second)
			if err != nil {
				t.Fatalf("serve with a FIFO did not exit: %v\nlog:\n%s", err, gw.log())
			}
			if code == 0 {
				t.Fatalf("serve with a FIFO exited 0, want a refusal to start\nlog:\n%s", gw.log())
			}
			if !strings.Contains(gw.log(), "not_regular_file (named pipe)") {
				t.Errorf("serve's refusal does not name the FIFO:\nlog:\n%s", gw.log())
			}
		})
	}

	t.Run("reload against a fifo", func(t *testing.T) {
		e.start()
		p := filepath.Join(e.dir, "allowlist.yaml")
		mkfifoAt(t, p)
		if err := e.gw.signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		detail := e.waitReady(t, "last reload failed")
		if !strings.Contains(detail, "version 1") {
			t.Errorf("readyz detail = %q, want version 1 still live", detail)
		}
		os.Remove(p)
		e.signAllowlist(withPrev(e.allowlistYAML(2), v1))
		if err := e.gw.signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		e.waitReady(t, "version 2")
	})
}
