package forwarder

import (
	"encoding/json"
	"mime"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/cardscan"
)

// Template syntax. A placeholder is "{{", optional spaces, a reference
// (card.FIELD, cards.NAME.FIELD or, in a header, secret.NAME; see
// template_refs.go), optionally "|"
// and a filter (template_filters.go), optional spaces, "}}":
// {{card.number}}, {{ cards.funding.number }}, {{card.exp | MM/YY}}.
// Nothing else may appear between "{{" and "}}", and a "{{" without a "}}"
// is an error. There is no escape for a literal "{{": a template that
// needs one is refused rather than guessed at.
const (
	openDelim  = "{{"
	closeDelim = "}}"
	filterSep  = "|"
)

// placeholder is one occurrence in a slot's text.
type placeholder struct {
	ref        ref
	start, end int // byte offsets of "{{" and just past "}}"
	// bare is set for a JSON body placeholder outside a string; only the
	// numeric expiry fields may stand there and they render as numbers.
	bare bool
}

// bodyKind is how a body is escaped.
type bodyKind int

const (
	bodyOther bodyKind = iota // no placeholders allowed
	bodyJSON                  // application/json, */*+json: JSON string escaping
	bodyForm                  // application/x-www-form-urlencoded: query escaping
	bodyXML                   // application/xml, text/xml, */*+xml: XML escaping (template_xml.go)
)

// slot is one piece of the request that may hold placeholders.
type slot struct {
	text string
	phs  []placeholder
}

// parsePlaceholders finds every placeholder in s. where names the slot for
// messages ("body", "header X-Api-Key"). The message names an unknown
// placeholder only when it is made of letters, '_' and '.', and an
// unknown filter only when safeFilterName allows, so a card number typed
// between braces is never echoed.
func parsePlaceholders(s, where string) ([]placeholder, *Error) {
	var phs []placeholder
	off := 0
	for {
		i := strings.Index(s[off:], openDelim)
		if i < 0 {
			return phs, nil
		}
		start := off + i
		j := strings.Index(s[start+len(openDelim):], closeDelim)
		if j < 0 {
			return nil, notSent(CodeInvalidTemplate, where+": '{{' without a closing '}}'")
		}
		inner := s[start+len(openDelim) : start+len(openDelim)+j]
		end := start + len(openDelim) + j + len(closeDelim)
		r, e := parseInner(inner, where)
		if e != nil {
			return nil, e
		}
		phs = append(phs, placeholder{ref: r, start: start, end: end})
		off = end
	}
}

// parseInner parses the text between "{{" and "}}".
func parseInner(inner, where string) (ref, *Error) {
	refText, filterText, hasFilter := strings.Cut(inner, filterSep)
	name := strings.Trim(refText, " ")
	r, ok := parseRef(name)
	if !ok {
		if strings.HasPrefix(name, secretPrefix) {
			// Not echoed: it matched no grammar.
			return ref{}, notSent(CodeInvalidTemplate, where+": malformed credential placeholder: {{secret.NAME}} takes a credential name (a-z, 0-9, '_', '-')")
		}
		if safeName(name) {
			return ref{}, notSent(CodeInvalidTemplate, where+": unknown placeholder {{"+name+"}}")
		}
		return ref{}, notSent(CodeInvalidTemplate, where+": malformed placeholder")
	}
	// The reference as parsed, for messages (ref.String never shows a
	// card-like name); made only on an error, so parsing stays free of
	// allocations beyond the placeholder list.
	shown := func() string { return ref{ns: r.ns, name: r.name, field: r.field}.String() }
	if hasFilter {
		fname := strings.Trim(filterText, " ")
		f, ok := filterByName(fname)
		if !ok {
			if safeFilterName(fname) {
				return ref{}, notSent(CodeInvalidTemplate, where+": unknown filter "+fname+" in {{"+shown()+"}}; filters: yy, nopad, MMYY, YYMM, MM/YY, MM/YYYY, YYYY-MM, MMYYYY, base64")
			}
			return ref{}, notSent(CodeInvalidTemplate, where+": malformed filter in {{"+shown()+"}}")
		}
		r.filter = f
	}
	if !r.filter.appliesTo(r) {
		switch {
		case r.field == fieldExp && r.filter == filterNone:
			return ref{}, notSent(CodeInvalidTemplate, where+": {{"+shown()+"}} needs a format: {{"+shown()+" | MMYY}}, YYMM, MM/YY, MM/YYYY, YYYY-MM or MMYYYY")
		case r.filter.expFormat():
			return ref{}, notSent(CodeInvalidTemplate, where+": filter "+r.filter.String()+" formats the composite expiry only: {{"+r.nsPrefix()+"exp | "+r.filter.String()+"}}")
		}
		return ref{}, notSent(CodeInvalidTemplate, where+": filter "+r.filter.String()+" does not apply to {{"+shown()+"}} (yy: exp_year; nopad: exp_month)")
	}
	return r, nil
}

