// Body rules: an entry's `body` block. Today it holds one rule, the
// DOCTYPE an XML request body may carry:
//
//	body:
//	  doctype: '<!DOCTYPE paymentService PUBLIC "-//Worldpay//DTD Worldpay PaymentService v1//EN" "http://dtd.worldpay.com/paymentService_v1.dtd">'

package allowlist

import (
	"fmt"
	"regexp"
)

// Body holds the rules an entry sets for the request body.
type Body struct {
	// Doctype is the one DOCTYPE declaration an XML body template may
	// carry, compared byte for byte. Empty means an XML body may carry
	// none. It never has an internal subset (so no entity declarations):
	// only a name and an external identifier, which the gateway never
	// fetches.
	Doctype string `yaml:"doctype"`
}

type rawBody struct {
	Doctype *string `yaml:"doctype"`
}

// MaxDoctypeBytes bounds body.doctype.
const MaxDoctypeBytes = 1024

// reDoctype is a DOCTYPE declaration without an internal subset: a name,
// then nothing, a PUBLIC pubid and system literal, or a SYSTEM literal,
// single spaces between. Literals hold no quotes of their kind, no
// brackets and no angle brackets, so nothing in one can open a subset or
// close the declaration.
var reDoctype = regexp.MustCompile(`^<!DOCTYPE [A-Za-z_][A-Za-z0-9._:-]*` +
	`(?: PUBLIC (?:"[ -!#-;=?-Z^-~]*"|'[ -&(-;=?-Z^-~]*') (?:"[ -!#-;=?-Z^-~]*"|'[ -&(-;=?-Z^-~]*')` +
	`| SYSTEM (?:"[ -!#-;=?-Z^-~]*"|'[ -&(-;=?-Z^-~]*'))?>$`)

// ValidDoctype reports whether s is a DOCTYPE declaration body.doctype
// accepts.
func ValidDoctype(s string) bool {
	return len(s) <= MaxDoctypeBytes && reDoctype.MatchString(s)
}

func (r *rawDestination) body(at string) (*Body, error) {
	if r.Body == nil {
		return nil, nil
	}
	b := &Body{}
	if r.Body.Doctype != nil {
		if !ValidDoctype(*r.Body.Doctype) {
			return nil, malformed("%s.body.doctype: must be one <!DOCTYPE name PUBLIC \"pubid\" \"uri\"> (or SYSTEM \"uri\", or the name alone) declaration of at most %d bytes, without an internal subset", at, MaxDoctypeBytes)
		}
		b.Doctype = *r.Body.Doctype
	}
	if *b == (Body{}) {
		return nil, malformed("%s.body: sets no rule; remove the block", at)
	}
	return b, nil
}

// DiffBody lists the changes to the `body` block from o to n for
// `cardgate allowlist diff`: a new or changed DOCTYPE widens (it lets a
// template carry a declaration it could not before); a removed one
// narrows.
func DiffBody(o, n *Destination) (widens, narrows []string) {
	od, nd := doctype(o), doctype(n)
	switch {
	case od == nd:
	case nd == "":
		narrows = append(narrows, fmt.Sprintf("- body doctype %s", od))
	default:
		widens = append(widens, fmt.Sprintf("~ body doctype %s -> %s", orNone(od), nd))
	}
	return widens, narrows
}

func doctype(d *Destination) string {
	if d.Body == nil {
		return ""
	}
	return d.Body.Doctype
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
