package allowlist

import (
	"os"
	"path/filepath"
	"testing"
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
