package forwarder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/canary"
	"github.com/cardgate/cardgate/internal/redistest"
	"github.com/cardgate/cardgate/vaultclient"
)

// The second test card.
const (
	testPAN2   = "5555555555554444"
	testCVC2   = "919"
	testToken2 = "tok_testbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	testName2  = "Mx Funding <Account> & Co"
)

// withNamedCards adds the second card to the vault and gives the entry a
// cards block: primary may receive everything, funding its number, name
// and CVC.
func withNamedCards(e *env) {
	e.cards.mu.Lock()
	e.cards.cards[testToken2] = func() *vaultclient.Card {
		return &vaultclient.Card{
			Token: testToken2, Number: vaultclient.NewPAN(testPAN2), ExpMonth: 11, ExpYear: 2029,
			CVC: vaultclient.NewCVC(testCVC2), Name: vaultclient.NewName(testName2), Brand: "mastercard", Last4: "4444",
		}
	}
	e.cards.mu.Unlock()
}

func namedCardsEntry(o *Options, d *allowlist.Destination) {
	d.Fields = nil // named cards only: the single card's scope is empty
	d.Cards = map[string][]allowlist.Field{
		"primary": {allowlist.FieldNumber, allowlist.FieldExpMonth, allowlist.FieldExpYear, allowlist.FieldCVC},
		"funding": {allowlist.FieldNumber, allowlist.FieldName, allowlist.FieldCVC},
	}
}

func (e *env) namedRequest(body string) *Request {
	r := e.jsonRequest(body)
	r.Card = ""
	r.Cards = map[string]string{"primary": testToken, "funding": testToken2}
	return r
}

const twoCardBody = `{"source":{"number":"{{cards.primary.number}}","exp":"{{cards.primary.exp | MM/YY}}","cvc":"{{cards.primary.cvc}}"},` +
	`"funding":{"number":"{{ cards.funding.number }}","name":"{{cards.funding.name}}"}}`

func TestNamedCardsEndToEnd(t *testing.T) {
	e := newEnv(t, echo, namedCardsEntry, func(o *Options, d *allowlist.Destination) {
		d.CardHeaders = []string{"X-Card-Number"}
	})
	withNamedCards(e)
	r := e.namedRequest(twoCardBody)
	r.Headers["X-Card-Number"] = []string{"{{cards.funding.number}}"}
	resp, err := e.f.Forward(context.Background(), r)
	if err != nil {
		t.Fatalf("Forward: %v", err)
	}

	pr := e.p.requests()[0]
	var sent map[string]map[string]string
	if err := json.Unmarshal(pr.body, &sent); err != nil {
		t.Fatalf("processor body %q: %v", pr.body, err)
	}
	want := map[string]map[string]string{
		"source":  {"number": testPAN, "exp": "03/31", "cvc": testCVC},
		"funding": {"number": testPAN2, "name": testName2},
	}
	if diff := cmp.Diff(want, sent); diff != "" {
		t.Errorf("processor body (-want +got):\n%s", diff)
	}
	if h := pr.header.Get("X-Card-Number"); h != testPAN2 {
		t.Errorf("X-Card-Number = %q, want the funding card's number", h)
	}

	// Both numbers and the CVC sent come back masked.
	for _, secret := range []string{testPAN, testPAN2, `"` + testCVC + `"`} {
		if strings.Contains(resp.Body, secret) || strings.Contains(e.logText(), secret) {
			t.Errorf("answer or log holds %q: %s", secret, resp.Body)
		}
	}
	if !strings.Contains(resp.Body, `"************4444"`) || !strings.Contains(resp.Body, `"cvc":"***"`) {
		t.Errorf("answer not masked as expected: %s", resp.Body)
	}

	// Only the card whose CVC the template uses had it consumed.
	e.cards.mu.Lock()
	consumed := slices.Clone(e.cards.consumed)
	e.cards.mu.Unlock()
	if !cmp.Equal(consumed, []string{testToken}) {
		t.Errorf("CVCs consumed for %v, want the primary card's only", consumed)
	}

	// The intent and result records list both tokens, by card name.
	var kinds []audit.Kind
	for _, rec := range e.auditRecords() {
		kinds = append(kinds, rec.Kind)
		if rec.Token != "" || !cmp.Equal(rec.Tokens, []string{testToken2, testToken}) {
			t.Errorf("%s record: token %q, tokens %v; want none and [funding primary]", rec.Kind, rec.Token, rec.Tokens)
		}
	}
	if !cmp.Equal(kinds, []audit.Kind{audit.KindIntent, audit.KindResult}) {
		t.Errorf("audit kinds = %v", kinds)
	}
}

