package forwarder

import (
	"bufio"
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cardgate/cardgate/allowlist"
)

// TestMatchAgreesWithRecheck runs the forward path's own two decisions on
// every URL in allowlist/testdata/admits_corpus.txt against every entry
// in testdata/recheck.yaml and allowlist/testdata/allowlist.yaml: Match
// on the URL parseTarget builds, and recheck on the target itself. Where
// parseTarget accepts a URL the two must agree, so that neither can admit
// what the other refuses. The corpus must give each entry at least one
// admitted and one refused URL.
func TestMatchAgreesWithRecheck(t *testing.T) {
	var docs []*allowlist.Allowlist
	for _, path := range []string{"testdata/recheck.yaml", "../allowlist/testdata/allowlist.yaml"} {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := allowlist.ParseUnverified(raw)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		docs = append(docs, &allowlist.Allowlist{Doc: *doc})
	}
	raw, err := os.ReadFile("../allowlist/testdata/admits_corpus.txt")
	if err != nil {
		t.Fatal(err)
	}
	var corpus []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			corpus = append(corpus, l)
		}
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) // inside both fixtures' validity
	for _, al := range docs {
		for _, d := range al.Doc.Destinations {
			admitted, refused := 0, 0
			for _, u := range corpus {
				tgt, e := parseTarget(u)
				if e != nil {
					continue // refused before either decision
				}
				r := &Request{Destination: d.ID, Method: d.Methods[0], Caller: d.Callers[0]}
				v := &validated{target: tgt}
				_, merr := al.Match(allowlist.Query{DestinationID: d.ID, Caller: r.Caller, Method: r.Method, URL: tgt.URL(), Now: now})
				rerr := recheck(&d, r, v)
				switch {
				case merr == nil && rerr != nil:
					t.Errorf("%s: %q: Match admitted, recheck = %s (%s)", d.ID, u, rerr.Code, rerr.Message)
				case merr != nil && rerr == nil:
					t.Errorf("%s: %q: recheck admitted, Match = %v", d.ID, u, merr)
				case merr == nil:
					admitted++
				default:
					refused++
				}
			}
			if admitted == 0 || refused == 0 {
				t.Errorf("%s: the corpus has %d admitted and %d refused urls; it needs both", d.ID, admitted, refused)
			}
		}
	}
}
