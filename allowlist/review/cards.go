// The named cards and body rules of an entry in "show" and "diff".

package review

import (
	"slices"
	"strings"

	"github.com/cardgate/cardgate/allowlist"
)

// CardsBodyNotes lists an entry's named cards and DOCTYPE for "show".
func CardsBodyNotes(d *allowlist.Destination) []string {
	var n []string
	names := make([]string, 0, len(d.Cards))
	for name := range d.Cards {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		n = append(n, "card "+name+" "+Fields(d.Cards[name]))
	}
	if d.Body != nil && d.Body.Doctype != "" {
		n = append(n, "DOCTYPE "+d.Body.Doctype)
	}
	return n
}

// diffCardsBody lists the changes to an entry's named cards and body
// rules: a new card, a field newly granted to a card and a new or changed
// DOCTYPE widen risk.
func diffCardsBody(at string, o, n *allowlist.Destination) []Change {
	var c []Change
	for _, f := range []func(o, n *allowlist.Destination) ([]string, []string){allowlist.DiffCards, allowlist.DiffBody} {
		widens, narrows := f(o, n)
		for _, s := range widens {
			c = append(c, Change{Widens: true, Text: at + s})
		}
		for _, s := range narrows {
			c = append(c, Change{Widens: false, Text: at + strings.TrimSpace(s)})
		}
	}
	return c
}
