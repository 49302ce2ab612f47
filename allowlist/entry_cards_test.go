package allowlist

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const worldpayDoctype = `<!DOCTYPE paymentService PUBLIC "-//Worldpay//DTD Worldpay PaymentService v1//EN" "http://dtd.worldpay.com/paymentService_v1.dtd">`

// withEntryLines adds lines to the fixture's first entry (acme-charges,
// line 11), after its max_response_bytes line.
func withEntryLines(t *testing.T, lines ...string) []byte {
	t.Helper()
	good := string(readFixture(t, "allowlist.yaml"))
	const anchor = "    max_response_bytes: 1048576\n"
	if !strings.Contains(good, anchor) {
		t.Fatal("fixture changed: anchor line missing")
	}
	return []byte(strings.Replace(good, anchor, anchor+strings.Join(lines, "\n")+"\n", 1))
}

func TestParseCardsAndBody(t *testing.T) {
	raw := withEntryLines(t,
		"    cards:",
		"      primary: [number, exp_month, exp_year]",
		"      funding: [number]",
		"    body:",
		"      doctype: '"+worldpayDoctype+"'",
	)
	doc, err := ParseUnverified(raw)
	if err != nil {
		t.Fatalf("ParseUnverified = %v", err)
	}
	d := doc.Destinations[0]
	want := map[string][]Field{
		"primary": {FieldNumber, FieldExpMonth, FieldExpYear},
		"funding": {FieldNumber},
	}
	if diff := cmp.Diff(want, d.Cards); diff != "" {
		t.Errorf("Cards (-want +got):\n%s", diff)
	}
	if d.Body == nil || d.Body.Doctype != worldpayDoctype {
		t.Errorf("Body = %+v, want doctype %q", d.Body, worldpayDoctype)
	}
	if fs, ok := d.CardFields("funding"); !ok || !cmp.Equal(fs, []Field{FieldNumber}) {
		t.Errorf("CardFields(funding) = %v, %v", fs, ok)
	}
	if _, ok := d.CardFields("other"); ok {
		t.Error("CardFields(other) found a card the entry does not list")
	}
	// The other entries set neither block.
	if doc.Destinations[1].Cards != nil || doc.Destinations[1].Body != nil {
		t.Errorf("entry without the blocks: Cards %v, Body %v", doc.Destinations[1].Cards, doc.Destinations[1].Body)
	}
}

func TestParseCardsWithoutSingleCardFields(t *testing.T) {
	good := string(withEntryLines(t, "    cards:", "      primary: [number]"))
	raw := strings.Replace(good, "    fields: [number, exp_month, exp_year, cvc]\n", "", 1)
	doc, err := ParseUnverified([]byte(raw))
	if err != nil {
		t.Fatalf("ParseUnverified = %v", err)
	}
	if d := doc.Destinations[0]; len(d.Fields) != 0 || len(d.Cards) != 1 {
		t.Errorf("Fields %v, Cards %v; want none and one", d.Fields, d.Cards)
	}
	// Without cards, fields stays required.
	raw = strings.Replace(string(readFixture(t, "allowlist.yaml")), "    fields: [number, exp_month, exp_year, cvc]\n", "", 1)
	if _, err := ParseUnverified([]byte(raw)); err == nil || !strings.Contains(err.Error(), ".fields: must list at least one value") {
		t.Errorf("entry with neither fields nor cards: err = %v", err)
	}
}

func TestParseCardsAndBodyRefused(t *testing.T) {
	nine := []string{"    cards:"}
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"} {
		nine = append(nine, "      "+n+": [number]")
	}
	tests := []struct {
		name  string
		lines []string
		want  string
	}{
		{"bad card name", []string{"    cards:", "      Primary: [number]"}, `line 11: destinations[0] (id "acme-charges").cards: "Primary" is not a card name`},
		{"card name starting with a digit", []string{"    cards:", "      1st: [number]"}, `"1st" is not a card name`},
		{"card name too long", []string{"    cards:", "      " + strings.Repeat("a", 33) + ": [number]"}, "is not a card name"},
		{"unknown field", []string{"    cards:", "      primary: [pin]"}, `cards.primary: "pin" is not a card field`},
		{"composite exp is not a field", []string{"    cards:", "      primary: [exp]"}, `"exp" is not a card field`},
		{"no fields", []string{"    cards:", "      primary: []"}, "cards.primary: must list at least one value"},
		{"field twice", []string{"    cards:", "      primary: [number, number]"}, `cards.primary: "number" is listed twice`},
		{"too many cards", nine, "9 cards, more than the limit of 8"},
		{"card not a list", []string{"    cards:", "      primary: number"}, "cannot unmarshal"},
		{"doctype with internal subset", []string{"    body:", `      doctype: '<!DOCTYPE a [<!ENTITY x "y">]>'`}, "body.doctype: must be one <!DOCTYPE"},
		{"doctype not a doctype", []string{"    body:", `      doctype: '<!ENTITY x "y">'`}, "body.doctype"},
		{"doctype with two spaces", []string{"    body:", `      doctype: '<!DOCTYPE  a>'`}, "body.doctype"},
		{"doctype empty", []string{"    body:", `      doctype: ""`}, "body.doctype"},
		{"doctype with a closing bracket in a literal", []string{"    body:", `      doctype: '<!DOCTYPE a SYSTEM "x>y">'`}, "body.doctype"},
		{"unknown body rule", []string{"    body:", "      charset: utf-8"}, "field charset not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseUnverified(withEntryLines(t, tt.lines...))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseUnverified = %v, want an error containing %q", err, tt.want)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v is not ErrMalformed", err)
			}
		})
	}
}

