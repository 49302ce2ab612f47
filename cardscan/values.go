package cardscan

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/url"
	"strings"
)

// errValue is SpanValue's one error: its causes would quote the body.
var errValue = errors.New("cardscan: the value does not decode")

// SpanValue returns the value a span of body holds, decoded as its kind
// says: a JSON string unescaped, a JSON number as written, XML text with
// its references expanded and CDATA sections unwrapped, an attribute value
// as an XML parser reads it, a form value percent-decoded. body and sp
// must come from one FindSpans call. The result is a Go string, which
// cannot be wiped; call it only for values that must leave as strings
// anyway (a returned card on its way to the vault).
func SpanValue(body []byte, sp Span) (string, error) {
	if sp.Start < 0 || sp.End < sp.Start || sp.End > len(body) {
		return "", errValue
	}
	raw := body[sp.Start:sp.End]
	switch sp.Kind {
	case ValueJSONString:
		if sp.Start == 0 || sp.End == len(body) {
			return "", errValue
		}
		var s string
		if err := json.Unmarshal(body[sp.Start-1:sp.End+1], &s); err != nil {
			return "", errValue
		}
		return s, nil
	case ValueJSONNumber:
		return string(raw), nil
	case ValueXMLText:
		return xmlText(raw)
	case ValueXMLAttr:
		if sp.Start == 0 {
			return "", errValue
		}
		q := body[sp.Start-1]
		doc := make([]byte, 0, len(raw)+8)
		doc = append(append(append(append(doc, "<v a="...), q), raw...), q)
		doc = append(doc, "/>"...)
		defer clear(doc)
		dec := xml.NewDecoder(bytes.NewReader(doc))
		dec.Strict = true
		tok, err := dec.Token()
		if se, ok := tok.(xml.StartElement); err == nil && ok && len(se.Attr) == 1 {
			return se.Attr[0].Value, nil
		}
		return "", errValue
	case ValueForm:
		s, err := url.QueryUnescape(string(raw))
		if err != nil {
			return "", errValue
		}
		return s, nil
	}
	return "", errValue
}

// xmlText decodes an element's character-data content.
func xmlText(raw []byte) (string, error) {
	doc := make([]byte, 0, len(raw)+7)
	doc = append(append(append(doc, "<v>"...), raw...), "</v>"...)
	defer clear(doc)
	dec := xml.NewDecoder(bytes.NewReader(doc))
	dec.Strict = true
	var sb strings.Builder
	for depth := 0; ; {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return sb.String(), nil
		}
		if err != nil {
			return "", errValue
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth++; depth > 1 {
				return "", errValue
			}
		case xml.EndElement:
			depth--
		case xml.CharData:
			sb.Write(t)
		default:
			return "", errValue
		}
	}
}
