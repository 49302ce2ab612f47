package audit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardgate/cardgate/internal/redistest"
)

// benchDir is where file-sink benchmarks write. fsync cost depends on the
// device, so point AUDIT_BENCH_DIR at the disk the gateway will use.
func benchDir(b *testing.B) string {
	if d := os.Getenv("AUDIT_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "auditbench")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

func benchAppend(b *testing.B, sinks ...Sink) {
	l, err := New(Options{Sinks: sinks})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	rec := intent(1)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := l.Append(ctx, rec); err != nil {
			b.Fatal(err)
		}
	}
}

func benchAppendParallel(b *testing.B, sinks ...Sink) {
	l, err := New(Options{Sinks: sinks})
	if err != nil {
		b.Fatal(err)
	}
	rec := intent(1)
	// 32 appenders per core, as under load: they share fsyncs (group commit).
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := l.Append(ctx, rec); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func openBenchFile(b *testing.B) *FileSink {
	fs, err := OpenFileSink(filepath.Join(benchDir(b), "audit.log"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { fs.Close() })
	return fs
}

// discard is a sink that stores nothing: the cost of validation, hashing
// and encoding alone.
type discard struct{}

func (discard) Write(context.Context, []Entry) error { return nil }

func BenchmarkAppend(b *testing.B) {
	b.Run("no sink", func(b *testing.B) { benchAppend(b, discard{}) })
	b.Run("file", func(b *testing.B) { benchAppend(b, openBenchFile(b)) })
	b.Run("redis", func(b *testing.B) {
		benchAppend(b, newStreamSink(b, redistest.Start(b).Client(), 0))
	})
	b.Run("file+redis", func(b *testing.B) {
		benchAppend(b, openBenchFile(b), newStreamSink(b, redistest.Start(b).Client(), 0))
	})
	// Parallel callers queue on the Log's lock: throughput stays that of
	// one writer, which is the point of a linear chain.
	b.Run("file parallel", func(b *testing.B) { benchAppendParallel(b, openBenchFile(b)) })
	b.Run("redis parallel", func(b *testing.B) { benchAppendParallel(b, newStreamSink(b, redistest.Start(b).Client(), 0)) })
}

// BenchmarkVerify reports the cost per record of verifying a clean log
// of two interleaved chains.
func BenchmarkVerify(b *testing.B) {
	sink := &memSink{}
	la, lb := newTestLog(b, sink), newTestLog(b, sink)
	const n = 20000
	for i := range n / 2 {
		mustAppend(b, la, intent(i))
		mustAppend(b, lb, result(i))
	}
	text := sink.text()
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Verify(strings.NewReader(text)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
}

// TestAppendAllocationBudget holds Append to the allocation budget the
// README documents (a count, not a time, so it is stable on any machine).
func TestAppendAllocationBudget(t *testing.T) {
	const budget = 4
	l, err := New(Options{Sinks: []Sink{discard{}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rec := intent(1)
	got := testing.AllocsPerRun(200, func() {
		if _, err := l.Append(ctx, rec); err != nil {
			t.Fatal(err)
		}
	})
	if got > budget {
		t.Errorf("Append allocates %.1f times per record, budget %d", got, budget)
	}
}
