package forwarder

import (
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/cardscan"
)

// XML bodies (application/xml, text/xml, application/*+xml; SOAP 1.1 and
// 1.2 envelopes are XML with nothing special to us).
//
// A placeholder may stand only in element text and in a quoted attribute
// value, where appendXMLEscaped makes any value plain character data. It
// is refused in a tag or attribute name, a comment, a CDATA section (where
// no escape is decoded, and "]]>" would end the section), a processing
// instruction and a declaration.
//
// The template must be well-formed once every placeholder is replaced by
// a neutral probe, with one root element and nothing but white space,
// comments, the leading XML declaration and at most one DOCTYPE around it.
// Refused outright: entity declarations, an internal DTD subset (the
// places where entities, and billion-laughs expansions, are defined), any
// declaration but DOCTYPE, and every processing instruction but the XML
// declaration at the very start. A DOCTYPE is accepted only when it is
// byte for byte the one the matched entry's body.doctype names, which is
// checked after the allowlist match (checkBody).
//
// External DTDs are never fetched: encoding/xml, the only XML reader here,
// has no DTD processing and no network access at all; it returns a
// DOCTYPE as an opaque directive. (TestXMLDoctypeNeverFetched holds it to
// that.) The processor's parser may fetch one; that is why a DOCTYPE
// needs an auditor's approval in the entry.

// xmlState is where the lexical scan of a template stands.
type xmlState uint8

const (
	xsText    xmlState = iota // character data
	xsTag                     // inside <…>, outside quotes: names
	xsAttr                    // inside a quoted attribute value
	xsComment                 // <!-- … -->
	xsCDATA                   // <![CDATA[ … ]]>
	xsPI                      // <? … ?>
	xsDecl                    // <!DOCTYPE …> and other declarations
)

// where names a state for messages.
func (s xmlState) where() string {
	switch s {
	case xsTag:
		return "a tag or attribute name"
	case xsComment:
		return "a comment"
	case xsCDATA:
		return "a CDATA section"
	case xsPI:
		return "a processing instruction"
	case xsDecl:
		return "a DOCTYPE or other declaration"
	}
	return "element text"
}

// end is how a comment, CDATA section or processing instruction ends.
func (s xmlState) end() string {
	switch s {
	case xsComment:
		return "-->"
	case xsCDATA:
		return "]]>"
	}
	return "?>"
}

// xmlProbe replaces a placeholder when the template is parsed: plain
// character data in text and in attribute values.
const xmlProbe = "x"

// checkXMLBody checks an XML template (see the comment at the top of this
// file) and returns its DOCTYPE declaration, "" if it has none.
func checkXMLBody(body string, phs []placeholder) (string, *Error) {
	if strings.Contains(body, "<!ENTITY") {
		return "", notSent(CodeInvalidTemplate, "body: XML entity declarations are not allowed")
	}
	ctx, e := xmlContexts(body, phs)
	if e != nil {
		return "", e
	}
	var probe strings.Builder
	probe.Grow(len(body))
	offs := make([]int, len(phs)) // each placeholder's offset in the probe
	last := 0
	for i, ph := range phs {
		probe.WriteString(body[last:ph.start])
		offs[i] = probe.Len()
		probe.WriteString(xmlProbe)
		last = ph.end
	}
	probe.WriteString(body[last:])
	return checkXMLProbe(probe.String(), phs, ctx, offs)
}

// xmlContexts finds the state each placeholder stands in, refusing every
// state but text and attribute value.
func xmlContexts(body string, phs []placeholder) ([]xmlState, *Error) {
	ctx := make([]xmlState, len(phs))
	state := xsText
	var quote byte
	brackets := 0
	k := 0
	for i := 0; i < len(body); {
		if k < len(phs) && i == phs[k].start {
			if state != xsText && state != xsAttr {
				return nil, notSent(CodeInvalidTemplate, "body: "+phs[k].ref.placeholderText()+" is in "+state.where()+"; placeholders may stand only in element text or in a quoted attribute value")
			}
			ctx[k] = state
			i = phs[k].end
			k++
			continue
		}
		c := body[i]
		rest := body[i:]
		switch state {
		case xsText:
			if c == '<' {
				switch {
				case strings.HasPrefix(rest, "<!--"):
					state, i = xsComment, i+4
					continue
				case strings.HasPrefix(rest, "<![CDATA["):
					state, i = xsCDATA, i+9
					continue
				case strings.HasPrefix(rest, "<?"):
					state, i = xsPI, i+2
					continue
				case strings.HasPrefix(rest, "<!"):
					state, i, quote, brackets = xsDecl, i+2, 0, 0
					continue
				}
				state = xsTag
			}
		case xsTag:
			switch c {
			case '"', '\'':
				state, quote = xsAttr, c
			case '>':
				state = xsText
			}
		case xsAttr:
			if c == quote {
				state = xsTag
			}
		case xsComment, xsCDATA, xsPI:
			if end := state.end(); strings.HasPrefix(rest, end) {
				state, i = xsText, i+len(end)
				continue
			}
		case xsDecl:
			switch {
			case quote != 0:
				if c == quote {
					quote = 0
				}
			case c == '"' || c == '\'':
				quote = c
			case c == '[':
				brackets++
			case c == ']':
				brackets--
			case c == '>' && brackets <= 0:
				state = xsText
			}
		}
		i++
	}
	return ctx, nil
}

