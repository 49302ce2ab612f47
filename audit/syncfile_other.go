//go:build !linux

package audit

import "os"

// syncFile is the sink's file: Sync is the file's fsync(2), and nothing is
// preallocated.
type syncFile struct{ *os.File }
