package allowlist

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzParse checks that ParseUnverified never panics and that whatever it
// accepts satisfies the invariants Match relies on. Seeds: every fixture
// in testdata, good and broken, plus the corpus in testdata/fuzz.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	broken, _ := filepath.Glob(filepath.Join("testdata", "broken", "*.yaml"))
	for _, p := range append(seeds, broken...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(docSpec{}.yaml())
	f.Fuzz(func(t *testing.T, raw []byte) {
		doc, err := ParseUnverified(raw)
		if err != nil {
			if doc != nil {
				t.Fatalf("ParseUnverified returned a document and an error %v", err)
			}
			return
		}
		if doc.Format != Format || doc.Namespace != Namespace || doc.Version == 0 || !doc.Expires.After(doc.IssuedAt) {
			t.Fatalf("accepted a document with bad header: %+v", doc)
		}
		if err := checkGrepReadsHeader(raw, doc); err != nil {
			t.Fatalf("accepted a document whose header grep misreads: %v", err)
		}
		ids := map[string]bool{}
		for _, d := range doc.Destinations {
			if ids[d.ID] {
				t.Fatalf("accepted duplicate id %q", d.ID)
			}
			ids[d.ID] = true
			if d.Port < 1 || d.Port > 65535 || d.Host == "" || d.PathPrefix == "" || d.PathPrefix[0] != '/' {
				t.Fatalf("accepted destination %q with host %q port %d prefix %q", d.ID, d.Host, d.Port, d.PathPrefix)
			}
			if len(d.Methods) == 0 || len(d.Callers) == 0 || len(d.Fields) == 0 {
				t.Fatalf("accepted destination %q with an empty list", d.ID)
			}
			for _, f := range d.Fields {
				if !knownField(f) {
					t.Fatalf("accepted unknown field %q", f)
				}
			}
		}
	})
}

// grepHeader is AUDITING.md's header recipe in Go:
//
//	grep -E "^$key:" FILE | sed -E 's/^[^:]+:[ \t]*"?([^" #]*)"?.*/\1/'
//
// one result per matching line.
func grepHeader(raw []byte, key string) []string {
	sed := regexp.MustCompile(`^[^:]+:[ \t]*"?([^" #]*)"?.*$`)
	var out []string
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, key+":") {
			out = append(out, sed.ReplaceAllString(l, "$1"))
		}
	}
	return out
}

// checkGrepReadsHeader reports where the grep recipe reads a header field
// of an accepted document differently from the parser.
func checkGrepReadsHeader(raw []byte, doc *Document) error {
	want := map[string]string{
		"format": doc.Format, "namespace": doc.Namespace, "environment": doc.Environment,
		"version": strconv.FormatUint(doc.Version, 10), "prev_sha256": doc.PrevSHA256,
	}
	for key, v := range want {
		got := grepHeader(raw, key)
		if key == "prev_sha256" && len(got) == 0 && v == "" {
			continue
		}
		if len(got) != 1 || got[0] != v {
			return fmt.Errorf("grep %s: read %q, the gateway %q", key, got, v)
		}
	}
	for key, v := range map[string]time.Time{"issued_at": doc.IssuedAt, "expires": doc.Expires} {
		got := grepHeader(raw, key)
		if len(got) != 1 {
			return fmt.Errorf("grep %s: read %q", key, got)
		}
		if t, err := time.Parse(time.RFC3339, got[0]); err != nil || !t.Equal(v) {
			return fmt.Errorf("grep %s: read %q, the gateway %s", key, got, v)
		}
	}
	return nil
}
