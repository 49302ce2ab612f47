package forwarder

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/cardscan"
	"github.com/cardgate/cardgate/vaultclient"
)

// Identifiers from the issue: a Luhn-valid 15-digit network transaction id
// and a 23-digit acquirer reference number.
const (
	testNTI = "722463149772052"
	testARN = "74537604221431003881310"
	newPAN  = "5555555555554444" // the account updater's new card
)

func paths(ss ...string) []cardscan.Path {
	var out []cardscan.Path
	for _, s := range ss {
		out = append(out, cardscan.MustParsePath(s))
	}
	return out
}

// answer is a processor that answers with contentType and body, after
// replacing "{{sent}}" with the card number it received in "number".
func answer(contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Number string `json:"number"`
		}
		json.NewDecoder(r.Body).Decode(&in)
		w.Header().Set("Content-Type", contentType)
		w.Write([]byte(strings.ReplaceAll(body, "{{sent}}", in.Number)))
	}
}

func withRules(ids []string, rcs ...allowlist.ReturnedCardRule) envOpt {
	return func(o *Options, d *allowlist.Destination) {
		d.Response = &allowlist.ResponseRules{Identifiers: paths(ids...), ReturnedCards: rcs}
	}
}

func TestForwardResponseIdentifiers(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		ids                     []string
		want                    string
	}{
		{
			"json: arn and nti kept at declared paths, masked elsewhere", "application/json",
			`{"processorInformation":{"networkTransactionId":"` + testNTI + `"},"acquirerReferenceNumber":"` + testARN + `",` +
				`"echo":"` + testNTI + `","other":` + testARN + `,"card":"{{sent}}"}`,
			[]string{"$.processorInformation.networkTransactionId", "$.acquirerReferenceNumber"},
			`{"processorInformation":{"networkTransactionId":"` + testNTI + `"},"acquirerReferenceNumber":"` + testARN + `",` +
				`"echo":"***********2052","other":*******************1310,"card":"************4242"}`,
		},
		{
			"json: the forwarded card in an identifier field is masked", "application/json",
			`{"networkTransactionId":"{{sent}}","arn":"{{sent}}` + testARN + `"}`,
			[]string{"$.networkTransactionId", "$.arn"},
			// A kept value holding the card glued to other digits is masked whole.
			`{"networkTransactionId":"************4242","arn":"` + strings.Repeat("*", 16+len(testARN)) + `"}`,
		},
		{
			"json: the forwarded cvc in an identifier field is masked", "application/json",
			`{"authCode":"` + testCVC + `","id":"` + testNTI + `"}`,
			[]string{"$.authCode", "$.id"},
			`{"authCode":"***","id":"` + testNTI + `"}`,
		},
		{
			"json: malformed answer, everything masked", "application/json",
			`{"networkTransactionId":"` + testNTI + `","acquirerReferenceNumber":"` + testARN + `",`,
			[]string{"$.networkTransactionId", "$.acquirerReferenceNumber"},
			`{"networkTransactionId":"***********2052","acquirerReferenceNumber":"*******************1310",`,
		},
		{
			"json declared but the answer is text/plain: everything masked", "text/plain",
			`{"networkTransactionId":"` + testNTI + `"}`,
			[]string{"$.networkTransactionId"},
			`{"networkTransactionId":"***********2052"}`,
		},
		{
			"xml with a doctype", "text/xml; charset=utf-8",
			`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
				`<!DOCTYPE paymentService PUBLIC "-//Worldpay//DTD Worldpay PaymentService v1//EN" "http://dtd.worldpay.com/paymentService_v1.dtd">` + "\n" +
				`<paymentService><reply><orderStatus orderCode="` + testARN + `"><payment><schemeResponse><transactionIdentifier>` + testNTI +
				`</transactionIdentifier></schemeResponse><cardNumber>{{sent}}</cardNumber><ref>` + testNTI + `</ref></payment></orderStatus></reply></paymentService>`,
			[]string{"/paymentService/reply/orderStatus/payment/schemeResponse/transactionIdentifier", "/paymentService/reply/orderStatus/@orderCode"},
			`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
				`<!DOCTYPE paymentService PUBLIC "-//Worldpay//DTD Worldpay PaymentService v1//EN" "http://dtd.worldpay.com/paymentService_v1.dtd">` + "\n" +
				`<paymentService><reply><orderStatus orderCode="` + testARN + `"><payment><schemeResponse><transactionIdentifier>` + testNTI +
				`</transactionIdentifier></schemeResponse><cardNumber>************4242</cardNumber><ref>***********2052</ref></payment></orderStatus></reply></paymentService>`,
		},
		{
			"form", "application/x-www-form-urlencoded",
			"network_transaction_id=" + testNTI + "&echo=" + testNTI + "&card={{sent}}",
			[]string{"form:network_transaction_id"},
			"network_transaction_id=" + testNTI + "&echo=***********2052&card=************4242",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, answer(tt.contentType, tt.body), withRules(tt.ids))
			resp, err := e.f.Forward(context.Background(), e.jsonRequest(`{"number":"{{card.number}}","cvc":"{{card.cvc}}"}`))
			if err != nil {
				t.Fatalf("Forward: %v", err)
			}
			if resp.Body != tt.want {
				t.Errorf("body\n got %s\nwant %s", resp.Body, tt.want)
			}
			if resp.ReturnedCards != nil {
				t.Errorf("ReturnedCards = %+v, want none", resp.ReturnedCards)
			}
		})
	}
}