// TestNamedCardsMaskEveryCVC: both cards send their CVC; a processor that
// echoes both shows neither, in the body or in a header.
func TestNamedCardsMaskEveryCVC(t *testing.T) {
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var v map[string]string
		json.Unmarshal(b, &v)
		w.Header().Set("X-Echo", v["a"]+" "+v["b"])
		w.Write([]byte(`{"cvcs":"` + v["a"] + ` ` + v["b"] + `","other":"737 919 123"}`))
	}, namedCardsEntry)
	withNamedCards(e)
	resp, err := e.f.Forward(context.Background(), e.namedRequest(`{"a":"{{cards.primary.cvc}}","b":"{{cards.funding.cvc}}","n":"{{cards.primary.number}}{{cards.funding.number}}"}`))
	if err != nil {
		t.Fatalf("Forward: %v", err)
	}
	if want := `{"cvcs":"*** ***","other":"*** *** 123"}`; resp.Body != want {
		t.Errorf("answer = %s, want %s", resp.Body, want)
	}
	if got := resp.Headers.Get("X-Echo"); got != "*** ***" {
		t.Errorf("X-Echo = %q, want both CVCs masked", got)
	}
	if _, consumed := e.cards.counts(); consumed != 2 {
		t.Errorf("%d CVCs consumed, want 2", consumed)
	}
}

func TestNamedCardsRefusals(t *testing.T) {
	nine := map[string]string{}
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"} {
		nine[n] = testToken
	}
	tests := []struct {
		name      string
		mod       func(*Request)
		code, msg string
	}{
		{"card and cards", func(r *Request) { r.Card = testToken }, CodeInvalidRequest, "not both"},
		{"card and empty cards", func(r *Request) { r.Card, r.Cards = testToken, map[string]string{} }, CodeInvalidRequest, "not both"},
		{"neither", func(r *Request) { r.Cards = nil }, CodeInvalidRequest, "card: is required"},
		{"empty cards", func(r *Request) { r.Cards = map[string]string{} }, CodeInvalidRequest, "at least one card"},
		{"nine cards", func(r *Request) { r.Cards = nine }, CodeInvalidRequest, "more than 8"},
		{"uppercase name", func(r *Request) { r.Cards["Primary"] = testToken }, CodeInvalidRequest, "card name must be"},
		{"name too long", func(r *Request) { r.Cards[strings.Repeat("a", 33)] = testToken }, CodeInvalidRequest, "card name must be"},
		{"card number as a name", func(r *Request) { r.Cards["c4242424242424242"] = testToken }, CodeLiteralCard, "card name"},
		{"card number as a token", func(r *Request) { r.Cards["funding"] = testPAN2 }, CodeLiteralCard, "cards.funding"},
		{"empty token", func(r *Request) { r.Cards["funding"] = "" }, CodeInvalidRequest, "cards.funding: is required"},
		{"token with a space", func(r *Request) { r.Cards["funding"] = "tok_a b" }, CodeInvalidRequest, "cards.funding: must be a token"},
		{"same token twice", func(r *Request) { r.Cards["funding"] = testToken }, CodeInvalidRequest, "same token"},
		{"card not used", func(r *Request) { r.Cards["spare"] = "tok_testccccccccccccccccccccccccccccc" }, CodeInvalidRequest, "cards.spare: not used"},
		{"placeholder for a card not sent", func(r *Request) { delete(r.Cards, "funding") }, CodeInvalidTemplate, "names a card that \"cards\" does not send"},
		{"single-card placeholder with named cards", func(r *Request) { r.Body = `{"n":"{{card.number}}"}` }, CodeInvalidTemplate, "with named cards write {{cards.NAME.number}}"},
		{"named placeholder with a single card", func(r *Request) { r.Card, r.Cards = testToken, nil }, CodeInvalidTemplate, "does not send"},
		{"named placeholder in a header the entry does not list", func(r *Request) { r.Headers["X-Other"] = []string{"{{cards.primary.number}}"} }, CodeInvalidTemplate, "X-Other"},
		{"named placeholder in the url", func(r *Request) { r.URL += "?n={{cards.primary.number}}" }, CodeInvalidTemplate, "url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, echo, namedCardsEntry)
			withNamedCards(e)
			r := e.namedRequest(`{"a":"{{cards.primary.number}}","b":"{{cards.funding.number}}"}`)
			tt.mod(r)
			fe := forwardErr(t, e.f, r)
			if fe.Code != tt.code || fe.Outcome != NotSent || !strings.Contains(fe.Message, tt.msg) {
				t.Errorf("Forward = %s/%s %q, want %s/not_sent containing %q", fe.Code, fe.Outcome, fe.Message, tt.code, tt.msg)
			}
			if strings.Contains(fe.Error(), "4242") || strings.Contains(fe.Error(), "5555") {
				t.Errorf("error %q echoes card digits", fe.Error())
			}
			if d, _ := e.cards.counts(); d != 0 {
				t.Errorf("Detokenize called %d times", d)
			}
			if n := len(e.p.requests()); n != 0 {
				t.Errorf("processor got %d requests", n)
			}
		})
	}
}

