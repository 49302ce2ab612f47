package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"
)

// tlogTree is an independent reference: golang.org/x/mod/sumdb/tlog's
// stored hashes, kept in memory, over the same lines.
type tlogTree struct{ stored []tlog.Hash }

func (r *tlogTree) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x >= int64(len(r.stored)) {
			return nil, fmt.Errorf("no stored hash %d", x)
		}
		out[i] = r.stored[x]
	}
	return out, nil
}

func newTlogTree(t testing.TB, lines []string) *tlogTree {
	t.Helper()
	r := &tlogTree{}
	for i, l := range lines {
		hs, err := tlog.StoredHashes(int64(i), []byte(l), r)
		if err != nil {
			t.Fatalf("StoredHashes: %v", err)
		}
		r.stored = append(r.stored, hs...)
	}
	return r
}

func (r *tlogTree) root(t testing.TB, n int) tlog.Hash {
	t.Helper()
	h, err := tlog.TreeHash(int64(n), r)
	if err != nil {
		t.Fatalf("TreeHash(%d): %v", n, err)
	}
	return h
}

// writeLog appends n records through a Log on a tree-keeping file sink and
// returns the file's path, its lines and the tree.
func writeLog(t *testing.T, n int) (string, []string, *Tree) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	fs, tree, err := OpenFileSinkTree(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	l := newTestLog(t, fs)
	for i := range n {
		if _, err := l.Append(context.Background(), intent(i)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if n == 0 {
		lines = nil
	}
	return path, lines, tree
}

func TestTreeHeadMatchesTlog(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 7, 8, 9, 33} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			path, lines, tree := writeLog(t, n)
			size, root, err := tree.Head()
			if err != nil {
				t.Fatal(err)
			}
			want := newTlogTree(t, lines).root(t, n)
			if size != uint64(n) || tlog.Hash(root) != want {
				t.Fatalf("Head() = %d, %x; want %d, %x", size, root, n, want)
			}
			// Reopened, the tree is rebuilt from the file, and keeps the
			// roots asked for.
			fs2, tree2, err := OpenFileSinkTree(path, uint64(n/2))
			if err != nil {
				t.Fatal(err)
			}
			defer fs2.Close()
			size2, root2, _ := tree2.Head()
			if size2 != size || root2 != root {
				t.Fatalf("reopened Head() = %d, %x; want %d, %x", size2, root2, size, root)
			}
			if r, ok := tree2.RootAt(uint64(n / 2)); !ok || tlog.Hash(r) != newTlogTree(t, lines).root(t, n/2) {
				t.Fatalf("RootAt(%d) = %x, %v; want tlog's root", n/2, r, ok)
			}
		})
	}
}

// Proofs made here with transparency-dev/merkle verify with tlog.
func TestProofsVerifyWithTlog(t *testing.T) {
	const n = 37
	path, lines, _ := writeLog(t, n)
	ref := newTlogTree(t, lines)
	for _, size := range []uint64{1, 2, 5, 16, 17, 36, 37} {
		root, proofs, err := ProveLines(path, size, func([]byte) bool { return true })
		if err != nil {
			t.Fatalf("ProveLines(%d): %v", size, err)
		}
		if tlog.Hash(root) != ref.root(t, int(size)) {
			t.Fatalf("ProveLines(%d) root differs from tlog's", size)
		}
		if len(proofs) != int(size) {
			t.Fatalf("ProveLines(%d) made %d proofs", size, len(proofs))
		}
		for _, p := range proofs {
			if err := tlog.CheckRecord(toTlog(p.Proof), int64(size), tlog.Hash(root), int64(p.Index), tlog.RecordHash(p.Line)); err != nil {
				t.Errorf("tlog.CheckRecord(size %d, leaf %d): %v", size, p.Index, err)
			}
		}
		for _, old := range []uint64{1, 2, 3, 4, 8, 9, size} {
			if old > size {
				continue
			}
			r1, r2, cp, err := ProveConsistency(path, old, size)
			if err != nil {
				t.Fatalf("ProveConsistency(%d, %d): %v", old, size, err)
			}
			if err := tlog.CheckTree(toTlog(cp), int64(size), tlog.Hash(r2), int64(old), tlog.Hash(r1)); err != nil {
				t.Errorf("tlog.CheckTree(%d → %d): %v", old, size, err)
			}
		}
	}
	if _, _, err := ProveLines(path, n+1, func([]byte) bool { return true }); err == nil {
		t.Errorf("ProveLines(size %d) on a file of %d lines succeeded", n+1, n)
	}
}

