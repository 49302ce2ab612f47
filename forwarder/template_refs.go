package forwarder

import (
	"strings"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/cardscan"
)

// What a placeholder names. The text between "{{" and "}}" is
//
//	REF [ "|" FILTER ]        spaces allowed around each part
//
// where REF is one of
//
//	card.FIELD                the request's "card"
//	cards.NAME.FIELD          the card called NAME in the request's "cards"
//
// FIELD is an allowlist field (number, cvc, exp_month, exp_year, name) or
// exp, the composite expiry, which reads exp_month and exp_year and must
// carry a format filter (template_filters.go). NAME follows
// allowlist.ValidCardName.
//
// Adding a namespace (the secret helper's {{secret.NAME}}, for one) takes
// four small steps, all in this package:
//  1. a namespace constant below and a case in parseRef that fills ns and
//     name (and leaves field empty);
//  2. a case in ref.String, for messages and the dry run ("secret.NAME",
//     shown as "[secret.NAME]");
//  3. a case in ref.allowedIn saying which slots may hold it (a secret:
//     header values only; validate refuses it elsewhere as
//     invalid_template);
//  4. its values: cardValues.value answers card namespaces only, so the
//     send path renders with a fieldValues that routes r.ns to the new
//     source (say, a struct holding cardValues and the granted secrets,
//     whose value switches on r.ns and applies a filter such as base64
//     to the secret); maskedValues (the dry run) needs nothing beyond
//     ref.String.
//
// ref.fields returns no allowlist fields for a namespace that is not a
// card's, so such a placeholder adds nothing to what Match is asked,
// scopeCards skips it (after allowedIn), and checkHeaderSlots, which
// ties card placeholders to the entry's card_headers, ignores it.

// namespace is the part of a placeholder before the first '.'.
type namespace uint8

const (
	nsCard   namespace = iota + 1 // card.FIELD
	nsCards                       // cards.NAME.FIELD
	nsSecret                      // secret.NAME: a gateway credential (secrets.go)
)

// fieldExp is the composite expiry. It is not an allowlist field: ref.fields
// expands it to exp_month and exp_year, which the entry must both allow.
const fieldExp allowlist.Field = "exp"

// ref is what one placeholder names, with its filter.
type ref struct {
	ns namespace
	// name is the card's name for nsCards (a namespace of named values
	// such as secrets uses it for the value's name); "" otherwise.
	name   string
	field  allowlist.Field // nsCard, nsCards: an allowlist field or fieldExp
	filter filter
}

// slotKind is the kind of slot a placeholder stands in.
type slotKind uint8

const (
	slotHeader slotKind = iota + 1 // a header value
	slotBody                       // the body
)

// parseRef parses REF (spaces already trimmed). It reports false for
// anything it does not know; the caller decides how much of it to echo.
func parseRef(s string) (ref, bool) {
	ns, rest, ok := strings.Cut(s, ".")
	if !ok {
		return ref{}, false
	}
	switch ns {
	case "card":
		if f, ok := templateField(rest); ok {
			return ref{ns: nsCard, field: f}, true
		}
	case "cards":
		name, field, ok := strings.Cut(rest, ".")
		if !ok || !allowlist.ValidCardName(name) {
			return ref{}, false
		}
		if f, ok := templateField(field); ok {
			return ref{ns: nsCards, name: name, field: f}, true
		}
	case "secret":
		if allowlist.ValidCredentialName(rest) {
			return ref{ns: nsSecret, name: rest}, true
		}
	}
	return ref{}, false
}

// templateField maps the name after "card." (or "cards.NAME.") to the
// allowlist field, or to fieldExp. The allowlist's vocabulary is the only
// vocabulary, plus the composite expiry.
func templateField(name string) (allowlist.Field, bool) {
	switch f := allowlist.Field(name); f {
	case allowlist.FieldNumber, allowlist.FieldCVC, allowlist.FieldExpMonth, allowlist.FieldExpYear, allowlist.FieldName, fieldExp:
		return f, true
	}
	return "", false
}

// String spells r for messages and the dry run: "card.number",
// "cards.primary.exp|MMYY". Every part was checked against a grammar of
// letters, digits and '_' (filters add '/' and '-'); a name holding a
// card-like digit run, which the grammar admits, is shown as "…".
func (r ref) String() string {
	var s string
	switch r.ns {
	case nsCard:
		s = "card." + string(r.field)
	case nsCards:
		s = "cards." + shownName(r.name) + "." + string(r.field)
	case nsSecret:
		// No filter: a dry run shows "[secret.NAME]" whatever the
		// filter, and a message needs no more.
		return "secret." + r.name
	default:
		s = "?"
	}
	if r.filter != filterNone {
		s += "|" + r.filter.String()
	}
	return s
}

// nsPrefix is r's reference up to its field: "card." or "cards.NAME.".
func (r ref) nsPrefix() string {
	if r.ns == nsCards {
		return "cards." + shownName(r.name) + "."
	}
	return "card."
}

// shownName is a card name as messages show it: itself, or "…" when it
// holds a run of digits that could be a card number.
func shownName(name string) string {
	if cardscan.ContainsAnyWindow(name) {
		return "…"
	}
	return name
}

// placeholderText is r as a placeholder, for messages.
func (r ref) placeholderText() string { return openDelim + r.String() + closeDelim }

// isCard reports whether r names a card field.
func (r ref) isCard() bool { return r.ns == nsCard || r.ns == nsCards }

// fields returns the allowlist fields r reads: none for a namespace that
// is not a card's, exp_month and exp_year for the composite expiry.
func (r ref) fields() []allowlist.Field {
	switch {
	case !r.isCard():
		return nil
	case r.field == fieldExp:
		return []allowlist.Field{allowlist.FieldExpMonth, allowlist.FieldExpYear}
	}
	return []allowlist.Field{r.field}
}

// allowedIn reports whether r may stand in a slot of kind k. Card fields
// may stand in every slot the template allows (the URL allows none).
func (r ref) allowedIn(k slotKind) bool {
	if r.ns == nsSecret {
		// A body, URL or query may be logged, echoed or stored by the
		// processor where a header usually is not.
		return k == slotHeader
	}
	return r.isCard() && (k == slotHeader || k == slotBody)
}

// bareNumber reports whether r may stand outside a JSON string, as a
// number: only the expiry month and year, whose values are digits.
func (r ref) bareNumber() bool {
	return r.isCard() && (r.field == allowlist.FieldExpMonth || r.field == allowlist.FieldExpYear)
}
