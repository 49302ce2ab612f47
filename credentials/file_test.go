package credentials

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// loadOneErr loads a single spec and returns its value or error.
func loadOne(t *testing.T, sp Spec, o Options) (string, error) {
	t.Helper()
	s, err := New([]Spec{sp}, o)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	if err := s.Reload(context.Background()); err != nil {
		return "", err
	}
	sec, err := s.Get(sp.Name)
	if err != nil {
		t.Fatalf("Get() after a good Reload = %v", err)
	}
	return string(sec.Reveal()), nil
}

func TestFileSource(t *testing.T) {
	dir := t.TempDir()
	regular := writeFile(t, dir, "regular", []byte("sk_test_key\n"))
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// A symlink chain: link3 -> link2 -> link1 -> regular.
	for i, target := range []string{regular, filepath.Join(dir, "link1"), filepath.Join(dir, "link2")} {
		if err := os.Symlink(target, filepath.Join(dir, "link"+string(rune('1'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	// Kubernetes' secret volume layout: key -> ..data/key, ..data ->
	// a timestamped directory.
	ts := filepath.Join(dir, "k8s", "..2026_01_01_00_00_00.1")
	if err := os.MkdirAll(ts, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, ts, "api-key", []byte("k8s-value"))
	if err := os.Symlink(filepath.Base(ts), filepath.Join(dir, "k8s", "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "api-key"), filepath.Join(dir, "k8s", "api-key")); err != nil {
		t.Fatal(err)
	}
	mustSymlink := func(target, name string) string {
		p := filepath.Join(dir, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		path    string
		want    string
		wantErr error
	}{
		{"regular file, newline trimmed", regular, "sk_test_key", nil},
		{"only one newline trimmed", writeFile(t, dir, "two-newlines", []byte("v\n\n")), "", ErrInvalid},
		{"crlf trimmed", writeFile(t, dir, "crlf", []byte("v\r\n")), "v", nil},
		{"no newline", writeFile(t, dir, "bare", []byte("v")), "v", nil},
		{"symlink chain", filepath.Join(dir, "link3"), "sk_test_key", nil},
		{"kubernetes secret volume", filepath.Join(dir, "k8s", "api-key"), "k8s-value", nil},
		{"empty file", writeFile(t, dir, "empty", nil), "", ErrEmpty},
		{"only a newline", writeFile(t, dir, "newline", []byte("\n")), "", ErrEmpty},
		{"missing", filepath.Join(dir, "missing"), "", ErrRead},
		{"dangling symlink", mustSymlink(filepath.Join(dir, "nowhere"), "dangling"), "", ErrRead},
		{"directory", dir, "", ErrNotRegular},
		{"fifo", fifo, "", ErrNotRegular},
		{"symlink to fifo", mustSymlink(fifo, "to-fifo"), "", ErrNotRegular},
		{"socket", sock, "", ErrNotRegular},
		{"character device", "/dev/null", "", ErrNotRegular},
		{"too large", writeFile(t, dir, "large", []byte(strings.Repeat("a", 1025))), "", ErrTooLarge},
		{"at the bound", writeFile(t, dir, "bound", []byte(strings.Repeat("a", 1024))), strings.Repeat("a", 1024), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadOne(t, Spec{Name: "cred", Source: File{Path: tt.path}}, Options{MaxValueBytes: 1024})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Reload() = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), "credentials: cred (file): ") {
					t.Errorf("Reload() = %q, want it to name the credential and source kind", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Reload() = %v", err)
			}
			if got != tt.want {
				t.Errorf("value = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestFileFIFORefusedPromptly opens a FIFO that has no writer: a
// blocking open would hang the reload forever.
func TestFileFIFORefusedPromptly(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		// Past the Stat, straight to the open: the race a swap of the
		// path between the two would win.
		_, _, err := File{Path: fifo}.openAndRead(&loader{maxBytes: 1024})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrNotRegular) {
			t.Errorf("read = %v, want ErrNotRegular", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reading a FIFO without a writer blocked")
	}
}

func TestEnvSource(t *testing.T) {
	env := envOf(map[string]string{"ACME_KEY": "sk_live_x", "EMPTY": "", "LARGE": strings.Repeat("a", 2000)})
	tests := []struct {
		name    string
		v       string
		want    string
		wantErr error
	}{
		{"set", "ACME_KEY", "sk_live_x", nil},
		{"unset", "MISSING", "", ErrEmpty},
		{"empty", "EMPTY", "", ErrEmpty},
		{"too large", "LARGE", "", ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadOne(t, Spec{Name: "cred", Source: Env{Var: tt.v}}, Options{Getenv: env, MaxValueBytes: 1024})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), "credentials: cred (env): ") {
					t.Fatalf("Reload() = %v, want %v naming the credential", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Reload() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
