// Named cards: an entry's `cards` block, which lets one forward carry
// several cards ("cards": {"primary": "tok_…", "funding": "tok_…"} in the
// request) and scopes the fields each may receive.
//
//	cards:
//	  primary: [number, exp_month, exp_year]
//	  funding: [number]

package allowlist

import (
	"fmt"
	"slices"
	"strings"
)

// MaxNamedCards caps the named cards of one entry, and of one request.
const MaxNamedCards = 8

// ReasonCardNotAllowed refuses a request that sends a named card the
// entry's `cards` block does not list.
const ReasonCardNotAllowed Reason = "card_not_allowed"

// ValidCardName reports whether s is a card name: a lowercase letter, then
// up to 31 of a-z, 0-9 and '_'. The same grammar holds in the allowlist
// and in requests, so a name is always safe to print.
func ValidCardName(s string) bool {
	if s == "" || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// CardFields returns the fields the named card may receive under d, and
// whether d lists the card at all.
func (d *Destination) CardFields(name string) ([]Field, bool) {
	f, ok := d.Cards[name]
	return f, ok
}

// cardScopes checks the raw `cards` block: at most MaxNamedCards names in
// the card-name grammar, each with a non-empty list of distinct known
// fields.
func (r *rawDestination) cardScopes(at string) (map[string][]Field, error) {
	if r.Cards == nil {
		return nil, nil
	}
	if len(r.Cards) == 0 {
		return nil, malformed("%s.cards: lists no card; remove the block or name at least one card", at)
	}
	if len(r.Cards) > MaxNamedCards {
		return nil, malformed("%s.cards: %d cards, more than the limit of %d", at, len(r.Cards), MaxNamedCards)
	}
	names := make([]string, 0, len(r.Cards))
	for name := range r.Cards {
		names = append(names, name)
	}
	slices.Sort(names) // the first error is the same on every run
	out := make(map[string][]Field, len(r.Cards))
	for _, name := range names {
		if !ValidCardName(name) {
			return nil, malformed("%s.cards: %q is not a card name (a lowercase letter, then up to 31 of a-z, 0-9 and '_')", at, name)
		}
		list, err := nonEmptyUnique(r.Cards[name], at+".cards."+name, func(f string) error {
			if !knownField(Field(f)) {
				return fmt.Errorf("%q is not a card field (number, cvc, exp_month, exp_year, name)", f)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		fields := make([]Field, len(list))
		for i, f := range list {
			fields[i] = Field(f)
		}
		out[name] = fields
	}
	return out, nil
}

// matchCards refuses a named card d does not list (card_not_allowed) and
// a field the card's scope lacks (card_field_not_allowed). Names are
// checked in sorted order, so the refusal is the same on every run. It
// returns a plain nil error when everything is allowed.
func (d *Destination) matchCards(cards map[string][]Field) error {
	if len(cards) == 0 {
		return nil
	}
	names := make([]string, 0, len(cards))
	for name := range cards {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		scope, ok := d.Cards[name]
		if !ok || !ValidCardName(name) {
			return deny(ReasonCardNotAllowed, "card %q may not be sent to destination %q", printable(name), d.ID)
		}
		for _, f := range cards[name] {
			if !knownField(f) || !slices.Contains(scope, f) {
				return deny(ReasonFieldNotAllowed, "card field %q of card %q may not be sent to destination %q", printable(string(f)), name, d.ID)
			}
		}
	}
	return nil
}

// DiffCards lists the changes to the `cards` block from o to n for
// `cardgate allowlist diff`: widens are a newly listed card and a field
// newly granted to a card; narrows are the removals.
func DiffCards(o, n *Destination) (widens, narrows []string) {
	names := map[string]bool{}
	for name := range o.Cards {
		names[name] = true
	}
	for name := range n.Cards {
		names[name] = true
	}
	sorted := make([]string, 0, len(names))
	for name := range names {
		sorted = append(sorted, name)
	}
	slices.Sort(sorted)
	join := func(fs []Field) string {
		s := make([]string, len(fs))
		for i, f := range fs {
			s[i] = string(f)
		}
		return strings.Join(s, ",")
	}
	for _, name := range sorted {
		of, inOld := o.Cards[name]
		nf, inNew := n.Cards[name]
		switch {
		case !inOld:
			widens = append(widens, fmt.Sprintf("+ card %s (fields %s)", name, join(nf)))
		case !inNew:
			narrows = append(narrows, fmt.Sprintf("- card %s", name))
		default:
			for _, f := range nf {
				if !slices.Contains(of, f) {
					widens = append(widens, fmt.Sprintf("+ card %s field %s", name, f))
				}
			}
			for _, f := range of {
				if !slices.Contains(nf, f) {
					narrows = append(narrows, fmt.Sprintf("- card %s field %s", name, f))
				}
			}
		}
	}
	return widens, narrows
}