// checkXMLProbe parses the probe with encoding/xml, strictly, and checks
// what the lexical scan decided against the parser's tokens: each
// placeholder's probe must lie in character data that is not a CDATA
// section (text) or in a start tag (attribute value).
func checkXMLProbe(probe string, phs []placeholder, ctx []xmlState, offs []int) (string, *Error) {
	malformed := func(err error) (string, *Error) {
		msg := "body: not well-formed XML"
		var se *xml.SyntaxError
		if errors.As(err, &se) {
			// The line only: the parser's text can quote the template.
			msg += " (line " + strconv.Itoa(se.Line) + ")"
		}
		return "", notSent(CodeInvalidTemplate, msg)
	}
	refuse := func(msg string) (string, *Error) { return "", notSent(CodeInvalidTemplate, "body: "+msg) }

	dec := xml.NewDecoder(strings.NewReader(probe))
	dec.Strict = true
	// No CharsetReader: a declared encoding other than UTF-8 is an error.
	// No Entity map: only the five predefined entities and character
	// references are known; any other reference is an error.
	var doctype string
	depth, roots, k := 0, 0, 0
	for {
		start := int(dec.InputOffset())
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return malformed(err)
		}
		end := int(dec.InputOffset())
		raw := probe[start:end]
		// The placeholders inside this token, and what kind of token each
		// must be in.
		for ; k < len(offs) && offs[k] < end; k++ {
			if offs[k] < start {
				return refuse(phs[k].ref.placeholderText() + " is not where the XML parser reads text or an attribute value")
			}
			switch ctx[k] {
			case xsText:
				if _, ok := tok.(xml.CharData); !ok || strings.HasPrefix(raw, "<![CDATA[") {
					return refuse(phs[k].ref.placeholderText() + " is not in element text")
				}
			case xsAttr:
				if _, ok := tok.(xml.StartElement); !ok {
					return refuse(phs[k].ref.placeholderText() + " is not in an attribute value")
				}
			}
		}
		switch t := tok.(type) {
		case xml.ProcInst:
			if t.Target != "xml" || start != 0 {
				return refuse("processing instructions are not allowed (only the XML declaration, at the very start)")
			}
		case xml.Directive:
			switch {
			case !strings.HasPrefix(raw, "<!DOCTYPE") || len(raw) < 11 || !isXMLSpace(raw[9]):
				return refuse("declarations other than DOCTYPE are not allowed")
			case strings.ContainsAny(raw, "[]"):
				return refuse("a DOCTYPE with an internal subset is not allowed")
			case doctype != "":
				return refuse("more than one DOCTYPE")
			case roots > 0:
				return refuse("the DOCTYPE must come before the root element")
			}
			doctype = raw
		case xml.StartElement:
			if depth == 0 {
				if roots++; roots > 1 {
					return refuse("more than one root element")
				}
			}
			depth++
			for i, a := range t.Attr {
				for _, b := range t.Attr[:i] {
					if a.Name == b.Name {
						return refuse("an attribute appears twice in one element")
					}
				}
				if cardscan.ContainsString(a.Value) {
					return "", notSent(CodeLiteralCard, "body: contains what looks like a card number; send a token and a placeholder instead")
				}
			}
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && strings.Trim(string(t), " \t\r\n") != "" {
				return refuse("text outside the root element")
			}
			// Decoded: a card spelled in character references is a card.
			if cardscan.Contains(t) {
				return "", notSent(CodeLiteralCard, "body: contains what looks like a card number; send a token and a placeholder instead")
			}
		}
	}
	if roots == 0 {
		return refuse("no root element")
	}
	return doctype, nil
}

func isXMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// checkBody runs the body checks that need the matched entry: an XML
// body's DOCTYPE must be the one the entry names, byte for byte.
func (v *validated) checkBody(d *allowlist.Destination) *Error {
	if v.bodyKind != bodyXML || v.doctype == "" {
		return nil
	}
	if d.Body == nil || d.Body.Doctype == "" {
		return notSent(CodeInvalidTemplate, "body: the destination's allowlist entry allows no DOCTYPE; remove it")
	}
	if v.doctype != d.Body.Doctype {
		return notSent(CodeInvalidTemplate, "body: the DOCTYPE is not the one the destination's allowlist entry names (body.doctype); copy it exactly")
	}
	return nil
}

// appendXMLEscaped appends s escaped as XML character data, safe both in
// element text and in a quoted attribute value, and reports false when s
// holds a character XML 1.0 cannot carry at all (most C0 controls,
// U+FFFE, U+FFFF), even as a character reference. The markup characters
// become entities; tab, LF and CR become character references, so that
// neither end-of-line handling nor attribute-value normalization changes
// them. Invalid UTF-8 becomes U+FFFD, as in JSON.
//
// "]]>" may not appear in text. With '>' always escaped, a value can only
// help form it at its end, when the template goes on with ']' or '>':
// guardEnd says so, and a final ']' is then written as a reference.
func appendXMLEscaped(dst []byte, s string, guardEnd bool) ([]byte, bool) {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch c {
			case '&':
				dst = append(dst, "&amp;"...)
			case '<':
				dst = append(dst, "&lt;"...)
			case '>':
				dst = append(dst, "&gt;"...)
			case '"':
				dst = append(dst, "&quot;"...)
			case '\'':
				dst = append(dst, "&apos;"...)
			case ']':
				if guardEnd && i == len(s)-1 {
					dst = append(dst, "&#93;"...)
				} else {
					dst = append(dst, c)
				}
			case '\t':
				dst = append(dst, "&#9;"...)
			case '\n':
				dst = append(dst, "&#10;"...)
			case '\r':
				dst = append(dst, "&#13;"...)
			default:
				if c < 0x20 {
					return dst, false
				}
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, "\uFFFD"...)
		case r == 0xFFFE || r == 0xFFFF:
			return dst, false
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return dst, true
}
