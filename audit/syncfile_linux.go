package audit

import (
	"os"
	"syscall"
)

// syncFile is the sink's file: Sync is fdatasync(2), and it can allocate
// blocks beyond its end (see FileSink).
type syncFile struct{ *os.File }

// Sync flushes the file's data and the metadata needed to read it back,
// the size included; see fdatasync(2).
func (f syncFile) Sync() error {
	return f.control("fdatasync", func(fd int) error { return syscall.Fdatasync(fd) })
}

// preallocate allocates blocks for [off, off+n) without changing the
// file's size (FALLOC_FL_KEEP_SIZE).
func (f syncFile) preallocate(off, n int64) error {
	const keepSize = 0x1 // FALLOC_FL_KEEP_SIZE
	return f.control("fallocate", func(fd int) error { return syscall.Fallocate(fd, keepSize, off, n) })
}

// control runs op on the descriptor, retrying on EINTR as os.File does.
func (f syncFile) control(name string, op func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) {
		for {
			if opErr = op(int(fd)); opErr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if opErr != nil {
		return &os.PathError{Op: name, Path: f.Name(), Err: opErr}
	}
	return nil
}
