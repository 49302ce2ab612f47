package forwarder

import (
	"strings"
	"testing"
)

// stubValues answers every field with the same value.
type stubValues string

func (s stubValues) value(ref) (string, *Error) { return string(s), nil }

// The forward path sizes the render buffer with bodyBound so that rendering
// never grows it (growth would leave a copy of the card to the GC). The
// bound must hold for the values that escape the most.
func TestBodyBoundHoldsForWorstCaseEscaping(t *testing.T) {
	values := []string{
		"4242424242424242",
		strings.Repeat("\x01", 40),           // JSON \u0001: six bytes each
		strings.Repeat("\xff", 40),           // invalid UTF-8: U+FFFD, three bytes each
		strings.Repeat("\u2028", 20),         // \u2028: six bytes for three
		strings.Repeat(`"\`, 20),             // two-byte escapes
		strings.Repeat("&= +%é", 10),         // form escapes: three bytes each
		strings.Repeat("\x00\x1f\u2029", 13), // a mix
		strings.Repeat(`"'`, 20) + "]",       // XML: &quot; and &apos;, six and six bytes
	}
	bodies := []struct {
		kind bodyKind
		text string
	}{
		{bodyJSON, `{"number":"{{card.number}}","name":"{{card.name}}","cvc":"{{card.cvc}}"}`},
		{bodyForm, `number={{card.number}}&name={{card.name}}&cvc={{card.cvc}}`},
		{bodyXML, `<p n="{{card.number}}">{{card.name}}]<c>{{card.cvc}}</c></p>`},
	}
	for _, b := range bodies {
		phs, e := parsePlaceholders(b.text, "body")
		if e != nil {
			t.Fatal(e)
		}
		sl := slot{text: b.text, phs: phs}
		for _, v := range values {
			bound := bodyBound(sl, stubValues(v))
			buf := make([]byte, 0, bound)
			out, e := renderBody(buf, sl, b.kind, stubValues(v))
			if e != nil && b.kind == bodyXML && strings.ContainsAny(v, "\x00\x01\x1f") {
				continue // a character XML cannot carry: refused, not escaped
			}
			if e != nil {
				t.Fatal(e)
			}
			if len(out) > bound || cap(out) != bound {
				t.Errorf("kind %d, value %q: rendered %d bytes (cap %d), bound %d", b.kind, v, len(out), cap(out), bound)
			}
		}
	}
}

func TestGrowZeroedClearsTheOldBuffer(t *testing.T) {
	old := make([]byte, 3, 4)
	copy(old, "abc")
	grown := growZeroed(old, 100)
	if string(grown) != "abc" || cap(grown) < 100 {
		t.Fatalf("grown = %q (cap %d)", grown, cap(grown))
	}
	if string(old[:cap(old)]) != "\x00\x00\x00\x00" {
		t.Fatalf("old buffer not zeroed: %q", old[:cap(old)])
	}
	if same := growZeroed(grown, 10); &same[0] != &grown[0] {
		t.Fatal("a buffer large enough was reallocated")
	}
}
