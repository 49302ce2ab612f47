package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// FileSink appends records to a file, one JSON object per line. Each Write
// (a group of records) is one write(2) on a file opened with O_APPEND
// followed by fsync(2), and returns only after fsync succeeded: that is
// what "durable" means here.
// There is no option to skip the fsync; an intent record that a crash can
// erase would let a card leave without a trace. Only Log.AppendWritten,
// which refuses intents, lets a group's fsync come later (writeUnsynced):
// with the next group's, or after the Log's SyncDelay.
//
// On Linux the sync is fdatasync(2), which makes the data durable together
// with the metadata needed to read it back (the file's new size), and
// leaves out only the timestamps. The sink also allocates the file's
// blocks ahead of the writes, in segments of preallocSegment bytes beyond
// its end (fallocate(2) with FALLOC_FL_KEEP_SIZE): the file's size, and so
// its contents, stay exactly the records, and a sync need not allocate
// blocks. A file holds up to one segment of allocated, unused space after
// its end (du shows it; ls does not). Where the file system cannot
// preallocate, the sink writes without it.
//
// After a failed write or fsync the sink refuses every later write (Err
// reports why) until it is reopened: a failed write may have left part of a
// line, and after a failed fsync Linux may have dropped the dirty pages and
// cleared the error, so a later fsync that succeeds proves nothing about
// earlier data.
//
// Several processes may append to one file (each keeps its own chain); a
// single append-mode write of a line is not interleaved with another on a
// local file system. Do not rotate the file under a running writer with
// copy-and-truncate; rename it and reopen (restart), and verify rotated
// files together, in order.
type FileSink struct {
	path string

	mu  sync.Mutex
	f   appendFile
	err error // sticky; set after a failed write, fsync or Close
	buf []byte
	// end is the file offset just after this sink's last write (its size
	// when opened, before any). Other processes appending to the file can
	// only put later records beyond it, so a record this sink writes next
	// starts at end or after: a reader replaying the records from some
	// point on (see Log's mirror) starts there.
	end int64
	// reserved is the offset up to which this sink allocated blocks ahead
	// of its writes; noPrealloc is set once the file system refused.
	reserved   int64
	noPrealloc bool
	// dirty is set while lines written by writeUnsynced (or a write whose
	// fsync has not run yet) are not known to be durable.
	dirty bool
	// answeredChain and answeredSeq name the first record writeUnsynced
	// left unsynced since the last fsync (answeredSeq 0: none). Its append
	// was answered before it was durable, so a failure that stops the sink
	// before an fsync covers it must say that it, and every record after
	// it, may be lost: the failed group's own range is not all.
	answeredChain string
	answeredSeq   uint64
	// unsyncedSince is when that record was written (monotonic clock).
	unsyncedSince time.Time
	// tree, when set (OpenFileSinkTree), gets every line written.
	tree *Tree
	// torn is set when the file's last line was incomplete when opened
	// (see OpenFileSink); New logs it.
	torn bool
}

// preallocSegment is how far ahead of the file's end the sink allocates
// blocks: about 80,000 records of 800 bytes, so one fallocate(2) for
// tens of thousands of syncs.
const preallocSegment = 64 << 20

// preallocator is the optional part of an appendFile that allocates blocks
// beyond the file's end without changing its size (syncfile_linux.go).
type preallocator interface {
	preallocate(off, n int64) error
}

// appendFile is what FileSink uses of an *os.File once it is open. Tests
// substitute a file whose fsync fails, a fault no real file system here can
// be made to produce on demand.
type appendFile interface {
	Write(p []byte) (int, error)
	Sync() error
	Seek(offset int64, whence int) (int64, error)
	Close() error
}

// errClosed is the sticky error after Close.
var errClosed = errors.New("closed")

// OpenFileSink opens (creating with mode 0600 if needed) the file at path
// for appending. If the file's last line is incomplete (a crash mid-write),
// it is ended with a newline so that the next record starts on its own
// line; Verify then reports the broken line as malformed, which is the
// truth.
func OpenFileSink(path string) (*FileSink, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open file sink: %w", err)
	}
	torn, err := prepare(f, path)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("audit: open file sink %s: %w", path, err)
	}
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("audit: open file sink %s: %w", path, err)
	}
	return &FileSink{path: path, f: syncFile{f}, end: end, torn: torn}, nil
}

// prepare checks the file, repairs an incomplete last line (reporting it
// as torn) and makes the file's directory entry durable.
func prepare(f *os.File, path string) (torn bool, err error) {
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	if !fi.Mode().IsRegular() {
		return false, errors.New("not a regular file")
	}
	if size := fi.Size(); size > 0 {
		var last [1]byte
		if _, err := f.ReadAt(last[:], size-1); err != nil && !errors.Is(err, io.EOF) {
			return false, fmt.Errorf("read last byte: %w", err)
		}
		if last[0] != '\n' {
			if _, err := f.Write([]byte{'\n'}); err != nil {
				return false, fmt.Errorf("end incomplete last line: %w", err)
			}
			torn = true
		}
	}
	if err := f.Sync(); err != nil {
		return false, fmt.Errorf("fsync: %w", err)
	}
	// A file just created is lost in a crash unless its directory entry is
	// durable too.
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return false, fmt.Errorf("open directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return false, fmt.Errorf("fsync directory: %w", err)
	}
	return torn, nil
}

// Write appends each line and a newline, then fsyncs once. ctx is not consulted:
// neither write(2) nor fsync(2) can be abandoned half-way, and returning
// early would report a record as not written that may still become
// durable. The sync also makes durable every group written earlier by
// writeUnsynced.
func (s *FileSink) Write(_ context.Context, batch []Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write(batch, true)
}

