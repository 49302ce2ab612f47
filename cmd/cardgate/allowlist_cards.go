// The named cards and body rules of an entry in "show" and "diff".

package main

import (
	"slices"
	"strings"

	"github.com/cardgate/cardgate/allowlist"
)

// cardsBodyNotes lists an entry's named cards and DOCTYPE for "show".
func cardsBodyNotes(d *allowlist.Destination) []string {
	var n []string
	names := make([]string, 0, len(d.Cards))
	for name := range d.Cards {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		n = append(n, "card "+name+" "+joinFields(d.Cards[name]))
	}
	if d.Body != nil && d.Body.Doctype != "" {
		n = append(n, "DOCTYPE "+d.Body.Doctype)
	}
	return n
}

// diffCardsBody lists the changes to an entry's named cards and body
// rules: a new card, a field newly granted to a card and a new or changed
// DOCTYPE widen risk.
func diffCardsBody(o, n *allowlist.Destination) []change {
	var c []change
	at := "~ " + n.ID + ": "
	for _, f := range []func(o, n *allowlist.Destination) ([]string, []string){allowlist.DiffCards, allowlist.DiffBody} {
		widens, narrows := f(o, n)
		for _, s := range widens {
			c = append(c, change{at + s, true})
		}
		for _, s := range narrows {
			c = append(c, change{at + strings.TrimSpace(s), false})
		}
	}
	return c
}
