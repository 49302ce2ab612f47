package migrate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/cardgate/cardgate/audit"
)

// cardStream generates n lines of the format on the fly, the test cards
// in turn under distinct ids, so that a large input never exists whole in
// the test either.
type cardStream struct {
	n, i int
	buf  bytes.Buffer
}

func (s *cardStream) Read(p []byte) (int, error) {
	for s.buf.Len() < len(p) && s.i < s.n {
		c := testCards[s.i%len(testCards)]
		c.ID = fmt.Sprintf("sender-%07d", s.i+1)
		j, _ := json.Marshal(c)
		s.buf.Write(j)
		s.buf.WriteByte('\n')
		s.i++
	}
	if s.buf.Len() == 0 {
		return 0, io.EOF
	}
	return s.buf.Read(p)
}

// TestImport100k imports a 100,000-card file into Redis, and a 20,000-card
// file into bolt: every card is stored once, mapped once and audited, and
// nothing leaks. (Bolt commits and fsyncs each card on its own: 100,000
// took four and a half minutes on the shared test machine; see
// BenchmarkImport for its throughput.) Under the race detector it imports
// a tenth as many; scripts/test runs it again at full size without it.
func TestImport100k(t *testing.T) {
	for _, kind := range storeKinds {
		n := 100_000
		if kind == "bolt" {
			n = 20_000
		}
		if raceEnabled {
			// The full sizes run without the race detector: scripts/test
			// runs this test a second time without -race.
			n /= 10
		}
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			id := newIdentity(t)
			path := encryptFile(t, id, &cardStream{n: n})
			mapPath := filepath.Join(t.TempDir(), "mapping.jsonl")
			var report bytes.Buffer
			c, err := e.importFile(t, id, path, mapPath, nil, &report)
			if err != nil {
				t.Fatalf("import: %v", err)
			}
			if c.Lines != n || c.Imported != n || c.Refused != 0 {
				t.Errorf("counts = %+v, want %d imported", c, n)
			}
			m := readMapping(t, mapPath)
			tokens := map[string]bool{}
			for _, l := range m {
				tokens[l.Token] = true
			}
			if len(m) != n || len(tokens) != n {
				t.Errorf("mapping holds %d lines, %d tokens, want %d", len(m), len(tokens), n)
			}
			if got := len(e.tokens(t)); got != n {
				t.Errorf("store holds %d records, want %d", got, n)
			}
			if got := e.auditKinds(t)[audit.KindImported]; got != n {
				t.Errorf("audit holds %d imported records, want %d", got, n)
			}
			mapping, _ := os.ReadFile(mapPath)
			auditLog, _ := os.ReadFile(e.auditPath)
			for what, b := range map[string][]byte{"report": report.Bytes(), "mapping": mapping, "audit": auditLog, "logs": e.logs.Bytes()} {
				checkNoLeak(t, what, b, secretsOf(testCards))
			}
		})
	}
}

// TestReaderMemoryBounded reads a million-line input: the reader keeps
// nothing of the lines it has passed, so the live heap afterwards is what
// it was before (the import adds only the id set; see idSet).
func TestReaderMemoryBounded(t *testing.T) {
	const n = 1_000_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := NewReader(&cardStream{n: n})
	var c Card
	lines := 0
	for {
		err := r.Next(&c)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		lines++
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if lines != n {
		t.Fatalf("read %d lines, want %d", lines, n)
	}
	// The input is about 100 MB; a reader that kept it would hold that.
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 1<<20 {
		t.Errorf("live heap grew by %d bytes over %d lines, want under 1 MiB", grew, n)
	}
	runtime.KeepAlive(r)
}
