package allowlist

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cardgate/cardgate/internal/fileread"
)

// within runs f and fails the test if it has not returned by the
// context's deadline: a read that blocks (the bug these tests are for)
// then fails the test instead of hanging it.
func within[T any](t *testing.T, what string, f func(ctx context.Context) T) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	done := make(chan T, 1)
	go func() { done <- f(ctx) }()
	select {
	case v := <-done:
		return v
	case <-ctx.Done():
		t.Fatalf("%s blocked", what)
		panic("unreachable")
	}
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
}

func replaceWith(t *testing.T, path string, make func(string)) {
	t.Helper()
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
	make(path)
}

// TestHolderRefusesSpecialFiles: a FIFO (or a device, or a directory)
// named like the allowlist, a signature or the signatures directory is
// refused promptly with a typed error, before it is opened.
func TestHolderRefusesSpecialFiles(t *testing.T) {
	s := newAttackSetup(t)
	raw := docSpec{}.yaml()
	tests := []struct {
		name   string
		tamper func(t *testing.T, dir string)
		want   error
	}{
		{"allowlist is a fifo", func(t *testing.T, dir string) {
			replaceWith(t, filepath.Join(dir, "allowlist.yaml"), func(p string) { mkfifo(t, p) })
		}, fileread.ErrNotRegular},
		{"allowlist is a symlink to a fifo", func(t *testing.T, dir string) {
			mkfifo(t, filepath.Join(dir, "pipe"))
			replaceWith(t, filepath.Join(dir, "allowlist.yaml"), func(p string) { symlink(t, "pipe", p) })
		}, fileread.ErrNotRegular},
		{"allowlist is a symlink to /dev/zero", func(t *testing.T, dir string) {
			replaceWith(t, filepath.Join(dir, "allowlist.yaml"), func(p string) { symlink(t, "/dev/zero", p) })
		}, fileread.ErrNotRegular},
		{"allowlist is a directory", func(t *testing.T, dir string) {
			replaceWith(t, filepath.Join(dir, "allowlist.yaml"), func(p string) { mkdir(t, p) })
		}, fileread.ErrNotRegular},
		{"a .sig is a fifo", func(t *testing.T, dir string) {
			mkfifo(t, filepath.Join(dir, "sigs", "mallory.sig"))
		}, fileread.ErrNotRegular},
		{"a .sig is a symlink to /dev/zero", func(t *testing.T, dir string) {
			symlink(t, "/dev/zero", filepath.Join(dir, "sigs", "zero.sig"))
		}, fileread.ErrNotRegular},
		{"a .sig is a directory", func(t *testing.T, dir string) {
			mkdir(t, filepath.Join(dir, "sigs", "d.sig"))
		}, fileread.ErrNotRegular},
		{"the signatures directory is a fifo", func(t *testing.T, dir string) {
			replaceWith(t, filepath.Join(dir, "sigs"), func(p string) { mkfifo(t, p) })
		}, fileread.ErrNotDir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, dir := newTestHolder(t, s, &clock{t: testNow})
			writeSet(t, dir, raw, s.signBoth(t, raw)...)
			tt.tamper(t, dir)
			err := within(t, "LoadContext", h.LoadContext)
			if !errors.Is(err, tt.want) || asVerifyError(t, err).Problem != ProblemRead {
				t.Fatalf("LoadContext(%s) = %v, want %s wrapping %v", tt.name, err, ProblemRead, tt.want)
			}
			if a, _ := h.Current(); a != nil {
				t.Errorf("LoadContext(%s) failed but an allowlist is live", tt.name)
			}
		})
	}
}

func TestReadAllowedSignersFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "allowed_signers")
	mkfifo(t, p)
	err := within(t, "ReadAllowedSigners", func(ctx context.Context) error {
		_, err := ReadAllowedSigners(ctx, p)
		return err
	})
	if !errors.Is(err, fileread.ErrNotRegular) {
		t.Fatalf("ReadAllowedSigners(fifo) = %v, want %v", err, fileread.ErrNotRegular)
	}
}

