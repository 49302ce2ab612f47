package review

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardgate/cardgate/allowlist"
)

// TestDiffResponseRules checks that allowlist diff marks new identifier
// and returned-card rules WIDENS, on a changed entry and on a new one, and
// that show lists them.
func TestDiffResponseRules(t *testing.T) {
	const head = `format: cardgate.allowlist/v1
namespace: cardgate-allowlist@v1
environment: test
version: %V
issued_at: 2026-11-01T00:00:00Z
expires: 2027-01-15T00:00:00Z
prev_sha256: %P
destinations:
  - id: acme
    purpose: charges
    owner: billing@example.com
    url: https://api.acme.example/v1/charges
    methods: [POST]
    callers: [billing]
    fields: [number]
`
	doc := func(version, extra string) *allowlist.Document {
		t.Helper()
		prev := `""`
		if version != "1" {
			prev = strings.Repeat("a", 64)
		}
		d, err := allowlist.ParseUnverified([]byte(strings.NewReplacer("%V", version, "%P", prev).Replace(head) + extra))
		if err != nil {
			t.Fatalf("ParseUnverified: %v", err)
		}
		return d
	}
	const rules = `    request_identifiers: ["$.prev"]
    response:
      identifiers: ["$.nti"]
      returned_cards:
        - number: "$.c.n"
          exp_month: "$.c.m"
          exp_year: "$.c.y"
`
	lines := func(cs []Change) []string {
		var out []string
		for _, c := range cs {
			if strings.Contains(c.Text, "identifier") || strings.Contains(c.Text, "returned card") {
				mark := ""
				if c.Widens {
					mark = "WIDENS "
				}
				out = append(out, mark+c.Text)
			}
		}
		return out
	}
	got := lines(Diff(doc("1", ""), doc("2", rules), strings.Repeat("a", 64)))
	want := []string{
		"WIDENS ~ acme: + request identifier $.prev",
		"WIDENS ~ acme: + response identifier $.nti",
		"WIDENS ~ acme: + returned card (tokenized) number $.c.n, exp_month $.c.m, exp_year $.c.y",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diff of added rules (-want +got):\n%s", diff)
	}
	got = lines(Diff(doc("1", rules), doc("2", ""), strings.Repeat("a", 64)))
	want = []string{
		"~ acme: - request identifier $.prev",
		"~ acme: - response identifier $.nti",
		"~ acme: - returned card number $.c.n, exp_month $.c.m, exp_year $.c.y",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diff of removed rules (-want +got):\n%s", diff)
	}
	empty := doc("1", "")
	empty.Destinations = nil
	got = lines(Diff(empty, doc("2", rules), strings.Repeat("a", 64)))
	want = []string{
		"WIDENS + acme: + request identifier $.prev",
		"WIDENS + acme: + response identifier $.nti",
		"WIDENS + acme: + returned card (tokenized) number $.c.n, exp_month $.c.m, exp_year $.c.y",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diff of a new entry with rules (-want +got):\n%s", diff)
	}
	d := doc("2", rules).Destinations[0]
	if n := strings.Join(Notes(&d), "; "); !strings.Contains(n, "1 returned card(s) tokenized") || !strings.Contains(n, "1 response identifier path(s) kept") {
		t.Errorf("notes = %q, want the rules listed", n)
	}
}
