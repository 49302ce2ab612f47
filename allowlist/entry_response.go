// An entry's rules for identifiers and returned cards: which values of a
// request may hold an identifier that looks like a card number, which
// values of an answer are kept although they look like card numbers, and
// which are card numbers to tokenize. The paths are cardscan's, so that
// the forwarder applies exactly what the auditors signed.

package allowlist

import (
	"fmt"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/cardgate/cardgate/cardscan"
)

// ResponseRules are what an entry lets the gateway do with a processor's
// answer besides masking every card number in it. Each rule widens what a
// caller sees, so `cardgate allowlist diff` marks every new one WIDENS.
type ResponseRules struct {
	// Identifiers select values that are processor identifiers (an ARN,
	// a network transaction id, an authorization code): their digit runs
	// are not masked. The card the forward sent, and its CVC, are masked
	// in them all the same.
	Identifiers []cardscan.Path
	// ReturnedCards select card numbers the processor returns (an
	// account updater's new number, a network token): each is tokenized
	// into the vault with its expiry, and the caller gets the token
	// instead of the number.
	ReturnedCards []ReturnedCardRule
}

// ReturnedCardRule names where one returned card's number and expiry are.
// ExpMonth and ExpYear are siblings of Number (cardscan.SameParent), so
// that each number pairs with the expiry in its own object or element.
type ReturnedCardRule struct {
	Number, ExpMonth, ExpYear cardscan.Path
}

// String is the rule as a reviewer reads it.
func (r ReturnedCardRule) String() string {
	return "number " + r.Number.String() + ", exp_month " + r.ExpMonth.String() + ", exp_year " + r.ExpYear.String()
}

func (r ReturnedCardRule) equal(q ReturnedCardRule) bool {
	return r.Number.Equal(q.Number) && r.ExpMonth.Equal(q.ExpMonth) && r.ExpYear.Equal(q.ExpYear)
}

type rawResponse struct {
	Identifiers   []string          `yaml:"identifiers"`
	ReturnedCards []rawReturnedCard `yaml:"returned_cards"`
}

// rawReturnedCard is one returned_cards item. It decodes itself so that the
// checks, which know the entry, can explain a plain path or an unknown key
// instead of a YAML type error.
type rawReturnedCard struct {
	number, expMonth, expYear *string
	line                      int
	notMapping                bool
	unknown                   string // the first unknown key
	nonScalar                 string // the first key whose value is not a plain value
}

func (r *rawReturnedCard) UnmarshalYAML(n *yaml.Node) error {
	r.line = n.Line
	if n.Kind != yaml.MappingNode {
		r.notMapping = true
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		var dst **string
		switch k {
		case "number":
			dst = &r.number
		case "exp_month":
			dst = &r.expMonth
		case "exp_year":
			dst = &r.expYear
		default:
			if r.unknown == "" {
				r.unknown = k
			}
			continue
		}
		if v.Kind != yaml.ScalarNode {
			if r.nonScalar == "" {
				r.nonScalar = k
			}
			continue
		}
		s := v.Value
		*dst = &s
	}
	return nil
}

