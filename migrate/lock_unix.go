//go:build unix

package migrate

import (
	"errors"
	"os"
	"syscall"
)

// lockFile takes an exclusive lock on f, without waiting: a second import
// on the same mapping file is refused at once. The lock ends when f is
// closed (or the process dies).
func lockFile(f *os.File) error {
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return errors.New("another import holds it")
		}
		return err
	}
	return nil
}
