package integration

import (
	"encoding/xml"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// xmlEntry is an entry for an XML processor that takes two named cards
// and a declared DOCTYPE, appended to the standard allowlist.
func (e *env) xmlEntry() string {
	return `  - id: acme-orders
    purpose: XML orders paid with a card and funded from another
    owner: payments@cardgate.test
    url: https://` + e.processor.addr + `/v1/orders
    methods: [POST]
    callers: ["` + billing + `"]
    cards:
      primary: [number, exp_month, exp_year, name]
      funding: [number]
    body:
      doctype: '` + ordersDoctype + `'
    unsafe_allow_ranges: [127.0.0.1/32]
`
}

const ordersDoctype = `<!DOCTYPE order PUBLIC "-//Acme//DTD Order v1//EN" "http://dtd.acme.example/order_v1.dtd">`

// TestNamedCardsXML runs a forward of two named cards in an XML body
// through the built binary: the processor gets both cards, escaped, with
// the declared DOCTYPE; a card the entry does not list is 403
// card_not_allowed; and the audit log, whose records now list both tokens,
// verifies.
func TestNamedCardsXML(t *testing.T) {
	e := newEnv(t)
	e.signAllowlist(e.allowlistYAML(1) + e.xmlEntry())
	e.start()
	c := e.client(billing)
	primary, funding := e.tokenize(c, visa), e.tokenize(c, mastercard)

	req := map[string]any{
		"destination": "acme-orders",
		"url":         "https://" + e.processor.addr + "/v1/orders",
		"method":      "POST",
		"cards":       map[string]string{"primary": primary, "funding": funding},
		"headers":     map[string][]string{"Content-Type": {"text/xml; charset=utf-8"}, "SOAPAction": {`"urn:order"`}},
		"body": `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + ordersDoctype + "\n" +
			`<order id="o-1"><card holder="{{cards.primary.name}}"><number>{{cards.primary.number}}</number>` +
			`<expiry>{{cards.primary.exp | MM/YY}}</expiry></card><funding>{{cards.funding.number}}</funding></order>`,
	}
	status, out := e.post(c, "/v1/forward", req)
	if status != http.StatusOK {
		t.Fatalf("POST /v1/forward = %d %v, want 200", status, out)
	}
	got := e.processor.received()
	if len(got) != 1 {
		t.Fatalf("processor received %d requests, want 1", len(got))
	}
	if !strings.Contains(got[0].Body, "\n"+ordersDoctype+"\n<order") {
		t.Errorf("the DOCTYPE did not reach the processor unchanged: %.200s", got[0].Body)
	}
	var order struct {
		Card struct {
			Holder string `xml:"holder,attr"`
			Number string `xml:"number"`
			Expiry string `xml:"expiry"`
		} `xml:"card"`
		Funding string `xml:"funding"`
	}
	if err := xml.Unmarshal([]byte(got[0].Body), &order); err != nil {
		t.Fatalf("processor received a body that is not XML: %v", err)
	}
	if order.Card.Number != visa || order.Funding != mastercard || order.Card.Holder != `Jane "JJ" Doe & Co` || !strings.HasPrefix(order.Card.Expiry, "12/") {
		t.Errorf("processor read holder %q, expiry %q, both numbers right: %v", order.Card.Holder, order.Card.Expiry, order.Card.Number == visa && order.Funding == mastercard)
	}

	// A card the entry does not list.
	req["cards"] = map[string]string{"primary": primary, "payout": funding}
	req["body"] = `<order><a>{{cards.primary.number}}</a><b>{{cards.payout.number}}</b></order>`
	status, out = e.post(c, "/v1/forward", req)
	if status != http.StatusForbidden || errCode(out) != "card_not_allowed" {
		t.Errorf("forward with an unlisted card = %d %v, want 403 card_not_allowed", status, out)
	}
	if n := len(e.processor.received()); n != 1 {
		t.Errorf("processor received %d requests, want 1", n)
	}

	auditLog := filepath.Join(e.dir, "audit.log")
	raw, err := os.ReadFile(auditLog)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"token":"","tokens":["` + funding + `","` + primary + `"]`; !strings.Contains(string(raw), want) {
		t.Errorf("the audit log has no record listing both tokens (%s)", want)
	}
	e.assertNoCardsIn("the audit log", raw)
	run(t, binary, "audit", "verify", auditLog)
}
