package fileread

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testCtx bounds each call: a read that blocks ends as CodeCanceled, which
// no case expects, so a hang fails the test instead of wedging it.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
}

// configMap lays out dir as Kubernetes mounts a ConfigMap: name is a
// symlink to ..data/name, ..data a symlink to the timestamped directory
// that holds the regular file.
func configMap(t *testing.T, dir, name, content string) string {
	t.Helper()
	write(t, filepath.Join(dir, "..2026_12_07_10_00_00.123456789", name), content)
	symlink(t, "..2026_12_07_10_00_00.123456789", filepath.Join(dir, "..data"))
	symlink(t, filepath.Join("..data", name), filepath.Join(dir, name))
	return filepath.Join(dir, name)
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		setup   func(t *testing.T) string // returns the path to read
		limit   int64
		want    string
		wantErr error
	}{
		{"regular file", func(t *testing.T) string {
			p := filepath.Join(dir, "plain")
			write(t, p, "hello")
			return p
		}, 10, "hello", nil},
		{"empty file", func(t *testing.T) string {
			p := filepath.Join(dir, "empty")
			write(t, p, "")
			return p
		}, 10, "", nil},
		{"exactly the limit", func(t *testing.T) string {
			p := filepath.Join(dir, "ten")
			write(t, p, "0123456789")
			return p
		}, 10, "0123456789", nil},
		{"one past the limit", func(t *testing.T) string {
			p := filepath.Join(dir, "eleven")
			write(t, p, "0123456789a")
			return p
		}, 10, "", ErrTooLarge},
		{"larger than a chunk", func(t *testing.T) string {
			p := filepath.Join(dir, "big")
			write(t, p, strings.Repeat("x", 3*chunk+7))
			return p
		}, 4 * chunk, strings.Repeat("x", 3*chunk+7), nil},
		{"symlink to a regular file", func(t *testing.T) string {
			p := filepath.Join(dir, "link")
			write(t, filepath.Join(dir, "target"), "via link")
			symlink(t, "target", p)
			return p
		}, 10, "via link", nil},
		{"configmap symlink chain", func(t *testing.T) string {
			return configMap(t, filepath.Join(dir, "cm"), "allowlist.yaml", "version: 1\n")
		}, 100, "version: 1\n", nil},
		{"fifo", func(t *testing.T) string {
			p := filepath.Join(dir, "fifo")
			mkfifo(t, p)
			return p
		}, 10, "", ErrNotRegular},
		{"symlink to a fifo", func(t *testing.T) string {
			mkfifo(t, filepath.Join(dir, "fifo2"))
			p := filepath.Join(dir, "fifolink")
			symlink(t, "fifo2", p)
			return p
		}, 10, "", ErrNotRegular},
		{"configmap chain to a fifo", func(t *testing.T) string {
			d := filepath.Join(dir, "cmfifo")
			if err := os.MkdirAll(filepath.Join(d, "..v1"), 0o700); err != nil {
				t.Fatal(err)
			}
			mkfifo(t, filepath.Join(d, "..v1", "a.sig"))
			symlink(t, "..v1", filepath.Join(d, "..data"))
			symlink(t, filepath.Join("..data", "a.sig"), filepath.Join(d, "a.sig"))
			return filepath.Join(d, "a.sig")
		}, 10, "", ErrNotRegular},
		{"symlink to /dev/zero", func(t *testing.T) string {
			p := filepath.Join(dir, "zero")
			symlink(t, "/dev/zero", p)
			return p
		}, 10, "", ErrNotRegular},
		{"directory", func(t *testing.T) string {
			p := filepath.Join(dir, "adir")
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
			return p
		}, 10, "", ErrNotRegular},
		{"unix socket", func(t *testing.T) string {
			// Socket paths are short: use a fresh short directory.
			sd, err := os.MkdirTemp("", "fr")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(sd) })
			p := filepath.Join(sd, "s")
			l, err := net.Listen("unix", p)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return p
		}, 10, "", ErrNotRegular},
		{"missing", func(t *testing.T) string { return filepath.Join(dir, "nope") }, 10, "", fs.ErrNotExist},
		{"dangling symlink", func(t *testing.T) string {
			p := filepath.Join(dir, "dangling")
			symlink(t, "nowhere", p)
			return p
		}, 10, "", fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.setup(t)
			got, err := Read(testCtx(t), p, tt.limit)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || got != nil {
					t.Fatalf("Read(%s) = %d bytes, %v; want %v", tt.name, len(got), err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Read(%s) = %v", tt.name, err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("Read(%s) mismatch (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

func TestReadErrorNamesTheType(t *testing.T) {
	p := filepath.Join(t.TempDir(), "allowlist.yaml")
	mkfifo(t, p)
	_, err := Read(testCtx(t), p, 10)
	var fe *Error
	if !errors.As(err, &fe) || fe.Code != CodeNotRegular || fe.Type&fs.ModeNamedPipe == 0 || fe.Path != p {
		t.Fatalf("Read(fifo) = %#v, want *Error not_regular_file of a named pipe at %s", err, p)
	}
	if want := "fileread: read " + p + ": not_regular_file (named pipe)"; err.Error() != want {
		t.Errorf("Read(fifo).Error() = %q, want %q", err, want)
	}
}

func TestReadCanceled(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	write(t, p, "x")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Read(ctx, p, 10); !errors.Is(err, ErrCanceled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Read(canceled ctx) = %v, want ErrCanceled wrapping context.Canceled", err)
	}
	if _, err := ReadDir(ctx, filepath.Dir(p), 10); !errors.Is(err, ErrCanceled) {
		t.Fatalf("ReadDir(canceled ctx) = %v, want ErrCanceled", err)
	}
}

// TestOpenCheckedSwapped is the race between stat and open, made
// deterministic: the stat saw one file, the path now names another. A
// FIFO swapped in must not block the open, and must be refused.
func TestOpenCheckedSwapped(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	other := filepath.Join(dir, "other")
	fifo := filepath.Join(dir, "fifo")
	write(t, regular, "a")
	write(t, other, "b")
	mkfifo(t, fifo)
	before, err := os.Stat(regular)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		want       error
	}{
		{"same file", regular, nil},
		{"another regular file", other, ErrChanged},
		{"a fifo", fifo, ErrNotRegular},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A blocked open must fail the test by the context's deadline,
			// not hang it.
			type result struct {
				f   *os.File
				err error
			}
			done := make(chan result, 1)
			go func() {
				f, err := openChecked(tt.path, before, false)
				done <- result{f, err}
			}()
			var err error
			select {
			case r := <-done:
				if r.f != nil {
					r.f.Close()
				}
				err = r.err
			case <-testCtx(t).Done():
				t.Fatalf("openChecked(%s) blocked", tt.name)
			}
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("openChecked(%s) = %v, want %v", tt.name, err, tt.want)
			}
		})
	}
}