func TestValidDoctype(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{worldpayDoctype, true},
		{`<!DOCTYPE html>`, true},
		{`<!DOCTYPE a SYSTEM "http://example.com/a.dtd">`, true},
		{`<!DOCTYPE a SYSTEM 'http://example.com/a.dtd'>`, true},
		{`<!DOCTYPE a PUBLIC "-//X//EN">`, false}, // PUBLIC needs a system literal in XML
		{`<!DOCTYPE a [ ]>`, false},
		{`<!DOCTYPE a SYSTEM "x.dtd" [<!ENTITY e "v">]>`, false},
		{`<!doctype a>`, false},
		{`<!DOCTYPE a>` + "\n", false},
		{`<!DOCTYPE a SYSTEM "x"y">`, false},
		{`<!DOCTYPE a SYSTEM "` + strings.Repeat("x", MaxDoctypeBytes) + `">`, false},
	}
	for _, tt := range tests {
		if got := ValidDoctype(tt.s); got != tt.want {
			t.Errorf("ValidDoctype(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestMatchNamedCards(t *testing.T) {
	raw := withEntryLines(t, "    cards:", "      primary: [number, exp_month, exp_year]", "      funding: [number]")
	doc, err := ParseUnverified(raw)
	if err != nil {
		t.Fatal(err)
	}
	a := &Allowlist{Doc: *doc}
	u, _ := url.Parse("https://api.acme.example/v1/charges")
	q := func(cards map[string][]Field) Query {
		return Query{DestinationID: "acme-charges", Caller: "billing", Method: "POST", URL: u, Now: testNow, Cards: cards}
	}
	tests := []struct {
		name       string
		cards      map[string][]Field
		wantReason Reason // "" means allowed
		wantDetail string
	}{
		{"none", nil, "", ""},
		{"both in scope", map[string][]Field{"primary": {FieldNumber, FieldExpYear}, "funding": {FieldNumber}}, "", ""},
		{"card not listed", map[string][]Field{"primary": {FieldNumber}, "payout": {FieldNumber}}, ReasonCardNotAllowed, `card "payout" may not be sent to destination "acme-charges"`},
		{"field outside the card's scope", map[string][]Field{"funding": {FieldNumber, FieldCVC}}, ReasonFieldNotAllowed, `card field "cvc" of card "funding"`},
		{"the single card's fields do not widen a named card", map[string][]Field{"funding": {FieldExpMonth}}, ReasonFieldNotAllowed, `card field "exp_month" of card "funding"`},
		{"unknown field", map[string][]Field{"primary": {"exp"}}, ReasonFieldNotAllowed, `"exp"`},
		{"name outside the grammar is never listed", map[string][]Field{"Primary": {FieldNumber}}, ReasonCardNotAllowed, `card "Primary"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := a.Match(q(tt.cards))
			if tt.wantReason == "" {
				if err != nil || d == nil {
					t.Fatalf("Match = %v, %v; want the entry", d, err)
				}
				return
			}
			var de *DenyError
			if !errors.As(err, &de) || de.Reason != tt.wantReason {
				t.Fatalf("Match = %v, want %s", err, tt.wantReason)
			}
			if !strings.Contains(de.Detail, tt.wantDetail) {
				t.Errorf("Detail = %q, want it to contain %q", de.Detail, tt.wantDetail)
			}
		})
	}
	// A named card never borrows the single card's scope: an entry without
	// `cards` refuses every named card.
	d2 := doc.Destinations[1]
	if err := d2.matchCards(map[string][]Field{"primary": {FieldNumber}}); err == nil {
		t.Error("entry without cards admitted a named card")
	}
}

func TestDiffCardsAndBody(t *testing.T) {
	o := &Destination{Cards: map[string][]Field{"primary": {FieldNumber, FieldCVC}, "old": {FieldNumber}}}
	n := &Destination{
		Cards: map[string][]Field{"primary": {FieldNumber, FieldExpYear}, "funding": {FieldNumber}},
		Body:  &Body{Doctype: worldpayDoctype},
	}
	w, nr := DiffCards(o, n)
	if diff := cmp.Diff([]string{"+ card funding (fields number)", "+ card primary field exp_year"}, w); diff != "" {
		t.Errorf("DiffCards widens (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"- card old", "- card primary field cvc"}, nr); diff != "" {
		t.Errorf("DiffCards narrows (-want +got):\n%s", diff)
	}
	w, nr = DiffBody(o, n)
	if diff := cmp.Diff([]string{"~ body doctype - -> " + worldpayDoctype}, w); diff != "" || nr != nil {
		t.Errorf("DiffBody added = %v, %v", w, nr)
	}
	w, nr = DiffBody(n, o)
	if diff := cmp.Diff([]string{"- body doctype " + worldpayDoctype}, nr); diff != "" || w != nil {
		t.Errorf("DiffBody removed = %v, %v", w, nr)
	}
	if w, nr := DiffBody(n, n); w != nil || nr != nil {
		t.Errorf("DiffBody unchanged = %v, %v", w, nr)
	}
}
