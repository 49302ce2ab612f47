package forwarder

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/vaultclient"
)

// expiryCases are the months and years every format is tested with.
var (
	expiryMonths = []int{1, 9, 10, 12}
	expiryYears  = []int{2029, 2100}
)

// TestExpiryFormats renders every expiry placeholder for every test month
// and year, and checks spot values written out by hand.
func TestExpiryFormats(t *testing.T) {
	formats := []struct {
		placeholder string
		want        func(m, y int) string
	}{
		{"card.exp_month", func(m, y int) string { return fmt.Sprintf("%02d", m) }},
		{"card.exp_month | nopad", func(m, y int) string { return fmt.Sprintf("%d", m) }},
		{"card.exp_year", func(m, y int) string { return fmt.Sprintf("%d", y) }},
		{"card.exp_year | yy", func(m, y int) string { return fmt.Sprintf("%02d", y%100) }},
		{"card.exp | MMYY", func(m, y int) string { return fmt.Sprintf("%02d%02d", m, y%100) }},
		{"card.exp | YYMM", func(m, y int) string { return fmt.Sprintf("%02d%02d", y%100, m) }},
		{"card.exp | MM/YY", func(m, y int) string { return fmt.Sprintf("%02d/%02d", m, y%100) }},
		{"card.exp | MM/YYYY", func(m, y int) string { return fmt.Sprintf("%02d/%04d", m, y) }},
		{"card.exp | YYYY-MM", func(m, y int) string { return fmt.Sprintf("%04d-%02d", y, m) }},
		{"card.exp | MMYYYY", func(m, y int) string { return fmt.Sprintf("%02d%04d", m, y) }},
		{"cards.funding.exp|MM/YY", func(m, y int) string { return fmt.Sprintf("%02d/%02d", m, y%100) }},
	}
	for _, tt := range formats {
		phs, e := parsePlaceholders("{{"+tt.placeholder+"}}", "body")
		if e != nil {
			t.Fatalf("parse {{%s}}: %v", tt.placeholder, e)
		}
		for _, m := range expiryMonths {
			for _, y := range expiryYears {
				c := &vaultclient.Card{ExpMonth: m, ExpYear: y}
				cv := cardValues{card: c, named: map[string]*vaultclient.Card{"funding": c}}
				got, e := cv.value(phs[0].ref)
				if e != nil {
					t.Fatalf("{{%s}} for %d/%d: %v", tt.placeholder, m, y, e)
				}
				if want := tt.want(m, y); got != want {
					t.Errorf("{{%s}} for %d/%d = %q, want %q", tt.placeholder, m, y, got, want)
				}
			}
		}
	}
	// Written out, so the table above is not the only oracle.
	spot := map[string]string{
		"card.exp_month | nopad": "9", "card.exp_year | yy": "00", "card.exp | MMYY": "0900",
		"card.exp | YYMM": "0009", "card.exp | MM/YY": "09/00", "card.exp | MM/YYYY": "09/2100",
		"card.exp | YYYY-MM": "2100-09", "card.exp | MMYYYY": "092100",
	}
	for p, want := range spot {
		phs, _ := parsePlaceholders("{{"+p+"}}", "body")
		if got, _ := (cardValues{card: &vaultclient.Card{ExpMonth: 9, ExpYear: 2100}}).value(phs[0].ref); got != want {
			t.Errorf("{{%s}} for 9/2100 = %q, want %q", p, got, want)
		}
	}
}

