package audit

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"
)

// treeSink is discard plus the Merkle tree: the CPU an append gains from
// the tree, without fsync noise.
type treeSink struct{ t *Tree }

func (s treeSink) Write(_ context.Context, b []Entry) error {
	s.t.add(b, true)
	return nil
}

// BenchmarkAppendTree compares an append without and with the tree: the
// "no sink" pair isolates the CPU (validation, encoding, chain hash, and
// then the leaf hash and node hashes); the "file" pair adds the fsync, which
// the tree does not change.
//
// The machine the figures come from may be shared: each sub-benchmark
// also reports cpu-ns/op, the process's user and system CPU time per
// append (getrusage), which waiting for a core does not inflate.
func BenchmarkAppendTree(b *testing.B) {
	b.Run("no sink", func(b *testing.B) { defer reportCPU(b)(); benchAppend(b, discard{}) })
	b.Run("no sink+tree", func(b *testing.B) {
		defer reportCPU(b)()
		benchAppend(b, treeSink{&Tree{rng: rangeFactory.NewEmptyRange(0)}})
	})
	b.Run("file", func(b *testing.B) { benchAppend(b, openBenchFile(b)) })
	b.Run("file+tree", func(b *testing.B) {
		fs, _, err := OpenFileSinkTree(filepath.Join(benchDir(b), "audit.log"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { fs.Close() })
		benchAppend(b, fs)
	})
}

// benchLeaves yields n synthetic leaf hashes cheaply (the index in the
// first 8 bytes): the cost measured is the tree's, not the leaves'.
func benchLeaves(n uint64) func(yield func([32]byte) error) error {
	return func(yield func([32]byte) error) error {
		var h [32]byte
		for i := range n {
			binary.BigEndian.PutUint64(h[:], i)
			if err := yield(h); err != nil {
				return err
			}
		}
		return nil
	}
}

// BenchmarkProve10M makes an inclusion proof for one leaf, and a
// consistency proof, on a 10-million-leaf log the way `cardgate audit
// prove` does: streaming every leaf hash through a compact range, keeping
// only the proof's nodes. Reading and hashing the file's lines comes on
// top (one sha256 per line); memory does not grow with the log.
func BenchmarkProve10M(b *testing.B) {
	const size = 10_000_000
	b.Run("inclusion", func(b *testing.B) {
		const index = 6_543_210
		var heap uint64
		b.ReportAllocs()
		for b.Loop() {
			nodes, err := proof.Inclusion(index, size)
			if err != nil {
				b.Fatal(err)
			}
			want := map[compact.NodeID][]byte{}
			for _, id := range nodes.IDs {
				want[id] = nil
			}
			roots, err := HashLeaves(benchLeaves(size), size, want, size)
			if err != nil {
				b.Fatal(err)
			}
			p, err := rehash(nodes, want)
			if err != nil {
				b.Fatal(err)
			}
			heap = max(heap, heapInUse())
			b.StopTimer()
			var leaf [32]byte
			binary.BigEndian.PutUint64(leaf[:], index)
			if err := tlog.CheckRecord(toTlog(p), size, roots[0], index, leaf); err != nil {
				b.Fatalf("tlog.CheckRecord: %v", err)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
	})
	b.Run("consistency 5M-10M", func(b *testing.B) {
		const old = 5_000_001
		var heap uint64
		b.ReportAllocs()
		for b.Loop() {
			nodes, err := proof.Consistency(old, size)
			if err != nil {
				b.Fatal(err)
			}
			want := map[compact.NodeID][]byte{}
			for _, id := range nodes.IDs {
				want[id] = nil
			}
			roots, err := HashLeaves(benchLeaves(size), size, want, old, size)
			if err != nil {
				b.Fatal(err)
			}
			p, err := rehash(nodes, want)
			if err != nil {
				b.Fatal(err)
			}
			heap = max(heap, heapInUse())
			b.StopTimer()
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old, size, fromTlogArr(p), roots[0][:], roots[1][:]); err != nil {
				b.Fatalf("VerifyConsistency: %v", err)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
	})
}

func fromTlogArr(p [][32]byte) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

// reportCPU returns a func that reports the CPU time used since, per op.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() { b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op") }
}

func cpuTime() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