// TestHolderConfigMapLayout: Kubernetes mounts a ConfigMap as symlinks
// (name -> ..data/name, ..data -> ..<timestamp>/) to regular files, for
// the document and for the signatures; they must keep working.
func TestHolderConfigMapLayout(t *testing.T) {
	s := newAttackSetup(t)
	raw := docSpec{}.yaml()
	mount := t.TempDir()
	data := filepath.Join(mount, "..2026_12_07_10_00_00.123456789")
	mkdir(t, data)
	mkdir(t, filepath.Join(data, "sigs"))
	writeFile(t, filepath.Join(data, "allowlist.yaml"), raw)
	for _, sig := range s.signBoth(t, raw) {
		writeFile(t, filepath.Join(data, "sigs", sig.Name), sig.Armor)
	}
	symlink(t, filepath.Base(data), filepath.Join(mount, "..data"))
	symlink(t, filepath.Join("..data", "allowlist.yaml"), filepath.Join(mount, "allowlist.yaml"))
	symlink(t, filepath.Join("..data", "sigs"), filepath.Join(mount, "sigs"))

	p := s.policy
	p.Now = fixedNow
	h := NewHolder(HolderOptions{
		Path: filepath.Join(mount, "allowlist.yaml"), SignaturesDir: filepath.Join(mount, "sigs"),
		Policy: p, State: NewFileStateStore(filepath.Join(t.TempDir(), "state.json")),
	})
	if err := within(t, "LoadContext", h.LoadContext); err != nil {
		t.Fatalf("LoadContext(ConfigMap layout) = %v", err)
	}
}

// TestHolderReloadAfterFIFO: a reload against a FIFO fails promptly and
// keeps the last good allowlist, and the next good reload (by hand and by
// Watch) still runs.
func TestHolderReloadAfterFIFO(t *testing.T) {
	s := newAttackSetup(t)
	h, dir := newTestHolder(t, s, &clock{t: testNow})
	doc := filepath.Join(dir, "allowlist.yaml")
	v1 := docSpec{version: 1}.yaml()
	writeSet(t, dir, v1, s.signBoth(t, v1)...)
	if err := within(t, "LoadContext", h.LoadContext); err != nil {
		t.Fatal(err)
	}

	replaceWith(t, doc, func(p string) { mkfifo(t, p) })
	if err := within(t, "LoadContext", h.LoadContext); !errors.Is(err, fileread.ErrNotRegular) {
		t.Fatalf("reload against a FIFO = %v, want %v", err, fileread.ErrNotRegular)
	}
	if st := h.Status(); st.Version != 1 || st.Failures != 1 {
		t.Fatalf("after the FIFO reload Status() = %+v, want v1 live and one failure", st)
	}
	v2 := docSpec{version: 2, prev: SHA256Hex(v1)}.yaml()
	replaceWith(t, doc, func(p string) { writeFile(t, p, v2) })
	writeSet(t, dir, v2, s.signBoth(t, v2)...)
	if err := within(t, "LoadContext", h.LoadContext); err != nil {
		t.Fatalf("the next good reload = %v", err)
	}

	// Watch: a FIFO must not stop the poll loop; the next good version
	// after it is loaded.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.Watch(ctx) }()
	waitFor := func(what string, ok func(Status) bool) {
		t.Helper()
		for !ok(h.Status()) {
			select {
			case <-ctx.Done():
				t.Fatalf("Watch: %s did not happen: %+v", what, h.Status())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	replaceWith(t, doc, func(p string) { mkfifo(t, p) })
	waitFor("a refused load of the FIFO", func(st Status) bool { return st.Failures == 2 })
	v3 := docSpec{version: 3, prev: SHA256Hex(v2)}.yaml()
	replaceWith(t, doc, func(p string) { writeFile(t, p, v3) })
	writeSet(t, dir, v3, s.signBoth(t, v3)...)
	waitFor("a load of v3", func(st Status) bool { return st.Version == 3 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Watch() = %v", err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o700); err != nil {
		t.Fatal(err)
	}
}