// TestNamedCardsScope: the entry scopes each named card; a card it does
// not list is card_not_allowed (a policy refusal, audited), a field
// outside the card's list card_field_not_allowed, and the single card's
// fields never widen a named card.
func TestNamedCardsScope(t *testing.T) {
	tests := []struct {
		name       string
		entry      func(*Options, *allowlist.Destination)
		body       string
		wantCode   string
		wantDetail string
	}{
		{"card not in the entry", func(o *Options, d *allowlist.Destination) {
			namedCardsEntry(o, d)
			delete(d.Cards, "funding")
		}, `{"a":"{{cards.primary.number}}","b":"{{cards.funding.number}}"}`, string(allowlist.ReasonCardNotAllowed), `card "funding"`},
		{"entry without cards", func(o *Options, d *allowlist.Destination) {}, `{"a":"{{cards.primary.number}}","b":"{{cards.funding.number}}"}`, string(allowlist.ReasonCardNotAllowed), `card "funding"`},
		{"field outside the card's scope", namedCardsEntry, `{"a":"{{cards.primary.number}}","b":"{{cards.funding.exp_year}}"}`, string(allowlist.ReasonFieldNotAllowed), `card field "exp_year" of card "funding"`},
		{"composite expiry needs both fields", namedCardsEntry, `{"a":"{{cards.primary.number}}","b":"{{cards.funding.exp|MMYY}}"}`, string(allowlist.ReasonFieldNotAllowed), `of card "funding"`},
		{"single card's fields do not apply", func(o *Options, d *allowlist.Destination) {
			namedCardsEntry(o, d)
			d.Fields = []allowlist.Field{allowlist.FieldExpYear}
		}, `{"a":"{{cards.primary.number}}","b":"{{cards.funding.exp_year}}"}`, string(allowlist.ReasonFieldNotAllowed), `of card "funding"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, echo, tt.entry)
			withNamedCards(e)
			fe := forwardErr(t, e.f, e.namedRequest(tt.body))
			if fe.Code != tt.wantCode || fe.Outcome != NotSent || !strings.Contains(fe.Message, tt.wantDetail) {
				t.Errorf("Forward = %s/%s %q, want %s/not_sent containing %q", fe.Code, fe.Outcome, fe.Message, tt.wantCode, tt.wantDetail)
			}
			if d, _ := e.cards.counts(); d != 0 {
				t.Errorf("Detokenize called %d times before the allowlist allowed it", d)
			}
			if n := len(e.p.requests()); n != 0 {
				t.Errorf("processor got %d requests", n)
			}
			recs := e.auditRecords()
			if len(recs) != 1 || recs[0].Kind != audit.KindDenied || recs[0].Reason != tt.wantCode || !cmp.Equal(recs[0].Tokens, []string{testToken2, testToken}) {
				t.Errorf("audit records = %+v, want one denied %s record with both tokens", recs, tt.wantCode)
			}
		})
	}
	t.Run("recheck", func(t *testing.T) {
		// The forwarder repeats the decision: an entry that Match admitted
		// but that does not list the card is still refused.
		d := &allowlist.Destination{Cards: map[string][]allowlist.Field{"primary": {allowlist.FieldNumber}}}
		v := &validated{cards: map[string][]allowlist.Field{"primary": {allowlist.FieldNumber}, "funding": {allowlist.FieldNumber}}}
		if e := recheckCards(d, v); e == nil || e.Code != string(allowlist.ReasonCardNotAllowed) {
			t.Errorf("recheckCards = %v, want card_not_allowed", e)
		}
		v.cards = map[string][]allowlist.Field{"primary": {allowlist.FieldCVC}}
		if e := recheckCards(d, v); e == nil || e.Code != string(allowlist.ReasonFieldNotAllowed) {
			t.Errorf("recheckCards = %v, want card_field_not_allowed", e)
		}
	})
}

// TestNamedCardsCVCPerCard: each card's CVC is consumed by the first
// forward that reads it, and a later one says which card lacks it.
func TestNamedCardsCVCPerCard(t *testing.T) {
	e := newEnv(t, echo, namedCardsEntry)
	withNamedCards(e)
	body := `{"a":"{{cards.primary.number}}","b":"{{cards.funding.cvc}}"}`
	if _, err := e.f.Forward(context.Background(), e.namedRequest(body)); err != nil {
		t.Fatalf("first Forward: %v", err)
	}
	fe := forwardErr(t, e.f, e.namedRequest(body))
	if fe.Code != CodeCVCNotAvailable || fe.Outcome != NotSent || !strings.Contains(fe.Message, "card funding:") {
		t.Errorf("second Forward = %s/%s %q, want cvc_not_available naming card funding", fe.Code, fe.Outcome, fe.Message)
	}
	e.cards.mu.Lock()
	consumed := slices.Clone(e.cards.consumed)
	e.cards.mu.Unlock()
	if !cmp.Equal(consumed, []string{testToken2, testToken2}) {
		t.Errorf("consuming reads for %v, want the funding card's twice", consumed)
	}
	if n := len(e.p.requests()); n != 1 {
		t.Errorf("processor got %d requests, want 1", n)
	}
}

// TestNamedCardsStoreErrors: a named card the vault does not know refuses
// the forward; nothing is sent.
func TestNamedCardsStoreErrors(t *testing.T) {
	e := newEnv(t, echo, namedCardsEntry)
	withNamedCards(e)
	r := e.namedRequest(`{"a":"{{cards.primary.number}}","b":"{{cards.funding.number}}"}`)
	r.Cards["funding"] = "tok_unknownaaaaaaaaaaaaaaaaaaaaaaaaa"
	fe := forwardErr(t, e.f, r)
	if fe.Code != "token_not_found" || fe.Outcome != NotSent {
		t.Errorf("Forward = %s/%s, want token_not_found/not_sent", fe.Code, fe.Outcome)
	}
	if n := len(e.p.requests()); n != 0 {
		t.Errorf("processor got %d requests", n)
	}
	for _, rec := range e.auditRecords() {
		if rec.Kind == audit.KindIntent {
			t.Errorf("an intent record was written for a forward that read no card")
		}
	}
}

func TestNamedCardsCanary(t *testing.T) {
	srv := redistest.Start(t)
	set, err := canary.NewSet(srv.Client(), "canaries", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Add(context.Background(), testToken2); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, echo, namedCardsEntry, func(o *Options, _ *allowlist.Destination) { o.Canaries = set })
	withNamedCards(e)
	fe := forwardErr(t, e.f, e.namedRequest(`{"a":"{{cards.primary.number}}","b":"{{cards.funding.number}}"}`))
	if fe.Code != "token_not_found" || fe.Message != "token not found" {
		t.Errorf("Forward = %s %q, want the unknown-token answer", fe.Code, fe.Message)
	}
	if d, _ := e.cards.counts(); d != 0 {
		t.Errorf("Detokenize called %d times; a canary forward reads no card", d)
	}
	var canaries []audit.Record
	for _, r := range e.auditRecords() {
		if r.Kind == audit.KindCanary {
			canaries = append(canaries, r)
		}
	}
	if len(canaries) != 1 || canaries[0].Token != testToken2 || canaries[0].Tokens != nil {
		t.Errorf("canary records = %+v, want one naming the funding token", canaries)
	}
	if logs := e.logText(); !strings.Contains(logs, "ALERT: canary token used") || !strings.Contains(logs, testToken2) {
		t.Errorf("no alert for the funding token:\n%s", logs)
	}
}

func TestNamedCardsDryRun(t *testing.T) {
	e := newEnv(t, echo, namedCardsEntry)
	withNamedCards(e)
	r := e.namedRequest(twoCardBody)
	r.DryRun = true
	resp, err := e.f.Forward(context.Background(), r)
	if err != nil {
		t.Fatalf("Forward: %v", err)
	}
	want := `{"source":{"number":"[cards.primary.number]","exp":"[cards.primary.exp|MM/YY]","cvc":"[cards.primary.cvc]"},` +
		`"funding":{"number":"[cards.funding.number]","name":"[cards.funding.name]"}}`
	if resp.DryRun == nil || resp.DryRun.Body != want {
		t.Errorf("preview = %+v, want body %s", resp.DryRun, want)
	}
	if d, _ := e.cards.counts(); d != 0 {
		t.Errorf("a dry run detokenized %d times", d)
	}
}

// TestFingerprintCoversNamedCards: the idempotency fingerprint covers
// every token, and a single-card request keeps the fingerprint it had
// before named cards existed (a key claimed before an upgrade still
// matches its retry).
func TestFingerprintCoversNamedCards(t *testing.T) {
	e := newEnv(t, echo)
	single := e.jsonRequest(cardBody)
	old := struct {
		Destination string              `json:"destination"`
		URL         string              `json:"url"`
		Method      string              `json:"method"`
		Card        string              `json:"card"`
		Headers     map[string][]string `json:"headers"`
		Body        string              `json:"body"`
	}{single.Destination, single.URL, single.Method, single.Card, map[string][]string{"Content-Type": {"application/json"}}, single.Body}
	b, _ := json.Marshal(old)
	sum := sha256.Sum256(b)
	if got := fingerprint(single); got != hex.EncodeToString(sum[:]) {
		t.Errorf("single-card fingerprint changed: %s", got)
	}

	a := e.namedRequest(twoCardBody)
	b2 := e.namedRequest(twoCardBody)
	b2.Cards["funding"] = "tok_testccccccccccccccccccccccccccccc"
	c := e.namedRequest(twoCardBody)
	c.Cards = map[string]string{"primary": testToken2, "funding": testToken} // swapped
	if fingerprint(a) == fingerprint(b2) || fingerprint(a) == fingerprint(c) {
		t.Error("fingerprint ignores a named card's token or name")
	}
	if fingerprint(a) != fingerprint(e.namedRequest(twoCardBody)) {
		t.Error("fingerprint of the same request differs")
	}
}
