package review

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardgate/cardgate/allowlist"
)

// TestDiffCardsAndBody checks that allowlist diff shows every change of an
// entry's named cards and DOCTYPE, and flags the widening ones.
func TestDiffCardsAndBody(t *testing.T) {
	const head = `format: cardgate.allowlist/v1
namespace: cardgate-allowlist@v1
environment: test
version: %V
issued_at: 2026-11-01T00:00:00Z
expires: 2027-01-15T00:00:00Z
prev_sha256: %P
destinations:
  - id: wp
    purpose: orders
    owner: billing@example.com
    url: https://secure.worldpay.example/jsp/merchant/xml/paymentService.jsp
    methods: [POST]
    callers: [billing]
    fields: [number]
`
	const doctype = `<!DOCTYPE paymentService PUBLIC "-//Worldpay//DTD Worldpay PaymentService v1//EN" "http://dtd.worldpay.com/paymentService_v1.dtd">`
	doc := func(version, block string) *allowlist.Document {
		t.Helper()
		prev := `""`
		if version != "1" {
			prev = strings.Repeat("a", 64)
		}
		d, err := allowlist.ParseUnverified([]byte(strings.NewReplacer("%V", version, "%P", prev).Replace(head) + block))
		if err != nil {
			t.Fatalf("ParseUnverified: %v", err)
		}
		return d
	}
	cards := func(lines ...string) string { return "    cards:\n      " + strings.Join(lines, "\n      ") + "\n" }
	body := "    body:\n      doctype: '" + doctype + "'\n"
	tests := []struct {
		name, old, new string
		want           []Change
	}{
		{"card added", "", cards("primary: [number]"), []Change{{Widens: true, Text: "~ wp: + card primary (fields number)"}}},
		{"field granted", cards("primary: [number]"), cards("primary: [number, cvc]"), []Change{{Widens: true, Text: "~ wp: + card primary field cvc"}}},
		{"card removed", cards("primary: [number]", "funding: [number]"), cards("primary: [number]"), []Change{{Widens: false, Text: "~ wp: - card funding"}}},
		{"doctype added", "", body, []Change{{Widens: true, Text: "~ wp: ~ body doctype - -> " + doctype}}},
		{"doctype removed", body, "", []Change{{Widens: false, Text: "~ wp: - body doctype " + doctype}}},
		{"unchanged", cards("primary: [number]") + body, cards("primary: [number]") + body, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []Change
			for _, c := range Diff(doc("1", tt.old), doc("2", tt.new), strings.Repeat("a", 64)) {
				if strings.Contains(c.Text, "card ") || strings.Contains(c.Text, "doctype") {
					got = append(got, c)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("diffDocuments (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("new destination", func(t *testing.T) {
		old := doc("1", "")
		old.Destinations = nil
		var flagged int
		for _, c := range Diff(old, doc("2", cards("primary: [number]")+body), strings.Repeat("a", 64)) {
			if c.Widens && (strings.Contains(c.Text, "+ card primary") || strings.Contains(c.Text, "body doctype")) {
				flagged++
			}
		}
		if flagged != 2 {
			t.Errorf("new entry: %d of its card and doctype lines flagged, want 2", flagged)
		}
	})
	t.Run("show", func(t *testing.T) {
		d := doc("1", cards("primary: [number, exp_month]")+body)
		if n := strings.Join(Notes(&d.Destinations[0]), "; "); !strings.Contains(n, "card primary number,exp_month") || !strings.Contains(n, "DOCTYPE "+doctype) {
			t.Errorf("notes = %q, want the named card and the DOCTYPE", n)
		}
	})
}
