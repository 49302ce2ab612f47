// Package fileread reads the gateway's trust files (the allowlist, its
// signatures, allowed_signers; and, for anyone who adopts it, config, key
// rings and CRLs) so that no path can hang or flood the reader.
//
// A path is stat'ed first, following symlinks, and refused unless it is a
// regular file (Read) or a directory (ReadDir): a FIFO, socket or device
// named like a trust file would otherwise block open(2) or read(2) forever,
// or never end. It is then opened with O_NONBLOCK, so that a FIFO swapped
// in after the stat cannot block the open either, and the opened
// descriptor is fstat'ed and must still be a regular file (or directory)
// and the same one the stat saw. Reads stop at a size (or entry) limit and
// return as soon as the context ends.
//
// Symlinks are followed on purpose: Kubernetes mounts a ConfigMap as
// symlinks (file -> ..data/file, ..data -> ..<timestamp>/) to regular files,
// and those must keep working.
//
// This package must never:
//   - open a path it has not stat'ed as a regular file or directory, or
//     open one without O_NONBLOCK;
//   - return more than the caller's limit, or block past the caller's
//     context;
//   - put file contents in an error: errors name the path, a stable Code
//     and the file type, nothing read from the file.
package fileread
