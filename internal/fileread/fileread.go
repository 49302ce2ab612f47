package fileread

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"syscall"
)

// Code says why Read or ReadDir refused a path. Codes are stable strings
// for logs, metrics and tests.
type Code string

// Codes.
const (
	CodeNotRegular Code = "not_regular_file" // a FIFO, socket, device or directory where a file was expected
	CodeNotDir     Code = "not_directory"    // anything but a directory where one was expected
	CodeChanged    Code = "changed"          // the path named another file between stat and open
	CodeTooLarge   Code = "too_large"        // more bytes than the limit
	CodeTooMany    Code = "too_many_entries" // more directory entries than the limit
	CodeCanceled   Code = "canceled"         // the context ended before the read did
)

// Error is every refusal of this package. OS errors (the path does not
// exist, permission denied) are returned as they are, so that
// errors.Is(err, fs.ErrNotExist) keeps working.
type Error struct {
	Op   string      // "read" or "readdir"
	Path string      // as the caller gave it
	Code Code        // why
	Type fs.FileMode // for CodeNotRegular and CodeNotDir: the type found (fs.ModeType bits)
	Err  error       // for CodeCanceled: the context's error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("fileread: %s %s: %s", e.Op, e.Path, e.Code)
	switch e.Code {
	case CodeNotRegular, CodeNotDir:
		s += " (" + TypeName(e.Type) + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches the sentinel of the same Code, so that
// errors.Is(err, fileread.ErrNotRegular) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Path == "" && t.Op == "" && t.Code == e.Code
}

// Sentinels for errors.Is.
var (
	ErrNotRegular = &Error{Code: CodeNotRegular}
	ErrNotDir     = &Error{Code: CodeNotDir}
	ErrChanged    = &Error{Code: CodeChanged}
	ErrTooLarge   = &Error{Code: CodeTooLarge}
	ErrTooMany    = &Error{Code: CodeTooMany}
	ErrCanceled   = &Error{Code: CodeCanceled}
)

// TypeName names a file type for an error, e.g. "named pipe".
func TypeName(m fs.FileMode) string {
	switch t := m & fs.ModeType; {
	case t == 0:
		return "regular file"
	case t&fs.ModeDir != 0:
		return "directory"
	case t&fs.ModeNamedPipe != 0:
		return "named pipe"
	case t&fs.ModeSocket != 0:
		return "socket"
	case t&fs.ModeCharDevice != 0:
		return "character device"
	case t&fs.ModeDevice != 0:
		return "block device"
	case t&fs.ModeSymlink != 0:
		return "symlink"
	default:
		return "irregular file"
	}
}

// chunk is the most one read(2) asks for, so that a large file is read in
// steps that each check the context.
const chunk = 64 << 10

// Read returns the contents of the regular file at path (symlinks
// followed), at most limit bytes: a larger file is refused, not cut.
// Anything but a regular file is refused before it is opened. Read returns
// when ctx ends even if the file system does not answer (a hung network
// mount): the read then finishes, or not, in the background, and its
// result is dropped. Refusals are *Error; OS errors come back unchanged.
func Read(ctx context.Context, path string, limit int64) ([]byte, error) {
	type result struct {
		b   []byte
		err error
	}
	if err := ctx.Err(); err != nil {
		return nil, &Error{Op: "read", Path: path, Code: CodeCanceled, Err: err}
	}
	done := make(chan result, 1)
	go func() {
		b, err := read(ctx, path, limit)
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		return r.b, r.err
	case <-ctx.Done():
		return nil, &Error{Op: "read", Path: path, Code: CodeCanceled, Err: ctx.Err()}
	}
}

func read(ctx context.Context, path string, limit int64) ([]byte, error) {
	f, err := open(path, false)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > limit {
		return nil, &Error{Op: "read", Path: path, Code: CodeTooLarge}
	}
	// The size is a hint: the file may grow while it is read.
	b := make([]byte, 0, fi.Size()+1)
	for {
		if err := ctx.Err(); err != nil {
			return nil, &Error{Op: "read", Path: path, Code: CodeCanceled, Err: err}
		}
		if len(b) == cap(b) {
			b = slices.Grow(b, chunk)
		}
		// Never more than limit+1 bytes in memory: one past the limit is
		// enough to know the file is too large.
		want := min(cap(b)-len(b), chunk, int(limit+1-int64(len(b))))
		n, err := f.Read(b[len(b) : len(b)+want])
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			return nil, &Error{Op: "read", Path: path, Code: CodeTooLarge}
		}
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// ReadDir returns the entries of the directory at path (symlinks
// followed), sorted by name as os.ReadDir does, and refuses a directory of
// more than limit entries. It is cancellable like Read.
func ReadDir(ctx context.Context, path string, limit int) ([]fs.DirEntry, error) {
	type result struct {
		e   []fs.DirEntry
		err error
	}
	if err := ctx.Err(); err != nil {
		return nil, &Error{Op: "readdir", Path: path, Code: CodeCanceled, Err: err}
	}
	done := make(chan result, 1)
	go func() {
		e, err := readDir(ctx, path, limit)
		done <- result{e, err}
	}()
	select {
	case r := <-done:
		return r.e, r.err
	case <-ctx.Done():
		return nil, &Error{Op: "readdir", Path: path, Code: CodeCanceled, Err: ctx.Err()}
	}
}

func readDir(ctx context.Context, path string, limit int) ([]fs.DirEntry, error) {
	f, err := open(path, true)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var all []fs.DirEntry
	for {
		if err := ctx.Err(); err != nil {
			return nil, &Error{Op: "readdir", Path: path, Code: CodeCanceled, Err: err}
		}
		batch, err := f.ReadDir(256)
		all = append(all, batch...)
		if len(all) > limit {
			return nil, &Error{Op: "readdir", Path: path, Code: CodeTooMany}
		}
		if errors.Is(err, io.EOF) || (err == nil && len(batch) == 0) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(all, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return all, nil
}

// Open opens path for reading when it is a regular file (a symlink to one
// counts), without blocking: a FIFO or device is refused at once, as Read
// refuses it. It is for files too large to read whole (an audit log);
// the caller bounds its own reads. The file is in non-blocking mode,
// which makes no difference to a regular file.
func Open(path string) (*os.File, error) { return open(path, false) }

// open stats path, refuses the wrong type, and opens it with openChecked.
func open(path string, dir bool) (*os.File, error) {
	before, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := checkType(path, before.Mode(), dir); err != nil {
		return nil, err
	}
	return openChecked(path, before, dir)
}

// openChecked opens path without blocking and checks that the descriptor
// is of the right type and the file before describes (os.SameFile: same
// device and inode), so that a path swapped between the stat and the open
// is refused.
func openChecked(path string, before fs.FileInfo, dir bool) (*os.File, error) {
	flags := os.O_RDONLY | syscall.O_NONBLOCK | syscall.O_NOCTTY | syscall.O_CLOEXEC
	if dir {
		flags |= syscall.O_DIRECTORY
	}
	// O_NONBLOCK: if a FIFO replaced the file since the stat, open(2)
	// returns at once instead of waiting for a writer; the fstat below
	// then refuses it.
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		return nil, err
	}
	after, err := f.Stat()
	if err == nil {
		err = checkType(path, after.Mode(), dir)
	}
	if err == nil && !os.SameFile(before, after) {
		err = &Error{Op: opName(dir), Path: path, Code: CodeChanged}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func checkType(path string, m fs.FileMode, dir bool) error {
	switch {
	case dir && !m.IsDir():
		return &Error{Op: opName(dir), Path: path, Code: CodeNotDir, Type: m.Type()}
	case !dir && !m.IsRegular():
		return &Error{Op: opName(dir), Path: path, Code: CodeNotRegular, Type: m.Type()}
	}
	return nil
}

func opName(dir bool) string {
	if dir {
		return "readdir"
	}
	return "read"
}
