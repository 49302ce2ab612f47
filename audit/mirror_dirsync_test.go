package audit

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// writeMarker must fsync the marker's directory after the marker itself,
// or a power cut can lose the marker's entry and with it the record that
// the mirror lags. (mirror.go's writeMarker; the mutant that returns
// before the directory fsync lived until this test.)
func TestWriteMarkerSyncsItsDirectory(t *testing.T) {
	dir := t.TempDir()
	primary := filepath.Join(dir, "audit.log")
	var synced []string
	orig := syncDir
	syncDir = func(d *os.File) error {
		synced = append(synced, d.Name())
		return orig(d)
	}
	t.Cleanup(func() { syncDir = orig })

	if err := writeMarker(primary, &lag{chain: "0123456789abcdef01234567", from: 10, start: 2}); err != nil {
		t.Fatalf("writeMarker: %v", err)
	}
	if !slices.Contains(synced, dir) {
		t.Fatalf("directories synced = %q, want %q among them", synced, dir)
	}
}
