package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"golang.org/x/mod/sumdb/tlog"
)

// frontier is a tlog.HashReader holding only the stored hashes that the
// next leaf (or the root) can need: the roots of the perfect subtrees of
// the tree so far. Memory stays at most 64 hashes whatever the log's size.
type frontier struct {
	n      int64 // leaves so far
	stored map[int64]tlog.Hash
}

func newFrontier() *frontier { return &frontier{stored: map[int64]tlog.Hash{}} }

func (f *frontier) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		h, ok := f.stored[x]
		if !ok {
			return nil, fmt.Errorf("stored hash %d is not on the frontier", x)
		}
		out[i] = h
	}
	return out, nil
}

// add appends one leaf's data.
func (f *frontier) add(data []byte) error {
	hs, err := tlog.StoredHashes(f.n, data, f)
	if err != nil {
		return err
	}
	base := tlog.StoredHashIndex(0, f.n)
	for i, h := range hs {
		f.stored[base+int64(i)] = h
		if i > 0 {
			// hs[i] is the level-i subtree ending at leaf n: its two
			// children are no longer roots of the frontier.
			k := f.n >> uint(i)
			delete(f.stored, tlog.StoredHashIndex(i-1, 2*k))
			delete(f.stored, tlog.StoredHashIndex(i-1, 2*k+1))
		}
	}
	f.n++
	return nil
}

// root is the RFC 6962 root of the leaves so far.
func (f *frontier) root() (tlog.Hash, error) { return tlog.TreeHash(f.n, f) }

// eachLine calls fn with each newline-terminated line of r, without its
// newline. A last piece without a newline is not a line (a write in
// progress); its length is returned.
func eachLine(r io.Reader, fn func(line []byte) error) (partial int, err error) {
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
				return 0, err
			}
		case errors.Is(err, bufio.ErrBufferFull):
			long = append(long, b...)
		case err == io.EOF:
			return len(long) + len(b), nil
		default:
			return 0, err
		}
	}
}
