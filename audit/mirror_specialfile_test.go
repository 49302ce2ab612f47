package audit

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cardgate/cardgate/internal/fileread"
)

// A FIFO planted at a lag marker's name must stop the start with a
// refusal at once; a plain read of it would wait for a writer forever.
func TestReadMarkersRefusesSpecialFiles(t *testing.T) {
	primary := filepath.Join(t.TempDir(), "audit.log")
	marker := markerPath(primary, "0123456789abcdef01234567")
	if err := syscall.Mkfifo(marker, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := readMarkers(primary)
		done <- err
	}()
	select {
	case err := <-done:
		var fe *fileread.Error
		if !errors.As(err, &fe) {
			t.Fatalf("readMarkers on a FIFO marker = %v, want a *fileread.Error", err)
		}
	case <-time.After(10 * time.Second):
		// Unblock the read so the test process can end.
		if f, err := os.OpenFile(marker, os.O_WRONLY, 0); err == nil {
			f.Close()
		}
		t.Fatal("readMarkers hung on a FIFO marker")
	}
}

// An oversized marker is refused rather than read whole.
func TestReadMarkersRefusesOversized(t *testing.T) {
	primary := filepath.Join(t.TempDir(), "audit.log")
	marker := markerPath(primary, "0123456789abcdef01234567")
	if err := os.WriteFile(marker, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readMarkers(primary); err == nil {
		t.Fatal("readMarkers accepted a 1 MiB marker")
	}
}