// writeUnsynced appends the group like Write and, unless the sink keeps a
// Merkle tree, returns without the fsync: the lines are in the kernel's
// page cache (a crash of this process keeps them, a crash of the machine
// may not) until the next Write or syncPending. It reports whether the
// sync was left out. A sink with a tree syncs at once, since a checkpoint
// must never cover a line that a machine crash could take back.
func (s *FileSink) writeUnsynced(batch []Entry) (deferred bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.write(batch, s.tree != nil); err != nil {
		return false, err
	}
	if s.tree == nil && s.answeredSeq == 0 && len(batch) > 0 {
		s.answeredChain, s.answeredSeq = batch[0].Rec.Chain, batch[0].Rec.Seq
		s.unsyncedSince = time.Now()
	}
	return s.tree == nil, nil
}

// syncPending fsyncs what writeUnsynced left unsynced, if anything, once
// the oldest of it was written maxAge ago; before that it returns how long
// is left (an fsync of a later group may cover it first). After Close,
// which syncs first, it has nothing to do.
func (s *FileSink) syncPending(maxAge time.Duration) (time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dirty || errors.Is(s.err, errClosed) {
		return 0, nil
	}
	if s.err != nil {
		return 0, fmt.Errorf("audit: file sink %s: %w", s.path, s.err)
	}
	if !s.unsyncedSince.IsZero() {
		if age := time.Since(s.unsyncedSince); age < maxAge {
			return maxAge - age, nil
		}
	}
	return 0, s.sync()
}

// write appends the group, then fsyncs if sync is set. Called with mu held.
func (s *FileSink) write(batch []Entry, sync bool) error {
	if s.err != nil {
		return fmt.Errorf("audit: file sink %s: %w", s.path, s.err)
	}
	s.buf = s.buf[:0]
	prev := s.end
	for _, e := range batch {
		s.buf = append(append(s.buf, e.Line...), '\n')
	}
	s.reserve(int64(len(s.buf)))
	if _, err := s.f.Write(s.buf); err != nil {
		s.err = fmt.Errorf("write: %w", err)
		s.tree.fail()
		// The sink stops here, so no later fsync would cover the records
		// writeUnsynced left unsynced, whose appends were answered: sync
		// them now. The failed write does not make them suspect.
		if s.dirty {
			if serr := s.f.Sync(); serr != nil {
				s.err = fmt.Errorf("fsync after a failed write: %s: %v: write: %w", s.lostAnswered(), serr, err)
			} else {
				s.dirty, s.answeredSeq, s.unsyncedSince = false, 0, time.Time{}
			}
		}
		return fmt.Errorf("audit: file sink %s: %w", s.path, s.err)
	}
	s.dirty = true
	if sync {
		if err := s.sync(); err != nil {
			return err
		}
	}
	if s.tree == nil {
		// With O_APPEND the group landed at the file's end, at or after
		// s.end, so s.end plus its length is still at or before any
		// later record, which is all end promises (a replay skips a
		// partial first line). Asking the file for its offset would cost
		// a system call per group on the forward path.
		s.end += int64(len(s.buf))
		return nil
	}
	// The tree must know whether another process appended between this
	// sink's writes: ask the file where the group ended. Not knowing it
	// is no reason to fail a durable write: the old end stays, which is
	// still at or before any later record, and the tree is told.
	if end, err := s.f.Seek(0, io.SeekCurrent); err == nil {
		s.end = end
	}
	s.tree.add(batch, s.end-prev == int64(len(s.buf)))
	return nil
}

// sync fsyncs the file. Called with mu held. A failed fsync stops the
// sink: Linux may have dropped the dirty pages and cleared the error.
func (s *FileSink) sync() error {
	if err := s.f.Sync(); err != nil {
		s.err = fmt.Errorf("fsync: %w", err)
		if s.answeredSeq != 0 {
			s.err = fmt.Errorf("fsync: %s: %w", s.lostAnswered(), err)
		}
		s.tree.fail()
		return fmt.Errorf("audit: file sink %s: %w", s.path, s.err)
	}
	s.dirty, s.answeredSeq, s.unsyncedSince = false, 0, time.Time{}
	return nil
}

// lostAnswered says, after a failed fsync, which answered records it may
// have lost (see answeredSeq). Called with mu held.
func (s *FileSink) lostAnswered() string {
	return fmt.Sprintf("records from seq %d of chain %s, already answered, may be lost", s.answeredSeq, s.answeredChain)
}

// reserve makes sure blocks are allocated for the next n bytes, a segment
// at a time. It is only an optimization: when the file system cannot (or
// is full, which the write itself then reports), the sink goes on without.
func (s *FileSink) reserve(n int64) {
	p, ok := s.f.(preallocator)
	if !ok || s.noPrealloc || s.end+n <= s.reserved {
		return
	}
	if err := p.preallocate(s.end, preallocSegment); err != nil {
		s.noPrealloc = true
		return
	}
	s.reserved = s.end + preallocSegment
}

// offset returns the file offset after this sink's last write: every
// record the sink writes from now on starts at or after it.
func (s *FileSink) offset() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.end
}

// Err returns the error that stopped the sink, or nil while it works. Use
// it in a readiness check.
func (s *FileSink) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return fmt.Errorf("audit: file sink %s: %w", s.path, s.err)
	}
	return nil
}

// Close closes the file. Writes after Close fail.
func (s *FileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if errors.Is(s.err, errClosed) {
		return nil
	}
	// Lines writeUnsynced left unsynced become durable before the file
	// closes; a failed sync is reported, and the file closed all the same.
	var syncErr error
	if s.dirty && s.err == nil {
		syncErr = s.sync()
	}
	s.err = errClosed
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("audit: close file sink %s: %w", s.path, err)
	}
	return syncErr
}