// newTestVault is a real vault: a bolt store and a local keyring in a
// temporary directory.
func newTestVault(t *testing.T) *vaultclient.Vault {
	t.Helper()
	dir := t.TempDir()
	if err := vaultclient.CreateLocalKeyring(filepath.Join(dir, "keyring.json")); err != nil {
		t.Fatal(err)
	}
	keys, err := vaultclient.OpenLocalKeyring(filepath.Join(dir, "keyring.json"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	store, err := vaultclient.OpenBoltStore(filepath.Join(dir, "cards.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	v, err := vaultclient.New(store, keys, vaultclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var updaterRule = allowlist.ReturnedCardRule{
	Number:   cardscan.MustParsePath("$.accountUpdate.card.number"),
	ExpMonth: cardscan.MustParsePath("$.accountUpdate.card.expirationMonth"),
	ExpYear:  cardscan.MustParsePath("$.accountUpdate.card.expirationYear"),
}

// TestForwardAccountUpdater: the processor answers with the card's new
// number; the caller gets a token for it, never the number, and that token
// then forwards the new card.
func TestForwardAccountUpdater(t *testing.T) {
	vault := newTestVault(t)
	old, err := vault.Tokenize(context.Background(), vaultclient.CardInput{Number: testPAN, ExpMonth: 3, ExpYear: 2031})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"id":"upd_1","accountUpdate":{"status":"NEW_ACCOUNT_NUMBER","card":{"number":"` + newPAN + `","expirationMonth":"12","expirationYear":"2030"}},` +
		`"previous":"{{sent}}","networkTransactionId":"` + testNTI + `"}`
	e := newEnv(t, answer("application/json", body),
		withRules([]string{"$.networkTransactionId"}, updaterRule),
		func(o *Options, _ *allowlist.Destination) { o.Cards = vault })
	req := e.jsonRequest(`{"number":"{{card.number}}"}`)
	req.Card = old.Token
	resp, err := e.f.Forward(context.Background(), req)
	if err != nil {
		t.Fatalf("Forward: %v", err)
	}
	if len(resp.ReturnedCards) != 1 {
		t.Fatalf("ReturnedCards = %+v, want one", resp.ReturnedCards)
	}
	rc := resp.ReturnedCards[0]
	if !vaultclient.ValidToken(rc.Token) || rc.Token == old.Token {
		t.Fatalf("returned card token %q is not a new token", rc.Token)
	}
	want := ReturnedCard{Path: "$.accountUpdate.card.number", Token: rc.Token, Last4: "4444", Brand: "mastercard"}
	if diff := cmp.Diff(want, rc); diff != "" {
		t.Errorf("returned card (-want +got):\n%s", diff)
	}
	wantBody := `{"id":"upd_1","accountUpdate":{"status":"NEW_ACCOUNT_NUMBER","card":{"number":"` + rc.Token + `","expirationMonth":"**","expirationYear":"****"}},` +
		`"previous":"************4242","networkTransactionId":"` + testNTI + `"}`
	if resp.Body != wantBody {
		t.Errorf("body\n got %s\nwant %s", resp.Body, wantBody)
	}
	if strings.Contains(resp.Body, newPAN) || strings.Contains(e.logText(), newPAN) {
		t.Error("the new card number reached the caller or the log")
	}

	// The token is a real card in the vault: it forwards the new number
	// with the new expiry.
	card, err := vault.Detokenize(context.Background(), rc.Token)
	if err != nil || card.Number.Reveal() != newPAN || card.ExpMonth != 12 || card.ExpYear != 2030 {
		t.Fatalf("Detokenize(new token) = %v, %v", card, err)
	}
	req2 := e.jsonRequest(`{"number":"{{card.number}}","exp":"{{card.exp_month}}/{{card.exp_year}}"}`)
	req2.Card = rc.Token
	if _, err := e.f.Forward(context.Background(), req2); err != nil {
		t.Fatalf("Forward with the returned token: %v", err)
	}
	got := e.p.requests()
	if len(got) != 2 || string(got[1].body) != `{"number":"`+newPAN+`","exp":"12/2030"}` {
		t.Fatalf("processor's second request = %q, want the new card", got[len(got)-1].body)
	}

	// The tokenization has its audit record, naming the new token.
	var tokenized []audit.Record
	for _, r := range e.auditRecords() {
		if r.Kind == audit.KindTokenized && r.ForwardID == resp.ForwardID {
			tokenized = append(tokenized, r)
		}
	}
	if len(tokenized) != 1 || tokenized[0].Token != rc.Token || tokenized[0].ForwardID != resp.ForwardID || tokenized[0].Destination != "acme" {
		t.Errorf("tokenized audit records = %+v, want one for %s in %s", tokenized, rc.Token, resp.ForwardID)
	}
}

// TestForwardReturnedCardOutcomes: a value that cannot be tokenized is
// masked, and the answer is still returned, with the reason.
func TestForwardReturnedCardOutcomes(t *testing.T) {
	xmlRule := allowlist.ReturnedCardRule{
		Number:   cardscan.MustParsePath("/reply/card/@number"),
		ExpMonth: cardscan.MustParsePath("/reply/card/month"),
		ExpYear:  cardscan.MustParsePath("/reply/card/year"),
	}
	card := func(number, month, year string) string {
		return `{"accountUpdate":{"card":{"number":"` + number + `","expirationMonth":"` + month + `","expirationYear":"` + year + `"}}}`
	}
	tests := []struct {
		name, contentType, body string
		rule                    allowlist.ReturnedCardRule
		want                    []ReturnedCard
		wantBody                string // "" : not checked; tokens vary
	}{
		{"not a card: the processor's own mask", "application/json", card("************4444", "12", "2030"), updaterRule,
			[]ReturnedCard{{Path: "$.accountUpdate.card.number", Error: ReturnedCardNotACard}}, card("****************", "**", "****")},
		{"not a card: luhn fails", "application/json", card("5555555555554445", "12", "2030"), updaterRule,
			[]ReturnedCard{{Path: "$.accountUpdate.card.number", Error: ReturnedCardNotACard}}, card("****************", "**", "****")},
		{"no expiry", "application/json", `{"accountUpdate":{"card":{"number":"` + newPAN + `"}}}`, updaterRule,
			[]ReturnedCard{{Path: "$.accountUpdate.card.number", Error: ReturnedCardInvalidExpiry}}, `{"accountUpdate":{"card":{"number":"****************"}}}`},
		{"month 13", "application/json", card(newPAN, "13", "2030"), updaterRule,
			[]ReturnedCard{{Path: "$.accountUpdate.card.number", Error: ReturnedCardInvalidExpiry}}, card("****************", "**", "****")},
		{"expired: the vault refuses", "application/json", card(newPAN, "01", "2020"), updaterRule,
			[]ReturnedCard{{Path: "$.accountUpdate.card.number", Error: ReturnedCardTokenizeFailed}}, card("****************", "**", "****")},
		{"empty: nothing returned", "application/json", card("", "", ""), updaterRule, nil, card("", "", "")},
		{"malformed answer: nothing tokenized, all masked", "application/json", card(newPAN, "12", "2030") + ",", updaterRule,
			nil, card("************4444", "12", "2030") + ","},
		{"xml attribute, two-digit year", "application/xml", `<reply><card number="` + newPAN + `"><month>7</month><year>30</year></card></reply>`, xmlRule,
			[]ReturnedCard{{Path: "/reply/card/@number", Last4: "4444", Brand: "mastercard"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, answer(tt.contentType, tt.body), withRules(nil, tt.rule),
				func(o *Options, _ *allowlist.Destination) {
					o.Cards = cardsWithVault{e0: newFakeCards(), v: newTestVault(t)}
				})
			resp, err := e.f.Forward(context.Background(), e.jsonRequest(`{"number":"{{card.number}}"}`))
			if err != nil {
				t.Fatalf("Forward: %v", err)
			}
			got := resp.ReturnedCards
			for i := range got {
				if got[i].Token != "" && !vaultclient.ValidToken(got[i].Token) {
					t.Errorf("token %q is not a token", got[i].Token)
				}
				if got[i].Token != "" && !strings.Contains(resp.Body, got[i].Token) {
					t.Errorf("body %s lacks the token", resp.Body)
				}
				got[i].Token = ""
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ReturnedCards (-want +got):\n%s", diff)
			}
			if tt.wantBody != "" && resp.Body != tt.wantBody {
				t.Errorf("body\n got %s\nwant %s", resp.Body, tt.wantBody)
			}
			if strings.Contains(resp.Body, newPAN) {
				t.Errorf("body %s shows the returned card", resp.Body)
			}
		})
	}
}

// cardsWithVault detokenizes the test card from the fake and tokenizes
// into a real vault.
type cardsWithVault struct {
	e0 *fakeCards
	v  *vaultclient.Vault
}

func (c cardsWithVault) Detokenize(ctx context.Context, tok string) (*vaultclient.Card, error) {
	return c.e0.Detokenize(ctx, tok)
}

func (c cardsWithVault) DetokenizeConsumingCVC(ctx context.Context, tok string) (*vaultclient.Card, error) {
	return c.e0.DetokenizeConsumingCVC(ctx, tok)
}

func (c cardsWithVault) Tokenize(ctx context.Context, in vaultclient.CardInput) (*vaultclient.TokenInfo, error) {
	return c.v.Tokenize(ctx, in)
}

// An entry with returned cards on a gateway that cannot tokenize is
// refused before anything is sent.
func TestForwardReturnedCardsNeedAnIssuer(t *testing.T) {
	e := newEnv(t, answer("application/json", `{}`), withRules(nil, updaterRule))
	fe := forwardErr(t, e.f, e.jsonRequest(`{"number":"{{card.number}}"}`))
	if fe.Code != CodeInternal || fe.Outcome != NotSent {
		t.Errorf("Forward = %s/%s, want internal_error/not_sent", fe.Code, fe.Outcome)
	}
	if n := len(e.p.requests()); n != 0 {
		t.Errorf("processor got %d requests, want none", n)
	}
	if detok, _ := e.cards.counts(); detok != 0 {
		t.Errorf("the card was read %d times, want never", detok)
	}
}

// TestForwardRequestIdentifiers: a network transaction id is accepted in a
// declared body field and refused everywhere else.
func TestForwardRequestIdentifiers(t *testing.T) {
	declare := func(ps ...string) envOpt {
		return func(o *Options, d *allowlist.Destination) { d.RequestIdentifiers = paths(ps...) }
	}
	const mit = `{"number":"{{card.number}}","exp_month":{{card.exp_month}},"processingInformation":{"previousTransactionId":"` + testNTI + `"}}`
	tests := []struct {
		name     string
		declared []string
		edit     func(*Request)
		wantErr  string // "" : sent
	}{
		{"declared field accepted", []string{"$.processingInformation.previousTransactionId"}, nil, ""},
		{"no declaration: refused", nil, nil, CodeLiteralCard},
		{"another field: refused", []string{"$.processingInformation.previousTransactionId"}, func(r *Request) {
			r.Body = `{"number":"{{card.number}}","merchantRef":"` + testNTI + `"}`
		}, CodeLiteralCard},
		{"declared field and another: refused", []string{"$.processingInformation.previousTransactionId"}, func(r *Request) {
			r.Body = strings.Replace(mit, `"number"`, `"ref":"`+testNTI+`","number"`, 1)
		}, CodeLiteralCard},
		{"in a header: refused", []string{"$.processingInformation.previousTransactionId"}, func(r *Request) {
			r.Headers["X-Previous-Transaction"] = []string{testNTI}
		}, CodeLiteralCard},
		{"in the query: refused", []string{"$.processingInformation.previousTransactionId"}, func(r *Request) {
			r.URL += "?previousTransactionId=" + testNTI
		}, CodeLiteralCard},
		{"malformed template: refused", []string{"$.processingInformation.previousTransactionId"}, func(r *Request) {
			r.Body = strings.TrimSuffix(mit, "}")
		}, CodeLiteralCard},
		{"path of another kind: refused", []string{"form:previousTransactionId", "/processingInformation/previousTransactionId"}, nil, CodeLiteralCard},
		{"form body: declared key accepted", []string{"form:previous_transaction_id"}, func(r *Request) {
			r.Headers["Content-Type"] = []string{"application/x-www-form-urlencoded"}
			r.Body = "card%5Bnumber%5D={{card.number}}&previous_transaction_id=" + testNTI
		}, ""},
		{"form body: other key refused", []string{"form:previous_transaction_id"}, func(r *Request) {
			r.Headers["Content-Type"] = []string{"application/x-www-form-urlencoded"}
			r.Body = "card%5Bnumber%5D={{card.number}}&previous_transaction_id=1&ref=%37%32%32463149772052"
		}, CodeLiteralCard},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, echo, declare(tt.declared...))
			req := e.jsonRequest(mit)
			if tt.edit != nil {
				tt.edit(req)
			}
			resp, err := e.f.Forward(context.Background(), req)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Forward: %v", err)
				}
				if got := e.p.requests(); len(got) != 1 || !strings.Contains(string(got[0].body), testNTI) {
					t.Errorf("processor did not get the transaction id: %v", got)
				}
				if resp.Outcome != Answered {
					t.Errorf("Outcome = %s", resp.Outcome)
				}
				return
			}
			fe := forwardErr(t, e.f, req)
			if fe.Code != tt.wantErr || fe.Outcome != NotSent {
				t.Errorf("Forward = %s/%s, want %s/not_sent", fe.Code, fe.Outcome, tt.wantErr)
			}
			if strings.Contains(fe.Message, testNTI) {
				t.Errorf("message %q echoes the value", fe.Message)
			}
			if n := len(e.p.requests()); n != 0 {
				t.Errorf("processor got %d requests, want none", n)
			}
		})
	}
}

// The exemption is decided on the entry validate found; if the matched
// entry's paths differ (the allowlist was reloaded in between), the
// request is refused.
func TestCheckEntryRulesReload(t *testing.T) {
	f := &Forwarder{cards: newFakeCards()}
	d := &allowlist.Destination{RequestIdentifiers: paths("$.a")}
	tests := []struct {
		name string
		used []cardscan.Path
		want string
	}{
		{"nothing exempted", nil, ""},
		{"same paths", paths("$['a']"), ""},
		{"other paths", paths("$.b"), CodeLiteralCard},
		{"more paths", paths("$.a", "$.b"), CodeLiteralCard},
	}
	for _, tt := range tests {
		e := f.checkEntryRules(d, &validated{identifiersUsed: tt.used})
		got := ""
		if e != nil {
			got = e.Code
		}
		if got != tt.want {
			t.Errorf("%s: checkEntryRules = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// refuseTokenized is an audit log that cannot write tokenized records.
type refuseTokenized struct{ Auditor }

func (a refuseTokenized) Append(ctx context.Context, rec audit.Record) (audit.Record, error) {
	if rec.Kind == audit.KindTokenized {
		return audit.Record{}, errors.New("test: audit sink down")
	}
	return a.Auditor.Append(ctx, rec)
}

// A token whose audit record cannot be written is withheld: the caller
// gets tokenize_failed and a masked value, and the answer.
func TestForwardReturnedCardAuditFails(t *testing.T) {
	body := `{"accountUpdate":{"card":{"number":"` + newPAN + `","expirationMonth":"12","expirationYear":"2030"}}}`
	e := newEnv(t, answer("application/json", body), withRules(nil, updaterRule),
		func(o *Options, _ *allowlist.Destination) {
			o.Cards = cardsWithVault{e0: newFakeCards(), v: newTestVault(t)}
			o.Auditor = refuseTokenized{o.Auditor}
		})
	resp, err := e.f.Forward(context.Background(), e.jsonRequest(`{"number":"{{card.number}}"}`))
	if err != nil {
		t.Fatalf("Forward: %v", err)
	}
	want := []ReturnedCard{{Path: "$.accountUpdate.card.number", Error: ReturnedCardTokenizeFailed}}
	if diff := cmp.Diff(want, resp.ReturnedCards); diff != "" {
		t.Errorf("ReturnedCards (-want +got):\n%s", diff)
	}
	if strings.Contains(resp.Body, "tok_") || strings.Contains(resp.Body, newPAN) {
		t.Errorf("body %s shows a token or the card", resp.Body)
	}
	if !strings.Contains(e.logText(), "token withheld") {
		t.Errorf("log does not say the token was withheld:\n%s", e.logText())
	}
}
