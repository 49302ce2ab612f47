package cardscan

import (
	"bytes"
	"testing"
)

// FuzzFindSpans: FindSpans never panics; its spans lie within the body, in
// order, on value boundaries (the quotes, tags, '=' and '&' around a
// value); SpanValue never panics on them; and keeping them changes nothing
// outside them: the bytes there are RedactCVC's, so no digit run crosses a
// span edge.
func FuzzFindSpans(f *testing.F) {
	f.Add([]byte(`{"a":{"b":"722463149772052"},"c":[1,"x",{"d":74537604221431003881310}]}`), uint8(BodyJSON), "$.a.b", "$.c[*].d")
	f.Add([]byte(`{"a":"\u0034242424242424242\"","b":-1e5}`), uint8(BodyJSON), "$.a", "$.b")
	f.Add([]byte(`<!DOCTYPE r><r x="1" y='4242424242424242'><a>722463149772052</a><a><![CDATA[1]]>&amp;</a></r>`), uint8(BodyXML), "/r/a", "/r/@y")
	f.Add([]byte(`<s:E xmlns:s="u"><s:B n:i="7" xmlns:n="v">1</s:B></s:E>`), uint8(BodyXML), "/E/B", "/E/B/@i")
	f.Add([]byte("a=1&nti=722463149772052&card%5Bnumber%5D=4242+4242+4242+4242"), uint8(BodyForm), "form:nti", "form:card[number]")
	f.Fuzz(func(t *testing.T, body []byte, kind uint8, p1, p2 string) {
		var paths []Path
		for _, s := range []string{p1, p2} {
			if p, err := ParsePath(s); err == nil {
				paths = append(paths, p)
			}
		}
		k := BodyKind(kind % 4)
		spans, err := FindSpans(body, k, paths)
		if err != nil {
			if spans != nil {
				t.Fatalf("FindSpans returned spans with an error")
			}
			return
		}
		prev := 0
		var edits []Edit
		for _, sp := range spans {
			if sp.Start < 0 || sp.End < sp.Start || sp.End > len(body) || sp.Start < prev {
				t.Fatalf("span %+v out of bounds or order (body %d bytes, previous start %d)", sp, len(body), prev)
			}
			if sp.Path < 0 || sp.Path >= len(paths) || sp.Parent < -1 || sp.Parent >= len(body) {
				t.Fatalf("span %+v: bad path index or parent", sp)
			}
			prev = sp.Start
			checkBoundary(t, body, sp)
			SpanValue(body, sp)
			edits = append(edits, Edit{Start: sp.Start, End: sp.End, Action: EditKeep})
		}
		want := RedactCVC(nil, body, nil)
		got := RedactRules(nil, body, edits, nil)
		if len(got) != len(want) {
			t.Fatalf("RedactRules length %d, RedactCVC %d", len(got), len(want))
		}
		pos := 0
		for _, e := range normalizeEdits(edits, len(body)) {
			if !bytes.Equal(got[pos:e.Start], want[pos:e.Start]) {
				t.Fatalf("outside the spans RedactRules = %q, RedactCVC = %q", got[pos:e.Start], want[pos:e.Start])
			}
			pos = e.End
		}
		if !bytes.Equal(got[pos:], want[pos:]) {
			t.Fatalf("after the spans RedactRules = %q, RedactCVC = %q", got[pos:], want[pos:])
		}
	})
}

// checkBoundary fails t unless sp sits between the delimiters of its kind.
func checkBoundary(t *testing.T, body []byte, sp Span) {
	t.Helper()
	before := func() byte {
		if sp.Start == 0 {
			return 0
		}
		return body[sp.Start-1]
	}
	after := func() byte {
		if sp.End >= len(body) {
			return 0
		}
		return body[sp.End]
	}
	ok := true
	switch sp.Kind {
	case ValueJSONString:
		ok = before() == '"' && after() == '"'
	case ValueJSONNumber:
		c := body[sp.Start]
		ok = sp.End > sp.Start && (c == '-' || c >= '0' && c <= '9') && !bytes.ContainsAny([]byte{after()}, "0123456789.eE+-")
	case ValueXMLText:
		ok = before() == '>' && after() == '<'
	case ValueXMLAttr:
		ok = (before() == '"' || before() == '\'') && after() == before()
	case ValueForm:
		ok = (sp.Start == 0 || before() == '=') && (sp.End == len(body) || after() == '&')
	default:
		ok = false
	}
	if !ok {
		t.Fatalf("span %+v is not on a value boundary: %q|%q|%q", sp, body[max(0, sp.Start-1):sp.Start], body[sp.Start:sp.End], body[sp.End:min(len(body), sp.End+1)])
	}
}
