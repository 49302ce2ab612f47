package cardscan

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"
)

// keep masks body as the forwarder does for an entry whose identifiers are
// paths: every selected value kept, everything else as Redact.
func keep(t testing.TB, body string, kind BodyKind, m *Masks, paths ...string) string {
	t.Helper()
	var ps []Path
	for _, s := range paths {
		ps = append(ps, MustParsePath(s))
	}
	spans, _ := FindSpans([]byte(body), kind, ps) // on error: no spans, all masked
	edits := make([]Edit, len(spans))
	for i, sp := range spans {
		edits[i] = Edit{Start: sp.Start, End: sp.End, Action: EditKeep}
	}
	return string(RedactRules(nil, []byte(body), edits, m))
}

const (
	nti = "722463149772052"         // Luhn-valid 15 digits: a network transaction id
	arn = "74537604221431003881310" // 23 digits: an acquirer reference number
	pan = "4242424242424242"        // the forwarded card
)

func fwd(cvc string) *Masks {
	m := &Masks{Numbers: [][]byte{[]byte(pan)}}
	if cvc != "" {
		m.CVCs = [][]byte{[]byte(cvc)}
	}
	return m
}

func TestRedactRules(t *testing.T) {
	tests := []struct {
		name  string
		kind  BodyKind
		body  string
		paths []string
		m     *Masks
		want  string
	}{
		{
			"json: arn and nti kept at declared paths, masked elsewhere", BodyJSON,
			`{"processorInformation":{"networkTransactionId":"` + nti + `"},"acquirerReferenceNumber":"` + arn + `","echo":"` + nti + ` ` + arn + `","n":` + nti + `}`,
			[]string{"$.processorInformation.networkTransactionId", "$.acquirerReferenceNumber"}, fwd(""),
			`{"processorInformation":{"networkTransactionId":"` + nti + `"},"acquirerReferenceNumber":"` + arn + `","echo":"***********2052 *******************1310","n":***********2052}`,
		},
		{
			"json: number identifiers", BodyJSON,
			`{"nti":` + nti + `,"arn":` + arn + `}`,
			[]string{"$.nti", "$.arn"}, fwd(""),
			`{"nti":` + nti + `,"arn":` + arn + `}`,
		},
		{
			"json: the forwarded card in an identifier field is masked", BodyJSON,
			`{"nti":"` + pan + `","a":"x` + pan + `9","b":"4242 4242-4242 4242","c":"\u0034242424242424242","d":"` + nti + `"}`,
			[]string{"$.nti", "$.a", "$.b", "$.c", "$.d"}, fwd(""),
			`{"nti":"************4242","a":"******************","b":"**** ****-**** 4242","c":"*********************","d":"` + nti + `"}`,
		},
		{
			"json: another card in an identifier field is kept", BodyJSON,
			`{"nti":"5555555555554444","x":"5555555555554444"}`,
			[]string{"$.nti"}, fwd(""),
			`{"nti":"5555555555554444","x":"************4444"}`,
		},
		{
			"json: the cvc in an identifier field is masked only as a whole group", BodyJSON,
			`{"auth":"737","code":"A737-737","cvc":"737","x":"7370"}`,
			[]string{"$.auth", "$.code", "$.x"}, fwd("737"),
			`{"auth":"***","code":"********","cvc":"***","x":"7370"}`,
		},
		{
			"json: an object at an identifier path keeps nothing", BodyJSON,
			`{"nti":{"v":"` + nti + `"}}`,
			[]string{"$.nti"}, fwd(""),
			`{"nti":{"v":"***********2052"}}`,
		},
		{
			"json: malformed answer, everything masked", BodyJSON,
			`{"nti":"` + nti + `","arn":"` + arn + `"`,
			[]string{"$.nti", "$.arn"}, fwd(""),
			`{"nti":"***********2052","arn":"*******************1310"`,
		},
		{
			"json: path of another kind keeps nothing", BodyJSON,
			`{"nti":"` + nti + `"}`,
			[]string{"/nti", "form:nti"}, fwd(""),
			`{"nti":"***********2052"}`,
		},
		{
			"xml with doctype", BodyXML,
			`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
				`<!DOCTYPE paymentService PUBLIC "-//Worldpay//DTD Worldpay PaymentService v1//EN" "http://dtd.worldpay.com/paymentService_v1.dtd">` + "\n" +
				`<paymentService version="1.4"><reply><orderStatus orderCode="` + arn + `"><payment><cardNumber>4242********4242</cardNumber>` +
				`<schemeResponse><transactionIdentifier>` + nti + `</transactionIdentifier></schemeResponse>` +
				`<echo>` + pan + `</echo><other>` + nti + `</other></payment></orderStatus></reply></paymentService>`,
			[]string{"/paymentService/reply/orderStatus/payment/schemeResponse/transactionIdentifier", "/paymentService/reply/orderStatus/@orderCode"}, fwd(""),
			`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
				`<!DOCTYPE paymentService PUBLIC "-//Worldpay//DTD Worldpay PaymentService v1//EN" "http://dtd.worldpay.com/paymentService_v1.dtd">` + "\n" +
				`<paymentService version="1.4"><reply><orderStatus orderCode="` + arn + `"><payment><cardNumber>4242********4242</cardNumber>` +
				`<schemeResponse><transactionIdentifier>` + nti + `</transactionIdentifier></schemeResponse>` +
				`<echo>************4242</echo><other>***********2052</other></payment></orderStatus></reply></paymentService>`,
		},
		{
			"xml: forwarded card in a kept attribute", BodyXML,
			`<r id="` + pan + `" n="` + nti + `"/>`,
			[]string{"/r/@id", "/r/@n"}, fwd(""),
			`<r id="************4242" n="` + nti + `"/>`,
		},
		{
			"xml with an internal subset keeps nothing", BodyXML,
			`<!DOCTYPE r [<!ENTITY e "x">]><r><nti>` + nti + `</nti></r>`,
			[]string{"/r/nti"}, fwd(""),
			`<!DOCTYPE r [<!ENTITY e "x">]><r><nti>***********2052</nti></r>`,
		},
		{
			"form", BodyForm,
			"network_transaction_id=" + nti + "&echo=" + nti + "&card=" + pan,
			[]string{"form:network_transaction_id"}, fwd(""),
			"network_transaction_id=" + nti + "&echo=***********2052&card=************4242",
		},
		{
			"form: percent-encoded forwarded card in a kept value", BodyForm,
			"nti=%34242424242424242",
			[]string{"form:nti"}, fwd(""),
			"nti=******************",
		},
		{
			"other body kind keeps nothing", BodyOther,
			`{"nti":"` + nti + `"}`,
			[]string{"$.nti"}, fwd(""),
			`{"nti":"***********2052"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := keep(t, tt.body, tt.kind, tt.m, tt.paths...); got != tt.want {
				t.Errorf("RedactRules(%s)\n got %s\nwant %s", tt.body, got, tt.want)
			}
		})
	}
}

func TestRedactRulesEdits(t *testing.T) {
	src := []byte(`{"a":"5555555555554444","b":"12","c":"` + nti + `"}`)
	a := bytes.Index(src, []byte("5555"))
	b := bytes.Index(src, []byte(`"12"`)) + 1
	c := bytes.Index(src, []byte(nti))
	tests := []struct {
		name  string
		edits []Edit
		want  string
	}{
		{"replace", []Edit{{Start: a, End: a + 16, Action: EditReplace, With: []byte("tok_x")}},
			`{"a":"tok_x","b":"12","c":"***********2052"}`},
		{"mask every digit", []Edit{{Start: b, End: b + 2}, {Start: c, End: c + len(nti), Action: EditMask}},
			`{"a":"************4444","b":"**","c":"***************"}`},
		{"mask wins over keep on one span", []Edit{{Start: c, End: c + len(nti), Action: EditKeep}, {Start: c, End: c + len(nti), Action: EditMask}},
			`{"a":"************4444","b":"12","c":"***************"}`},
		{"replace wins over keep", []Edit{{Start: a, End: a + 16, Action: EditKeep}, {Start: a, End: a + 16, Action: EditReplace, With: []byte("tok_y")}},
			`{"a":"tok_y","b":"12","c":"***********2052"}`},
		{"partial overlap masks the union", []Edit{{Start: a, End: a + 8, Action: EditKeep}, {Start: a + 4, End: a + 16, Action: EditKeep}},
			`{"a":"****************","b":"12","c":"***********2052"}`},
		{"out of range ignored", []Edit{{Start: -1, End: 3, Action: EditKeep}, {Start: 5, End: len(src) + 1, Action: EditKeep}, {Start: 9, End: 8, Action: EditKeep}},
			`{"a":"************4444","b":"12","c":"***********2052"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(RedactRules(nil, src, tt.edits, nil)); got != tt.want {
				t.Errorf("RedactRules\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

// Secrets are masked everywhere, kept identifiers included, before
// anything else runs.
func TestRedactRulesSecrets(t *testing.T) {
	body := `{"nti":"sk_live_abc` + nti + `","echo":"Bearer sk_live_abc","x":"sk_live_ab"}`
	m := fwd("")
	m.Secrets = [][]byte{[]byte("sk_live_abc"), nil}
	got := keep(t, body, BodyJSON, m, "$.nti", "$.echo")
	// The masked secret makes nti's value more than digits, and its
	// digits are card-like: it is masked whole.
	want := `{"nti":"` + strings.Repeat("*", 11+len(nti)) + `","echo":"Bearer ***********","x":"sk_live_ab"}`
	if got != want {
		t.Errorf("RedactRules with secrets\n got %s\nwant %s", got, want)
	}
}

// Without edits, with one CVC and no secrets, RedactRules is RedactCVC
// followed by the sent number's Secrets (every encoding of it); and with
// identifiers, the bytes outside the kept spans are exactly that: no digit
// run crosses a span edge.
func TestRedactRulesMatchesRedactCVC(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"4242", "5555", "4444", nti, arn, pan, " ", "-", `"`, ":", ",", "x", "\\u0034", "%34", "737"}
	for i := range 2000 {
		var sb strings.Builder
		sb.WriteString(`{"nti":"`)
		for range r.IntN(8) {
			sb.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		sb.WriteString(`","n":`)
		sb.WriteString([]string{nti, arn, "1", pan}[r.IntN(4)])
		sb.WriteString(`,"free":"`)
		for range r.IntN(12) {
			s := alphabet[r.IntN(len(alphabet))]
			if s == `"` {
				s = " "
			}
			sb.WriteString(s)
		}
		sb.WriteString(`"}`)
		body := []byte(sb.String())
		own, withCVC := NewSecrets(pan, ""), NewSecrets(pan, "737")
		want := withCVC.Redact(nil, own.Redact(nil, RedactCVC(nil, body, []byte("737"))))
		if got := RedactRules(nil, body, nil, fwd("737")); !bytes.Equal(got, want) {
			t.Fatalf("case %d: RedactRules without edits = %s, RedactCVC = %s", i, got, want)
		}
		spans, err := FindSpans(body, BodyJSON, []Path{MustParsePath("$.nti"), MustParsePath("$.n")})
		if err != nil {
			continue // the alphabet can make invalid JSON; then nothing is kept
		}
		var edits []Edit
		for _, sp := range spans {
			edits = append(edits, Edit{Start: sp.Start, End: sp.End, Action: EditKeep})
		}
		got := RedactRules(nil, body, edits, fwd("737"))
		if len(got) != len(want) {
			t.Fatalf("case %d: length %d, want %d", i, len(got), len(want))
		}
		pos := 0
		for _, sp := range spans {
			if !bytes.Equal(got[pos:sp.Start], want[pos:sp.Start]) {
				t.Fatalf("case %d: outside spans differs from RedactCVC:\n got %s\nwant %s", i, got, want)
			}
			pos = sp.End
		}
		if !bytes.Equal(got[pos:], want[pos:]) {
			t.Fatalf("case %d: tail differs from RedactCVC:\n got %s\nwant %s", i, got, want)
		}
	}
}

func TestRedactRulesSeveralCVCs(t *testing.T) {
	m := &Masks{CVCs: [][]byte{[]byte("737"), []byte("1234")}}
	got := string(RedactRules(nil, []byte(`a 737 b 1234 c 12345 d 7370`), nil, m))
	if want := `a *** b **** c 12345 d 7370`; got != want {
		t.Errorf("RedactRules = %q, want %q", got, want)
	}
}

// TestRedactRulesEncodedSentCard: a kept identifier holding the sent card
// (or its CVC) in an encoding, or an XML character reference, is masked
// whole; a masked value (a returned card that is not one) is starred in
// every byte, so a base64 card cannot be read back from its letters.
func TestRedactRulesEncodedSentCard(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString([]byte(pan))
	hexPAN := hex.EncodeToString([]byte(pan))
	cvcB64 := base64.StdEncoding.EncodeToString([]byte("737"))
	tests := []struct {
		name, value string
		masked      bool
	}{
		{"base64 of the sent card", b64, true},
		{"hex of the sent card", hexPAN, true},
		{"xml character reference", "&#x34;&#x32;" + pan[2:], true},
		{"base64 of the sent cvc", cvcB64, true},
		{"a network transaction id", nti, false},
		{"an arn", arn, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(`{"id":"` + tt.value + `"}`)
			spans, err := FindSpans(body, BodyJSON, []Path{MustParsePath("$.id")})
			if err != nil || len(spans) != 1 {
				t.Fatalf("FindSpans = %v, %v", spans, err)
			}
			got := RedactRules(nil, body, []Edit{{Start: spans[0].Start, End: spans[0].End, Action: EditKeep}}, fwd("737"))
			want := string(body)
			if tt.masked {
				want = `{"id":"` + strings.Repeat("*", len(tt.value)) + `"}`
			}
			if string(got) != want {
				t.Errorf("RedactRules(%s) = %s, want %s", body, got, want)
			}
		})
	}
	t.Run("masked value", func(t *testing.T) {
		body := []byte(`{"n":"` + base64.StdEncoding.EncodeToString([]byte("4111111111111111")) + `"}`)
		spans, _ := FindSpans(body, BodyJSON, []Path{MustParsePath("$.n")})
		got := RedactRules(nil, body, []Edit{{Start: spans[0].Start, End: spans[0].End, Action: EditMask}}, fwd(""))
		if want := `{"n":"` + strings.Repeat("*", spans[0].End-spans[0].Start) + `"}`; string(got) != want {
			t.Errorf("RedactRules(%s) = %s, want %s", body, got, want)
		}
	})
}
