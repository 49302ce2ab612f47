package audit

import (
	"context"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cardgate/cardgate/internal/redistest"
)

// genLog is a reader of a clean log of n records from two writers
// appending alternately, made as it is read: the log is never in memory
// as a whole. At the end of input, with the verifier's state all still
// held, it measures the live heap.
type genLog struct {
	t         testing.TB
	logs      [2]*Log
	sink      *memSink
	n, made   int
	buf       []byte
	heapAtEOF uint64
}

func newGenLog(t testing.TB, n int) *genLog {
	g := &genLog{t: t, n: n, sink: &memSink{}}
	for i := range g.logs {
		g.logs[i] = newTestLog(t, g.sink)
	}
	return g
}

func (g *genLog) Read(p []byte) (int, error) {
	for len(g.buf) == 0 {
		if g.made == g.n {
			if g.heapAtEOF == 0 {
				g.heapAtEOF = liveHeap()
			}
			return 0, io.EOF
		}
		rec := intent(g.made)
		if g.made%2 == 1 {
			rec = result(g.made)
		}
		if _, err := g.logs[g.made%2].Append(context.Background(), rec); err != nil {
			g.t.Fatalf("Append: %v", err)
		}
		g.made++
		g.buf = append(g.buf[:0], g.sink.lines[0]...)
		g.buf = append(g.buf, '\n')
		g.sink.lines = g.sink.lines[:0]
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	return n, nil
}

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestVerifyMemoryBound holds Verify to memory per chain, not per record:
// the heap it holds at the end of a log of 200,000 records stays under
// 2 MB (kept whole, their chain fields alone take over 60 MB). Under the
// race detector, 20,000 records (over 6 MB) keep the test fast.
func TestVerifyMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 200,000 records")
	}
	const budget = 2 << 20
	n := 200_000
	if raceEnabled {
		n = 20_000
	}
	g := newGenLog(t, n)
	before := liveHeap()
	rep, err := Verify(g)
	if err != nil {
		t.Fatalf("Verify = %v, problems %v", err, rep.Problems)
	}
	if rep.Records != n || len(rep.Chains) != 2 || rep.Chains[0].Records != n/2 {
		t.Fatalf("Verify read %d records in chains %+v, want %d in 2", rep.Records, rep.Chains, n)
	}
	held := int64(g.heapAtEOF) - int64(before)
	t.Logf("heap held at the end of %d records: %d bytes", n, held)
	if held > budget {
		t.Errorf("Verify holds %d bytes at the end of %d records, budget %d", held, n, budget)
	}
}

// TestVerifyStreamPages: VerifyStream reads the stream a page at a time
// and follows chains across pages.
func TestVerifyStreamPages(t *testing.T) {
	ctx := context.Background()
	c := redistest.Start(t).Client()
	sink := newStreamSink(t, c, 0)
	la, lb := newTestLog(t, sink), newTestLog(t, sink)
	const n = 2*streamBatch + 100
	for i := range n / 2 {
		mustAppend(t, la, intent(i))
		mustAppend(t, lb, result(i))
	}
	msgs, err := c.XRange(ctx, testStream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	// The last entry of the first page: the chain's next record is on
	// the second.
	gone := streamBatch - 1
	c.XDel(ctx, testStream, msgs[gone].ID)
	rep, err := VerifyStream(ctx, c, testStream)
	if !errors.Is(err, ErrVerifyFailed) {
		t.Fatalf("VerifyStream = %v, want failure", err)
	}
	if rep.Records != n-1 || len(rep.Chains) != 2 {
		t.Errorf("VerifyStream read %d records in %d chains, want %d in 2", rep.Records, len(rep.Chains), n-1)
	}
	want := []Problem{{Kind: ProblemDeleted, StreamID: msgs[gone+2].ID, Chain: rep.Chains[1].Chain, Seq: streamBatch/2 + 1}}
	if diff := cmp.Diff(want, rep.Problems, cmpopts.IgnoreFields(Problem{}, "Detail")); diff != "" {
		t.Errorf("VerifyStream problems (-want +got):\n%s", diff)
	}
}
