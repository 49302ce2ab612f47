package audit

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Tree is the Merkle tree (RFC 6962 hashing) whose leaves are the lines of
// one audit file, in file order, each without its newline: leaf i is line
// i+1, whatever it holds. The file stays the only store of the leaves; the
// Tree keeps only the compact range of the file (the roots of at most 64
// perfect subtrees), so its memory does not grow with the log, and an
// append costs one leaf hash and, on average, one node hash per record.
// Proofs are made later, from the file (see Prove and ProveConsistency).
//
// A Tree is only as good as its view of the file: it counts the lines this
// process wrote. When anything else appends to the file, or a write fails
// part-way, the Tree stops (Head returns ErrTreeStopped) rather than sign a
// root that is not the file's.
type Tree struct {
	mu   sync.Mutex
	rng  *compact.Range
	stop error // why the tree no longer matches the file; nil while it does
	// marks holds the roots at the sizes OpenFileSinkTree was asked for.
	marks map[uint64][32]byte
	buf   []byte // scratch for leaf hashes
}

// ErrTreeStopped is wrapped by Head's error once the tree no longer
// matches its file.
var ErrTreeStopped = errors.New("audit: merkle tree stopped")

// rangeFactory builds compact ranges with RFC 6962 node hashing.
var rangeFactory = &compact.RangeFactory{Hash: hashChildren}

// hashChildren is rfc6962.DefaultHasher.HashChildren, sha256(0x01 ‖ l ‖
// r), with one allocation instead of four: a proof over a large log hashes
// every node once (TestHashesMatchRFC6962 holds the two equal).
func hashChildren(l, r []byte) []byte {
	var b [1 + 2*sha256.Size]byte
	b[0] = rfc6962.RFC6962NodeHashPrefix
	copy(b[1:], l)
	copy(b[1+sha256.Size:], r)
	h := sha256.Sum256(b[:])
	return h[:]
}

// LeafHash returns the RFC 6962 leaf hash of a stored line (no newline):
// sha256(0x00 ‖ line).
func LeafHash(line []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{rfc6962.RFC6962LeafHashPrefix})
	h.Write(line)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// OpenFileSinkTree is OpenFileSink that also keeps the file's Merkle tree:
// it reads the whole file once (every line becomes a leaf) and, from then
// on, adds each line the sink writes. The reading is the cost of opening:
// about one sha256 per line, with memory independent of the file's size.
// The roots at the sizes listed in marks are kept (RootAt): the size of the
// last checkpoint published, which the file must still extend.
func OpenFileSinkTree(path string, marks ...uint64) (*FileSink, *Tree, error) {
	s, err := OpenFileSink(path)
	if err != nil {
		return nil, nil, err
	}
	t := &Tree{rng: rangeFactory.NewEmptyRange(0), marks: map[uint64][32]byte{}}
	want := map[uint64]bool{}
	for _, m := range marks {
		want[m] = true
	}
	t.mark(want)
	f, err := os.Open(path)
	if err != nil {
		_ = s.Close()
		return nil, nil, fmt.Errorf("audit: open file sink %s: read for the merkle tree: %w", path, err)
	}
	defer f.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	err = eachLine(io.LimitReader(f, s.end), func(line []byte) error {
		h := LeafHash(line)
		if err := t.rng.Append(h[:], nil); err != nil {
			return err
		}
		t.mark(want)
		return nil
	})
	if err != nil {
		_ = s.f.Close()
		return nil, nil, fmt.Errorf("audit: open file sink %s: read for the merkle tree: %w", path, err)
	}
	s.tree = t
	return s, t, nil
}

// eachLine calls fn with every newline-terminated line of r, without the
// newline, however long. A last piece without a newline is not a line: it
// is a write still in progress (or cut short), which no checkpoint covers.
// fn must not keep line.
func eachLine(r io.Reader, fn func(line []byte) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var long []byte
	for {
		b, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			if long != nil {
				b = append(long, b...)
				long = nil
			}
			if err := fn(b[:len(b)-1]); err != nil {
				return err
			}
		case errors.Is(err, bufio.ErrBufferFull):
			long = append(long, b...)
		case err == io.EOF:
			return nil
		default:
			return err
		}
	}
}

// mark keeps the root if the tree's size is one of want.
func (t *Tree) mark(want map[uint64]bool) {
	n := t.rng.End()
	if !want[n] {
		return
	}
	t.marks[n] = rootOf(t.rng)
}

// rootOf returns the root of r, which starts at 0.
func rootOf(r *compact.Range) [32]byte {
	var root [32]byte
	if r.End() == 0 {
		copy(root[:], rfc6962.DefaultHasher.EmptyRoot())
		return root
	}
	h, _ := r.GetRootHash(nil) // fails only for a range not starting at 0
	copy(root[:], h)
	return root
}

// RootAt returns the root of the file's first size lines, if size was one
// of the marks given to OpenFileSinkTree and the file held that many lines
// when opened.
func (t *Tree) RootAt(size uint64) ([32]byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.marks[size]
	return r, ok
}

// add appends the leaves of a group the sink has just made durable.
// contiguous is false when the file grew by more than the group (another
// writer appended too): the tree then stops. Called with the sink's mutex
// held, so groups are added in file order.
func (t *Tree) add(batch []Entry, contiguous bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stop != nil {
		return
	}
	if !contiguous {
		t.stop = errors.New("the audit file grew by more than this process wrote: another process appends to it")
		return
	}
	for _, e := range batch {
		// LeafHash, in a buffer the tree keeps: no allocation per line
		// but the hash the range keeps.
		t.buf = append(append(t.buf[:0], rfc6962.RFC6962LeafHashPrefix), e.Line...)
		h := sha256.Sum256(t.buf)
		if err := t.rng.Append(h[:], nil); err != nil {
			t.stop = err
			return
		}
	}
}

// fail stops the tree after a failed write: the file may hold part of the
// group, and so lines the tree does not.
func (t *Tree) fail() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stop == nil {
		t.stop = errors.New("a write to the audit file failed: the file may hold part of a group")
	}
}

// Head returns the tree's size (lines) and root hash. The root of the
// empty tree is sha256 of nothing, as RFC 6962 defines it.
func (t *Tree) Head() (size uint64, root [32]byte, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stop != nil {
		return 0, root, fmt.Errorf("%w: %w", ErrTreeStopped, t.stop)
	}
	return t.rng.End(), rootOf(t.rng), nil
}
