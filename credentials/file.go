package credentials

import (
	"context"
	"io"
	"os"
	"syscall"

	"github.com/cardgate/cardgate/internal/fileread"
)

// read opens the file without blocking (a FIFO opens at once and is then
// refused, instead of hanging the reload until a writer appears) and
// reads at most MaxValueBytes.
func (f File) read(_ context.Context, l *loader) ([]byte, int, error) {
	// Stat first, following symlinks, so a device is refused before it
	// is opened at all; the Stat of the open file below is the one that
	// counts, since the path can change in between.
	if fi, err := os.Stat(f.Path); err != nil {
		return nil, 0, fail(CodeRead, err, "")
	} else if !fi.Mode().IsRegular() {
		return nil, 0, fail(CodeNotRegular, nil, "%s is a %s", f.Path, fileread.TypeName(fi.Mode()))
	}
	return f.openAndRead(l)
}

func (f File) openAndRead(l *loader) ([]byte, int, error) {
	fd, err := os.OpenFile(f.Path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, 0, fail(CodeRead, err, "")
	}
	defer fd.Close()
	fi, err := fd.Stat()
	if err != nil {
		return nil, 0, fail(CodeRead, err, "")
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, fail(CodeNotRegular, nil, "%s is a %s", f.Path, fileread.TypeName(fi.Mode()))
	}
	if fi.Size() > l.maxBytes {
		return nil, 0, fail(CodeTooLarge, nil, "%s is %d bytes, more than %d", f.Path, fi.Size(), l.maxBytes)
	}
	b := make([]byte, 0, fi.Size()+1)
	for {
		n, rerr := fd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			clear(b)
			return nil, 0, fail(CodeRead, rerr, "")
		}
		if int64(len(b)) > l.maxBytes {
			clear(b)
			return nil, 0, fail(CodeTooLarge, nil, "%s grew past %d bytes while it was read", f.Path, l.maxBytes)
		}
		if len(b) == cap(b) {
			// The file grew since Stat: grow by hand, so that no old
			// buffer with the value in it is left behind uncleared.
			nb := make([]byte, len(b), 2*cap(b))
			copy(nb, b)
			clear(b)
			b = nb
		}
	}
	return trimNewline(b), 0, nil
}

// trimNewline removes one trailing "\n" or "\r\n": editors and
// `echo >` add one, and it is never part of a credential.
func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}