// TestFiltersInEverySlot sends every format through each kind of slot
// (header, JSON string, bare JSON number, form, XML text, XML attribute)
// for each test expiry, and checks what the processor parsed.
func TestFiltersInEverySlot(t *testing.T) {
	type slotCase struct {
		name        string
		contentType string
		body        func(p string) string               // the template around one placeholder
		parse       func(t *testing.T, b []byte) string // what the processor reads back
	}
	slots := []slotCase{
		{"json string", "application/json", func(p string) string { return `{"v":"{{` + p + `}}"}` }, func(t *testing.T, b []byte) string {
			var v struct{ V string }
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatalf("json %q: %v", b, err)
			}
			return v.V
		}},
		{"form", "application/x-www-form-urlencoded", func(p string) string { return "v={{" + p + "}}&x=1" }, func(t *testing.T, b []byte) string {
			q, err := url.ParseQuery(string(b))
			if err != nil {
				t.Fatalf("form %q: %v", b, err)
			}
			return q.Get("v")
		}},
		{"xml text", "application/xml", func(p string) string { return `<r><v>{{` + p + `}}</v></r>` }, func(t *testing.T, b []byte) string {
			var v struct {
				V string `xml:"v"`
			}
			if err := xml.Unmarshal(b, &v); err != nil {
				t.Fatalf("xml %q: %v", b, err)
			}
			return v.V
		}},
		{"xml attribute", "text/xml; charset=utf-8", func(p string) string { return `<r v="{{` + p + `}}"/>` }, func(t *testing.T, b []byte) string {
			var v struct {
				V string `xml:"v,attr"`
			}
			if err := xml.Unmarshal(b, &v); err != nil {
				t.Fatalf("xml %q: %v", b, err)
			}
			return v.V
		}},
	}
	formats := []string{"card.exp_month", "card.exp_month|nopad", "card.exp_year", "card.exp_year | yy",
		"card.exp|MMYY", "card.exp|YYMM", "card.exp|MM/YY", "card.exp|MM/YYYY", "card.exp|YYYY-MM", "card.exp|MMYYYY"}
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	for _, m := range expiryMonths {
		for _, y := range expiryYears {
			e.cards.cards[testToken] = func() *vaultclient.Card {
				return &vaultclient.Card{Token: testToken, Number: vaultclient.NewPAN(testPAN), ExpMonth: m, ExpYear: y}
			}
			for _, f := range formats {
				phs, _ := parsePlaceholders("{{"+f+"}}", "body")
				want, _ := cardValue(&vaultclient.Card{ExpMonth: m, ExpYear: y}, phs[0].ref)
				for _, sl := range slots {
					req := e.jsonRequest(sl.body(f))
					req.Headers["Content-Type"] = []string{sl.contentType}
					req.Headers["X-Card-Number"] = []string{"exp={{" + f + "}}"}
					n := len(e.p.requests())
					if _, err := e.f.Forward(context.Background(), req); err != nil {
						t.Fatalf("%s, {{%s}}, %d/%d: %v", sl.name, f, m, y, err)
					}
					got := e.p.requests()[n]
					if v := sl.parse(t, got.body); v != want {
						t.Errorf("%s, {{%s}}, %d/%d: processor read %q, want %q", sl.name, f, m, y, v, want)
					}
					if h := got.header.Get("X-Card-Number"); h != "exp="+want {
						t.Errorf("header, {{%s}}, %d/%d: %q, want %q", f, m, y, h, "exp="+want)
					}
				}
			}
			// Bare JSON numbers: month and year, with and without filters.
			req := e.jsonRequest(`{"m":{{card.exp_month}},"mn":{{card.exp_month|nopad}},"y":{{card.exp_year}},"yy":{{card.exp_year|yy}}}`)
			n := len(e.p.requests())
			if _, err := e.f.Forward(context.Background(), req); err != nil {
				t.Fatalf("bare json %d/%d: %v", m, y, err)
			}
			var got map[string]int
			if err := json.Unmarshal(e.p.requests()[n].body, &got); err != nil {
				t.Fatalf("bare json %d/%d: processor body %q: %v", m, y, e.p.requests()[n].body, err)
			}
			if want := map[string]int{"m": m, "mn": m, "y": y, "yy": y % 100}; !cmp.Equal(got, want) {
				t.Errorf("bare json %d/%d = %v, want %v", m, y, got, want)
			}
		}
	}
}

