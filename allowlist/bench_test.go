package allowlist

import (
	"fmt"
	"net/url"
	"testing"
)

// BenchmarkMatch measures one policy decision: on the test fixture, and on
// an allowlist of 200 entries with the match at the end. Budget: 0 allocs
// on the allow path (a deny builds its error).
func BenchmarkMatch(b *testing.B) {
	a := fixtureAllowlist(b)
	u, _ := url.Parse("https://api.acme.example/v1/charges/ch_1/capture")
	q := Query{DestinationID: "acme-charges", Caller: "billing", Method: "POST", URL: u,
		Fields: []Field{FieldNumber, FieldExpMonth, FieldExpYear, FieldCVC}, Now: testNow}
	b.Run("fixture", func(b *testing.B) { benchMatch(b, a, q) })

	big := *a
	template := a.Doc.Destinations[0]
	big.Doc.Destinations = nil
	for i := range 199 {
		d := template
		d.ID = fmt.Sprintf("other-%03d", i)
		big.Doc.Destinations = append(big.Doc.Destinations, d)
	}
	big.Doc.Destinations = append(big.Doc.Destinations, template)
	b.Run("200 entries", func(b *testing.B) { benchMatch(b, &big, q) })
}

func benchMatch(b *testing.B, a *Allowlist, q Query) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Match(q); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMatchAllocationBudget holds Match to the README's budget: none.
func TestMatchAllocationBudget(t *testing.T) {
	a := fixtureAllowlist(t)
	u, _ := url.Parse("https://api.acme.example/v1/charges/ch_1/capture")
	q := Query{DestinationID: "acme-charges", Caller: "billing", Method: "POST", URL: u,
		Fields: []Field{FieldNumber, FieldExpMonth, FieldExpYear, FieldCVC}, Now: testNow}
	got := testing.AllocsPerRun(200, func() {
		if _, err := a.Match(q); err != nil {
			t.Fatal(err)
		}
	})
	if got != 0 {
		t.Errorf("Match allocates %.1f times, budget 0", got)
	}
}
