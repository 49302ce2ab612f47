package cardscan

import "testing"

// TestRedactAllocationBudget holds Redact to the README's budget: no
// allocation when dst has room, for plain, spelled-out and form bodies.
func TestRedactAllocationBudget(t *testing.T) {
	for _, kind := range []string{"", "spelled", "form"} {
		in := benchInputOf(64<<10, kind != "", kind == "form")
		dst := make([]byte, 0, len(in))
		got := testing.AllocsPerRun(20, func() { dst = Redact(dst[:0], in) })
		if got != 0 {
			t.Errorf("Redact (%q body) allocates %.1f times, budget 0", kind, got)
		}
	}
}