func TestReadDir(t *testing.T) {
	dir := t.TempDir()
	sigs := filepath.Join(dir, "sigs")
	for _, n := range []string{"b.sig", "a.sig", "c.sig"} {
		write(t, filepath.Join(sigs, n), n)
	}
	symlink(t, "sigs", filepath.Join(dir, "sigslink"))
	mkfifo(t, filepath.Join(dir, "fifo"))
	write(t, filepath.Join(dir, "file"), "x")
	tests := []struct {
		name    string
		path    string
		limit   int
		want    []string
		wantErr error
	}{
		{"directory, sorted", sigs, 3, []string{"a.sig", "b.sig", "c.sig"}, nil},
		{"symlink to a directory", filepath.Join(dir, "sigslink"), 3, []string{"a.sig", "b.sig", "c.sig"}, nil},
		{"too many entries", sigs, 2, nil, ErrTooMany},
		{"fifo", filepath.Join(dir, "fifo"), 3, nil, ErrNotDir},
		{"regular file", filepath.Join(dir, "file"), 3, nil, ErrNotDir},
		{"missing", filepath.Join(dir, "nope"), 3, nil, fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, err := ReadDir(testCtx(t), tt.path, tt.limit)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ReadDir(%s) = %v, want %v", tt.name, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadDir(%s) = %v", tt.name, err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if diff := cmp.Diff(tt.want, names); diff != "" {
				t.Errorf("ReadDir(%s) mismatch (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}
