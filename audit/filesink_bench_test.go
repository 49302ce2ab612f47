package audit

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// fsyncFile is the sink's file as it was before fdatasync and
// preallocation: its Sync is the file's fsync(2), and nothing is
// preallocated. For the A/B comparison in BenchmarkFileSinkSync only.
type fsyncFile struct{ *os.File }

// groupCounter counts the groups written and the records in them.
type groupCounter struct {
	Sink
	groups, records atomic.Int64
}

func (g *groupCounter) Write(ctx context.Context, batch []Entry) error {
	g.groups.Add(1)
	g.records.Add(int64(len(batch)))
	return g.Sink.Write(ctx, batch)
}

// BenchmarkFileSinkSync compares, on the same disk, the file sink as it
// is (fdatasync, blocks preallocated) with fsync and no preallocation, for
// one appender and for 32 per core (group commit), and reports the
// records per group. Run the two interleaved (-count, several times):
// sync latency depends on what else the disk is doing.
func BenchmarkFileSinkSync(b *testing.B) {
	for _, par := range []int{0, 32} {
		for _, variant := range []string{"fsync", "fdatasync+prealloc"} {
			name := variant + "/serial"
			if par > 0 {
				name = variant + "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				fs, err := OpenFileSink(filepath.Join(benchDir(b), "audit.log"))
				if err != nil {
					b.Fatal(err)
				}
				defer fs.Close()
				if variant == "fsync" {
					fs.f = fsyncFile{fs.f.(syncFile).File}
				}
				g := &groupCounter{Sink: fs}
				if par > 0 {
					benchAppendParallel(b, g)
				} else {
					benchAppend(b, g)
				}
				b.ReportMetric(float64(g.records.Load())/float64(max(g.groups.Load(), 1)), "records/group")
			})
		}
	}
}