func safeName(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// classifyBody decides the escaping from the Content-Type. A body with
// placeholders and any other type (text/plain, none) is refused: we have
// no escaping rule for it, and a name with a newline or '<' could change its
// structure. XML is application/xml, text/xml (SOAP 1.1 sends it, with a
// SOAPAction header) and application/*+xml (SOAP 1.2's
// application/soap+xml among them); its charset, if named, must be UTF-8,
// which is what the gateway writes.
func classifyBody(contentType string) bodyKind {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return bodyOther
	}
	switch {
	case mt == "application/json", strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"):
		return bodyJSON
	case mt == "application/x-www-form-urlencoded":
		return bodyForm
	case mt == "application/xml", mt == "text/xml", strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+xml"):
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return bodyOther
		}
		return bodyXML
	}
	return bodyOther
}

// checkJSONBody marks each placeholder as inside or outside a JSON string
// and checks that the template is valid JSON once every placeholder is
// replaced by a harmless value. A placeholder outside a string is allowed
// only for exp_month and exp_year, with or without the yy and nopad
// filters (rendered as bare numbers); the other fields and the composite
// expiry are refused there, because no escaping makes a name or a card
// number safe as a bare JSON token.
//
// A placeholder right after an unescaped backslash is refused: the
// backslash would escape the first character of the rendered value, so a
// name starting with '"' (escaped as \") would become \\" and close the
// string. The probe writes a neutral 'x' for each in-string placeholder,
// so that it parses what will be sent: a placeholder inside a \u escape
// ("\u00{{card.exp_month}}") then fails the JSON check.
func checkJSONBody(body string, phs []placeholder) *Error {
	inString, escaped := false, false
	k := 0
	var probe strings.Builder
	probe.Grow(len(body))
	for i := 0; i < len(body); {
		if k < len(phs) && i == phs[k].start {
			if !inString {
				if !phs[k].ref.bareNumber() {
					return notSent(CodeInvalidTemplate, "body: "+phs[k].ref.placeholderText()+" must be inside a JSON string")
				}
				phs[k].bare = true
				probe.WriteString("1")
			} else {
				if escaped {
					return notSent(CodeInvalidTemplate, "body: "+phs[k].ref.placeholderText()+" must not follow a backslash")
				}
				// Every rendered value is whole escaped characters, so the
				// scanner's state after it is the state before it.
				probe.WriteByte('x')
			}
			i = phs[k].end
			k++
			continue
		}
		c := body[i]
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		}
		probe.WriteByte(c)
		i++
	}
	if !json.Valid([]byte(probe.String())) {
		return notSent(CodeInvalidTemplate, "body: not valid JSON")
	}
	return nil
}

// fieldValues yields the text a placeholder is replaced with, its filter
// applied: the cards' (cardValues) or, for a dry run, a masked stand-in
// (maskedValues).
// checkFreeFields refuses a card whose fields other than the number, among
// those the template uses, hold a card-like number: an entry allowed the
// name but not the number must not receive a number through the name.
// Tokenize refuses such names; a record stored before it did may hold one.
// It runs before rendering and before the intent record, for the single
// card (fields) and every named card (cards).
func checkFreeFields(fields []allowlist.Field, cards map[string][]allowlist.Field, cv fieldValues) *Error {
	check := func(r ref) *Error {
		if r.field == allowlist.FieldNumber {
			return nil
		}
		s, e := cv.value(r)
		if e != nil || !cardscan.ContainsString(s) {
			return nil // a missing value is render's to report
		}
		if r.field == allowlist.FieldName {
			return notSent(CodeInvalidName, "the card's stored name holds a card-like number; tokenize the card again with the cardholder's name only")
		}
		// The vault validates the CVC and the expiry as short digit
		// strings: a long run in one is a damaged record.
		return newError(CodeInternal, NotSent, "card record holds a card-like number outside the number field", nil)
	}
	for _, fl := range fields {
		if e := check(ref{ns: nsCard, field: fl}); e != nil {
			return e
		}
	}
	for name, fls := range cards {
		for _, fl := range fls {
			if e := check(ref{ns: nsCards, name: name, field: fl}); e != nil {
				return e
			}
		}
	}
	return nil
}

