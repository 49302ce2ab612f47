package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/cardgate/cardgate/internal/fileread"
)

// ErrShortLog is wrapped by the Prove functions' errors when the file
// holds fewer lines than the tree size asked for: lines were cut from its
// end (or it is another file).
var ErrShortLog = errors.New("the audit file holds fewer lines than the checkpoint")

// Inclusion proves that one line of the audit file is leaf Index of the
// tree of the file's first Size lines: Proof is the RFC 6962 audit path,
// from the leaf's sibling up.
type Inclusion struct {
	Index uint64
	Size  uint64
	Line  []byte
	Proof [][32]byte
}

// MatchForward matches the stored lines of records of forward id: intent,
// result, and any tokenized records.
func MatchForward(id string) func(line []byte) bool {
	needle := []byte(`,"forward_id":"` + id + `",`)
	return func(line []byte) bool {
		if !bytes.Contains(line, needle) {
			return false
		}
		rec, ok := decodeStored(line)
		return ok && rec.ForwardID == id
	}
}

// ProveLines reads the audit file at path and proves each of its first
// size lines for which match is true, against the tree of those size
// lines, whose root it returns: compare it with the checkpoint's before
// handing out the proofs. It reads the file twice (first to find the
// lines, then to hash), and holds only the proofs' nodes and a compact
// range, whatever the file's size.
func ProveLines(path string, size uint64, match func(line []byte) bool) (root [32]byte, proofs []Inclusion, err error) {
	err = readLines(path, size, func(i uint64, line []byte) {
		if match(line) {
			proofs = append(proofs, Inclusion{Index: i, Size: size, Line: bytes.Clone(line)})
		}
	})
	if err != nil {
		return root, nil, err
	}
	want := map[compact.NodeID][]byte{}
	nodes := make([]proof.Nodes, len(proofs))
	for i, p := range proofs {
		if nodes[i], err = proof.Inclusion(p.Index, size); err != nil {
			return root, nil, fmt.Errorf("audit: prove: %w", err)
		}
		for _, id := range nodes[i].IDs {
			want[id] = nil
		}
	}
	roots, err := hashLines(path, size, want, size)
	if err != nil {
		return root, nil, err
	}
	for i := range proofs {
		if proofs[i].Proof, err = rehash(nodes[i], want); err != nil {
			return root, nil, err
		}
	}
	return roots[0], proofs, nil
}

// ProveConsistency reads the audit file at path and returns the roots of
// its first size1 and size2 lines and the RFC 6962 consistency proof
// between the two trees.
func ProveConsistency(path string, size1, size2 uint64) (root1, root2 [32]byte, p [][32]byte, err error) {
	if size1 > size2 {
		return root1, root2, nil, fmt.Errorf("audit: prove consistency: size %d is larger than %d", size1, size2)
	}
	nodes, err := proof.Consistency(size1, size2)
	if err != nil {
		return root1, root2, nil, fmt.Errorf("audit: prove consistency: %w", err)
	}
	want := map[compact.NodeID][]byte{}
	for _, id := range nodes.IDs {
		want[id] = nil
	}
	roots, err := hashLines(path, size2, want, size1, size2)
	if err != nil {
		return root1, root2, nil, err
	}
	if p, err = rehash(nodes, want); err != nil {
		return root1, root2, nil, err
	}
	return roots[0], roots[1], p, nil
}

// rehash builds a proof from the hashes of its nodes.
func rehash(n proof.Nodes, have map[compact.NodeID][]byte) ([][32]byte, error) {
	hs := make([][]byte, len(n.IDs))
	for i, id := range n.IDs {
		if hs[i] = have[id]; hs[i] == nil {
			return nil, fmt.Errorf("audit: prove: node %d/%d was not computed", id.Level, id.Index)
		}
	}
	hs, err := n.Rehash(hs, rfc6962.DefaultHasher.HashChildren)
	if err != nil {
		return nil, fmt.Errorf("audit: prove: %w", err)
	}
	out := make([][32]byte, len(hs))
	for i, h := range hs {
		copy(out[i][:], h)
	}
	return out, nil
}

// readLines calls fn with each of the first size lines of the file.
func readLines(path string, size uint64, fn func(i uint64, line []byte)) error {
	f, err := fileread.Open(path) // a FIFO or directory is refused, not waited on
	if err != nil {
		return fmt.Errorf("audit: prove: %w", err)
	}
	defer f.Close()
	var n uint64
	errDone := errors.New("done")
	err = eachLine(f, func(line []byte) error {
		if n == size {
			return errDone
		}
		fn(n, line)
		n++
		return nil
	})
	if err != nil && err != errDone {
		return fmt.Errorf("audit: prove: read %s: %w", path, err)
	}
	if n < size {
		return fmt.Errorf("audit: prove: %s holds %d lines, the tree %d: %w", path, n, size, ErrShortLog)
	}
	return nil
}

// hashLines hashes the first size lines of the file into a tree, fills in
// the hashes of the nodes in want, and returns the roots at each of at.
func hashLines(path string, size uint64, want map[compact.NodeID][]byte, at ...uint64) ([][32]byte, error) {
	f, err := fileread.Open(path)
	if err != nil {
		return nil, fmt.Errorf("audit: prove: %w", err)
	}
	defer f.Close()
	return HashLeaves(leafReader(f, size), size, want, at...)
}

// leafReader yields the leaf hashes of r's lines.
func leafReader(r io.Reader, size uint64) func(yield func([32]byte) error) error {
	return func(yield func([32]byte) error) error {
		var n uint64
		errDone := errors.New("done")
		err := eachLine(r, func(line []byte) error {
			if n == size {
				return errDone
			}
			n++
			return yield(LeafHash(line))
		})
		if err != nil && err != errDone {
			return fmt.Errorf("audit: prove: read: %w", err)
		}
		if n < size {
			return fmt.Errorf("audit: prove: the file holds %d lines, the tree %d: %w", n, size, ErrShortLog)
		}
		return nil
	}
}

// HashLeaves feeds size leaf hashes from leaves into a compact range,
// records the hash of every node listed in want (a node of a proof), and
// returns the tree's root at each size in at. Its memory is the compact
// range and want, whatever size is; it is how proofs on a large log are
// made without storing the tree.
func HashLeaves(leaves func(yield func([32]byte) error) error, size uint64, want map[compact.NodeID][]byte, at ...uint64) ([][32]byte, error) {
	rng := rangeFactory.NewEmptyRange(0)
	roots := make([][32]byte, len(at))
	mark := func() {
		for i, a := range at {
			if a == rng.End() {
				roots[i] = rootOf(rng)
			}
		}
	}
	visit := func(id compact.NodeID, h []byte) {
		if v, ok := want[id]; ok && v == nil {
			want[id] = bytes.Clone(h)
		}
	}
	mark()
	var n uint64
	err := leaves(func(h [32]byte) error {
		if n == size {
			return nil
		}
		n++
		if err := rng.Append(h[:], visit); err != nil {
			return err
		}
		mark()
		return nil
	})
	if err != nil {
		return nil, err
	}
	if n < size {
		return nil, fmt.Errorf("audit: prove: %d leaves, want %d: %w", n, size, ErrShortLog)
	}
	return roots, nil
}