func toTlog(p [][32]byte) []tlog.Hash {
	out := make([]tlog.Hash, len(p))
	for i, h := range p {
		out[i] = h
	}
	return out
}

// The reverse direction: proofs made with tlog verify with
// transparency-dev/merkle, against the root the Tree computed.
func TestTlogProofsVerifyWithMerkle(t *testing.T) {
	const n = 37
	_, lines, tree := writeLog(t, n)
	ref := newTlogTree(t, lines)
	_, root, _ := tree.Head()
	for i := range int64(n) {
		p, err := tlog.ProveRecord(n, i, ref)
		if err != nil {
			t.Fatal(err)
		}
		leaf := LeafHash([]byte(lines[i]))
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(i), n, leaf[:], fromTlog(p), root[:]); err != nil {
			t.Errorf("merkle VerifyInclusion(leaf %d of %d) of a tlog proof: %v", i, n, err)
		}
	}
	for old := int64(1); old < n; old++ {
		p, err := tlog.ProveTree(n, old, ref)
		if err != nil {
			t.Fatal(err)
		}
		r1 := ref.root(t, int(old))
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(old), n, fromTlog(p), r1[:], root[:]); err != nil {
			t.Errorf("merkle VerifyConsistency(%d → %d) of a tlog proof: %v", old, n, err)
		}
	}
}

func fromTlog(p []tlog.Hash) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

// A write by another process, or a failed write, stops the tree: it never
// signs a root that is not the file's.
func TestTreeStopsOnForeignWrite(t *testing.T) {
	path, _, tree := writeLog(t, 3)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"other":"writer"}` + "\n")
	f.Close()
	if _, _, err := tree.Head(); err != nil {
		t.Fatalf("Head before the next write = %v", err)
	}
	// Reopened, every line is a leaf; this sink's next write notices that
	// the file grew by more than it wrote.
	sink, tr2, err := OpenFileSinkTree(path)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	if n, _, _ := tr2.Head(); n != 4 {
		t.Errorf("reopened tree has %d leaves, want 4 (every line is a leaf)", n)
	}
	l := newTestLog(t, sink)
	g, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	g.WriteString(`{"other":"writer"}` + "\n")
	g.Close()
	if _, err := l.Append(context.Background(), intent(1)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tr2.Head(); !errors.Is(err, ErrTreeStopped) {
		t.Errorf("Head after another process appended = %v, want ErrTreeStopped", err)
	}
}

func TestHashesMatchRFC6962(t *testing.T) {
	for i := range 200 {
		a, b := make([]byte, 32), make([]byte, 32)
		rand.Read(a)
		rand.Read(b)
		line := make([]byte, i*7)
		rand.Read(line)
		if got, want := hashChildren(a, b), rfc6962.DefaultHasher.HashChildren(a, b); !bytes.Equal(got, want) {
			t.Fatalf("hashChildren = %x, want %x", got, want)
		}
		if got, want := LeafHash(line), rfc6962.DefaultHasher.HashLeaf(line); !bytes.Equal(got[:], want) {
			t.Fatalf("LeafHash = %x, want %x", got, want)
		}
		tr := &Tree{rng: rangeFactory.NewEmptyRange(0)}
		tr.add([]Entry{{Line: line}}, true)
		if _, root, _ := tr.Head(); root != LeafHash(line) {
			t.Fatalf("a one-leaf tree's root is not the leaf hash")
		}
	}
}