// parsePaths parses a list of paths for field, refusing more than
// cardscan.MaxPaths and a path listed twice (in any spelling).
func parsePaths(list []string, field string) ([]cardscan.Path, error) {
	if len(list) > cardscan.MaxPaths {
		return nil, malformed("%s: %d paths, more than the limit of %d", field, len(list), cardscan.MaxPaths)
	}
	var out []cardscan.Path
	for i, s := range list {
		p, err := cardscan.ParsePath(s)
		if err != nil {
			return nil, malformed("%s[%d]: %q: %v", field, i, s, err)
		}
		for _, q := range out {
			if q.Equal(p) {
				return nil, malformed("%s[%d]: %q selects the same values as %q", field, i, s, q.String())
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// responseRules checks the entry's request_identifiers and response block
// and sets them on d. at names the entry.
func (r *rawDestination) responseRules(d *Destination, at string) error {
	var err error
	if d.RequestIdentifiers, err = parsePaths(r.RequestIdentifiers, at+".request_identifiers"); err != nil {
		return err
	}
	if r.Response == nil {
		return nil
	}
	at += ".response"
	if len(r.Response.Identifiers) == 0 && len(r.Response.ReturnedCards) == 0 {
		return malformed("%s: list identifiers or returned_cards, or leave the block out", at)
	}
	rules := &ResponseRules{}
	if rules.Identifiers, err = parsePaths(r.Response.Identifiers, at+".identifiers"); err != nil {
		return err
	}
	if len(r.Response.ReturnedCards) > cardscan.MaxReturnedCards {
		return malformed("%s.returned_cards: %d entries, more than the limit of %d", at, len(r.Response.ReturnedCards), cardscan.MaxReturnedCards)
	}
	for i := range r.Response.ReturnedCards {
		rc, err := r.Response.ReturnedCards[i].rule(fmt.Sprintf("%s.returned_cards[%d]", at, i))
		if err != nil {
			return err
		}
		for _, p := range []cardscan.Path{rc.Number, rc.ExpMonth, rc.ExpYear} {
			for _, id := range rules.Identifiers {
				if id.Equal(p) {
					return malformed("%s.returned_cards[%d]: %q is also listed in identifiers; a value is either kept or tokenized", at, i, p.String())
				}
			}
		}
		for j, prev := range rules.ReturnedCards {
			if prev.Number.Equal(rc.Number) {
				return malformed("%s.returned_cards[%d]: number %q is already returned_cards[%d]'s", at, i, rc.Number.String(), j)
			}
		}
		rules.ReturnedCards = append(rules.ReturnedCards, rc)
	}
	d.Response = rules
	return nil
}

// rule checks one returned_cards item.
func (r *rawReturnedCard) rule(at string) (ReturnedCardRule, error) {
	at = "line " + strconv.Itoa(r.line) + ": " + at
	switch {
	case r.notMapping:
		return ReturnedCardRule{}, malformed("%s: write number, exp_month and exp_year paths, one key per line: the vault stores a card only with its expiry", at)
	case r.unknown != "":
		return ReturnedCardRule{}, malformed("%s: unknown key %q (number, exp_month, exp_year)", at, r.unknown)
	case r.nonScalar != "":
		return ReturnedCardRule{}, malformed("%s.%s: must be one path", at, r.nonScalar)
	}
	var rc ReturnedCardRule
	for _, f := range []struct {
		name string
		raw  *string
		dst  *cardscan.Path
	}{{"number", r.number, &rc.Number}, {"exp_month", r.expMonth, &rc.ExpMonth}, {"exp_year", r.expYear, &rc.ExpYear}} {
		if f.raw == nil || *f.raw == "" {
			return ReturnedCardRule{}, malformed("%s.%s: is required", at, f.name)
		}
		p, err := cardscan.ParsePath(*f.raw)
		if err != nil {
			return ReturnedCardRule{}, malformed("%s.%s: %q: %v", at, f.name, *f.raw, err)
		}
		*f.dst = p
	}
	for _, e := range []struct {
		name string
		p    cardscan.Path
	}{{"exp_month", rc.ExpMonth}, {"exp_year", rc.ExpYear}} {
		if !cardscan.SameParent(rc.Number, e.p) {
			return ReturnedCardRule{}, malformed("%s.%s: %q must be a sibling of number %q (the same path but for its last step, and of the same kind)", at, e.name, e.p.String(), rc.Number.String())
		}
		if e.p.Equal(rc.Number) {
			return ReturnedCardRule{}, malformed("%s.%s: %q is the number's own path", at, e.name, e.p.String())
		}
	}
	if rc.ExpMonth.Equal(rc.ExpYear) {
		return ReturnedCardRule{}, malformed("%s: exp_month and exp_year are the same path %q", at, rc.ExpMonth.String())
	}
	return rc, nil
}

// RuleChange is one difference in response rules between two versions of
// an entry, as `cardgate allowlist diff` prints it.
type RuleChange struct {
	Text   string
	Widens bool
}

// DiffResponseRules lists how n's identifier and returned-card rules differ
// from o's. A new rule widens (a value is kept, a request field accepted,
// or a card tokenized where it was masked or refused); a removed one
// narrows. Paths are compared by what they select, not by spelling. For a
// new entry, pass the zero Destination as o.
func DiffResponseRules(o, n *Destination) []RuleChange {
	var c []RuleChange
	paths := func(name string, oldL, newL []cardscan.Path) {
		for _, p := range newL {
			if !containsPath(oldL, p) {
				c = append(c, RuleChange{"+ " + name + " " + p.String(), true})
			}
		}
		for _, p := range oldL {
			if !containsPath(newL, p) {
				c = append(c, RuleChange{"- " + name + " " + p.String(), false})
			}
		}
	}
	paths("request identifier", o.RequestIdentifiers, n.RequestIdentifiers)
	var oldR, newR ResponseRules
	if o.Response != nil {
		oldR = *o.Response
	}
	if n.Response != nil {
		newR = *n.Response
	}
	paths("response identifier", oldR.Identifiers, newR.Identifiers)
	for _, r := range newR.ReturnedCards {
		if !containsRule(oldR.ReturnedCards, r) {
			c = append(c, RuleChange{"+ returned card (tokenized) " + r.String(), true})
		}
	}
	for _, r := range oldR.ReturnedCards {
		if !containsRule(newR.ReturnedCards, r) {
			c = append(c, RuleChange{"- returned card " + r.String(), false})
		}
	}
	return c
}

// ResponseRuleNotes lists, for `cardgate allowlist show`, the rules a
// reviewer must notice in d.
func ResponseRuleNotes(d *Destination) []string {
	var n []string
	if k := len(d.RequestIdentifiers); k > 0 {
		n = append(n, fmt.Sprintf("%d request identifier path(s)", k))
	}
	if d.Response != nil && len(d.Response.Identifiers) > 0 {
		n = append(n, fmt.Sprintf("%d response identifier path(s) kept", len(d.Response.Identifiers)))
	}
	if d.Response != nil && len(d.Response.ReturnedCards) > 0 {
		n = append(n, fmt.Sprintf("%d returned card(s) tokenized", len(d.Response.ReturnedCards)))
	}
	return n
}

func containsPath(l []cardscan.Path, p cardscan.Path) bool {
	for _, q := range l {
		if q.Equal(p) {
			return true
		}
	}
	return false
}

func containsRule(l []ReturnedCardRule, r ReturnedCardRule) bool {
	for _, q := range l {
		if q.equal(r) {
			return true
		}
	}
	return false
}
