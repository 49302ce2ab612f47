package cardscan

import (
	"cmp"
	"mime"
	"slices"
	"strconv"
	"strings"
)

// BodyKind is how a body is read to find the values that paths select.
type BodyKind uint8

// Body kinds. BodyOther is read as bytes only: no path selects anything in
// it, so nothing in it is exempt from masking.
const (
	BodyOther BodyKind = iota
	BodyJSON
	BodyXML
	BodyForm
)

func (k BodyKind) String() string {
	switch k {
	case BodyJSON:
		return "json"
	case BodyXML:
		return "xml"
	case BodyForm:
		return "form"
	}
	return "other"
}

// pathKind is the kind of path that applies to a body of kind k.
func (k BodyKind) pathKind() PathKind {
	switch k {
	case BodyJSON:
		return PathJSON
	case BodyXML:
		return PathXML
	case BodyForm:
		return PathForm
	}
	return 0
}

// MediaKind returns the kind of a body from its Content-Type value:
// application/json and application/*+json are JSON; application/xml,
// text/xml and application/*+xml (SOAP 1.2's application/soap+xml among
// them) are XML; application/x-www-form-urlencoded is a form. Anything
// else, a malformed value and a charset other than UTF-8 (or US-ASCII)
// are BodyOther: a body read in another encoding than the one it is
// written in could select the wrong bytes.
func MediaKind(contentType string) BodyKind {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return BodyOther
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "us-ascii") {
		return BodyOther
	}
	switch {
	case mt == "application/json", strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"):
		return BodyJSON
	case mt == "application/xml", mt == "text/xml", strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+xml"):
		return BodyXML
	case mt == "application/x-www-form-urlencoded":
		return BodyForm
	}
	return BodyOther
}

// ValueKind says how a span's bytes are written.
type ValueKind uint8

// Value kinds.
const (
	// ValueJSONString: the bytes between a JSON string's quotes, escapes
	// as written.
	ValueJSONString ValueKind = iota + 1
	// ValueJSONNumber: a JSON number.
	ValueJSONNumber
	// ValueXMLText: an element's content, when it holds character data
	// only (text, references and CDATA sections; no child element,
	// comment or processing instruction).
	ValueXMLText
	// ValueXMLAttr: the bytes between an attribute value's quotes.
	ValueXMLAttr
	// ValueForm: a form value between '=' and the next '&', percent-encoded.
	ValueForm
)

// Span is the place of one selected value in a body.
type Span struct {
	// Start and End delimit the value's raw bytes: body[Start:End]. They
	// never include the quotes or tags around the value, and those are
	// never digits or separators, so no digit run crosses a span's edge.
	Start, End int
	// Path is the index, in the paths given to FindSpans, of the path
	// that selected the value. A value several paths select has a span
	// for each.
	Path int
	// Parent is the offset where the value's container starts (the JSON
	// object or array holding it, the element whose child or attribute
	// it is), or -1 when that is the document itself. Siblings' spans
	// have equal Parents.
	Parent int
	Kind   ValueKind
}

// maxSpans bounds the values one body may have selected; a body with more
// gets no exemption at all.
const maxSpans = 10000

// MaxFindPaths is the most paths FindSpans takes at once: an entry's
// identifiers and its returned cards' number and expiry paths.
const MaxFindPaths = MaxPaths + 3*MaxReturnedCards

// MaxReturnedCards is the most returned-card rules an entry may declare.
const MaxReturnedCards = 8

// SpanError is FindSpans' error: the body does not parse as its kind, or
// selects too much. It never quotes the body: the parser's own message,
// which may, is dropped.
type SpanError struct {
	Kind   BodyKind
	Offset int // about where the parse stopped; -1 when not known
	Reason string
}

func (e *SpanError) Error() string {
	s := "cardscan: " + e.Kind.String() + " body: " + e.Reason
	if e.Offset >= 0 {
		s += " (near byte " + strconv.Itoa(e.Offset) + ")"
	}
	return s
}

func parseFailed(k BodyKind, off int) *SpanError {
	return &SpanError{Kind: k, Offset: off, Reason: "does not parse"}
}

// FindSpans returns the spans of the values that paths select in body,
// read as kind, in order of Start. Paths of another kind select nothing.
// A body that does not parse as its kind in whole, including trailing
// data after a JSON value or a second XML root, is an error (a
// *SpanError): then nothing may be treated as selected, since a lenient
// reading could select bytes that the caller's parser reads differently.
//
// A JSON path selects strings and numbers only; an object, array, true,
// false or null at its place selects nothing. An XML element path selects
// the element's content only when it is character data alone. XML is read
// strictly: only the five predefined entities and character references;
// a DOCTYPE is allowed before the root but never fetched, and one with an
// internal subset ("[ … ]", where entities are declared) is an error, as
// is an encoding other than UTF-8.
func FindSpans(body []byte, kind BodyKind, paths []Path) ([]Span, error) {
	if len(paths) > MaxFindPaths {
		return nil, &SpanError{Kind: kind, Offset: -1, Reason: "more than " + strconv.Itoa(MaxFindPaths) + " paths"}
	}
	pk := kind.pathKind()
	applies := false
	for _, p := range paths {
		applies = applies || (pk != 0 && p.kind == pk)
	}
	if !applies {
		return nil, nil
	}
	var spans []Span
	var err *SpanError
	switch kind {
	case BodyJSON:
		spans, err = findJSON(body, paths)
	case BodyXML:
		spans, err = findXML(body, paths)
	case BodyForm:
		spans, err = findForm(body, paths)
	}
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(spans, func(a, b Span) int { return cmp.Compare(a.Start, b.Start) })
	return spans, nil
}

// spanList appends spans up to maxSpans.
type spanList struct {
	kind  BodyKind
	spans []Span
}

func (l *spanList) add(s Span) *SpanError {
	if len(l.spans) == maxSpans {
		return &SpanError{Kind: l.kind, Offset: s.Start, Reason: "selects more than " + strconv.Itoa(maxSpans) + " values"}
	}
	l.spans = append(l.spans, s)
	return nil
}