func TestFilterRefusals(t *testing.T) {
	tests := []struct {
		name, body string
		code, msg  string
		notInMsg   string
	}{
		{"unknown filter named", `{"v":"{{card.exp_year | yyyy}}"}`, CodeInvalidTemplate, "unknown filter yyyy", ""},
		{"unknown filter with digits not echoed", `{"v":"{{card.exp_year | 4242}}"}`, CodeInvalidTemplate, "malformed filter", "4242"},
		{"yy on the month", `{"v":"{{card.exp_month | yy}}"}`, CodeInvalidTemplate, "filter yy does not apply", ""},
		{"nopad on the year", `{"v":"{{card.exp_year|nopad}}"}`, CodeInvalidTemplate, "filter nopad does not apply", ""},
		{"format on the number", `{"v":"{{card.number | MMYY}}"}`, CodeInvalidTemplate, "composite expiry only: {{card.exp | MMYY}}", ""},
		{"format on a named card's month", `{"v":"{{cards.a.exp_month | MM/YY}}"}`, CodeInvalidTemplate, "{{cards.a.exp | MM/YY}}", ""},
		{"exp without a format", `{"v":"{{card.exp}}"}`, CodeInvalidTemplate, "needs a format", ""},
		{"two filters", `{"v":"{{card.exp | MMYY | yy}}"}`, CodeInvalidTemplate, "malformed filter", ""},
		{"empty filter", `{"v":"{{card.exp_year | }}"}`, CodeInvalidTemplate, "malformed filter", ""},
		{"composite as a bare number", `{"v":{{card.exp | MMYY}}}`, CodeInvalidTemplate, "must be inside a JSON string", ""},
		{"filter on the name", `{"v":"{{card.name | yy}}"}`, CodeInvalidTemplate, "does not apply", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, echo)
			fe := forwardErr(t, e.f, e.jsonRequest(tt.body))
			if fe.Code != tt.code || !strings.Contains(fe.Message, tt.msg) {
				t.Errorf("Forward = %s %q, want %s containing %q", fe.Code, fe.Message, tt.code, tt.msg)
			}
			if tt.notInMsg != "" && strings.Contains(fe.Error(), tt.notInMsg) {
				t.Errorf("error %q echoes %q", fe.Error(), tt.notInMsg)
			}
			if n := len(e.p.requests()); n != 0 {
				t.Errorf("processor got %d requests", n)
			}
		})
	}
}

// The composite expiry reads both exp_month and exp_year: an entry that
// allows only one of them refuses it.
func TestCompositeExpiryNeedsBothFields(t *testing.T) {
	for _, allowed := range []allowlist.Field{allowlist.FieldExpMonth, allowlist.FieldExpYear} {
		e := newEnv(t, echo, func(o *Options, d *allowlist.Destination) {
			d.Fields = []allowlist.Field{allowlist.FieldNumber, allowed}
		})
		fe := forwardErr(t, e.f, e.jsonRequest(`{"n":"{{card.number}}","e":"{{card.exp | MM/YY}}"}`))
		if fe.Code != string(allowlist.ReasonFieldNotAllowed) {
			t.Errorf("entry allowing only %s: Forward = %s, want card_field_not_allowed", allowed, fe.Code)
		}
		if d, _ := e.cards.counts(); d != 0 {
			t.Errorf("Detokenize called %d times", d)
		}
	}
}

// A card name may hold digits; one holding a card-like run (here a card
// glued to a digit, which the literal-card scan of a template passes) is
// never echoed in a message.
func TestCardLikeNameNotEchoed(t *testing.T) {
	for _, body := range []string{
		`{"v":"{{cards.a74242424242424242.exp_month | yy}}"}`,
		`{"v":"{{cards.a74242424242424242.exp}}"}`,
		`{"v":{{cards.a74242424242424242.number}}}`,
	} {
		e := newEnv(t, echo)
		fe := forwardErr(t, e.f, e.jsonRequest(body))
		if fe.Code != CodeInvalidTemplate || strings.Contains(fe.Error(), "4242424242") {
			t.Errorf("body %s: Forward = %v, want invalid_template without the digits", body, fe)
		}
		if !strings.Contains(fe.Message, "cards.….") {
			t.Errorf("body %s: message %q does not show the name masked", body, fe.Message)
		}
	}
}