type fieldValues interface {
	value(r ref) (string, *Error)
}

// renderBody appends the body with each placeholder replaced, escaped for
// kind, to dst.
func renderBody(dst []byte, sl slot, kind bodyKind, v fieldValues) ([]byte, *Error) {
	last := 0
	for _, ph := range sl.phs {
		dst = append(dst, sl.text[last:ph.start]...)
		s, e := v.value(ph.ref)
		if e != nil {
			return dst, e
		}
		switch {
		case kind == bodyJSON && ph.bare:
			// Expiry values are digits; a bare JSON number has no leading
			// zero, so "03" is written as 3, and a two-digit year "00"
			// (2100) as 0.
			n := strings.TrimLeft(s, "0")
			if n == "" && s != "" {
				n = "0"
			}
			dst = append(dst, n...)
		case kind == bodyJSON:
			dst = appendJSONStringContent(dst, s)
		case kind == bodyForm:
			dst = append(dst, url.QueryEscape(s)...)
		case kind == bodyXML:
			var ok bool
			next := sl.text[ph.end:]
			guard := strings.HasPrefix(next, "]") || strings.HasPrefix(next, ">")
			if dst, ok = appendXMLEscaped(dst, s, guard); !ok {
				return dst, notSent(CodeInvalidTemplate, "body: "+ph.ref.placeholderText()+" holds a character XML 1.0 cannot carry")
			}
		default:
			return dst, notSent(CodeInternal, "unsupported body type")
		}
		last = ph.end
	}
	return append(dst, sl.text[last:]...), nil
}

// bodyBound is an upper bound on the size renderBody writes for sl: an
// escape at most sextuples a value (one byte becomes \u00XX in JSON, %XX in
// a form, &quot; in XML). A value that cannot be read adds nothing;
// renderBody reports it.
func bodyBound(sl slot, v fieldValues) int {
	n := len(sl.text)
	for _, ph := range sl.phs {
		s, _ := v.value(ph.ref)
		n += 6 * len(s)
	}
	return n
}

// renderHeader returns the header value with placeholders replaced. The
// result must still be a valid header value: CR, LF, NUL and other control
// characters are refused, not escaped, so a value can never split a header.
func renderHeader(sl slot, name string, v fieldValues) (string, *Error) {
	if len(sl.phs) == 0 {
		return sl.text, nil
	}
	var b strings.Builder
	last := 0
	for _, ph := range sl.phs {
		b.WriteString(sl.text[last:ph.start])
		s, e := v.value(ph.ref)
		if e != nil {
			return "", e
		}
		b.WriteString(s)
		last = ph.end
	}
	b.WriteString(sl.text[last:])
	out := b.String()
	if !validHeaderValue(out) {
		return "", notSent(CodeInvalidTemplate, "header "+name+": rendered value contains characters not allowed in a header")
	}
	return out, nil
}

// appendJSONStringContent appends s escaped for the inside of a JSON string
// (no surrounding quotes). Invalid UTF-8 becomes U+FFFD; U+2028 and U+2029
// are escaped so the result is also safe inside JavaScript.
func appendJSONStringContent(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20 || c == 0x7f:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, `\ufffd`...)
		case r == '\u2028':
			dst = append(dst, `\u2028`...)
		case r == '\u2029':
			dst = append(dst, `\u2029`...)
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return dst
}

// validHeaderValue reports whether v is a field value per RFC 9110 §5.5:
// visible ASCII, obs-text, space and tab; no CR, LF, NUL or other controls.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// validHeaderName reports whether n is an RFC 9110 token.
func validHeaderName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
