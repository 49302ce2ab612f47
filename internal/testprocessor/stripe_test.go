package testprocessor

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const stripeKey = "sk_test_51CardgateConformanceKey0000"

func stripeForm(mutate func(url.Values)) []byte {
	f := url.Values{
		"amount": {"1000"}, "currency": {"usd"},
		"card[number]": {testCard.Number}, "card[exp_month]": {"3"}, "card[exp_year]": {"2030"},
		"card[cvc]": {testCard.CVC}, "card[name]": {testCard.Name},
	}
	if mutate != nil {
		mutate(f)
	}
	return []byte(f.Encode())
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestStripe(t *testing.T) {
	p := &Stripe{SecretKey: stripeKey, Card: testCard}
	s := Start(t, newCA(t), p)
	form := "application/x-www-form-urlencoded"
	tests := []struct {
		name    string
		path    string
		ctype   string
		auth    string
		body    []byte
		status  int
		verdict Verdict
		errType string // error.type of a refusal
		errCode string // error.code of a refusal
	}{
		{"basic auth with the key as user, empty password", StripePath, form, basic(stripeKey, ""), stripeForm(nil), 200, Accepted, "", ""},
		{"bearer auth", StripePath, form, "Bearer " + stripeKey, stripeForm(nil), 200, Accepted, "", ""},
		{"two-digit year and zero-padded month", StripePath, form, basic(stripeKey, ""), stripeForm(func(f url.Values) {
			f.Set("card[exp_year]", "30")
			f.Set("card[exp_month]", "03")
		}), 200, Accepted, "", ""},
		{"no key", StripePath, form, "", stripeForm(nil), 401, RefusedAuth, "invalid_request_error", ""},
		{"wrong key", StripePath, form, basic("sk_test_51SomebodyElsesKey99999", ""), stripeForm(nil), 401, RefusedAuth, "invalid_request_error", ""},
		{"key as password, not user", StripePath, form, basic("", stripeKey), stripeForm(nil), 401, RefusedAuth, "invalid_request_error", ""},
		{"key with a password", StripePath, form, basic(stripeKey, "x"), stripeForm(nil), 401, RefusedAuth, "invalid_request_error", ""},
		{"wrong path", "/v1/charge", form, basic(stripeKey, ""), stripeForm(nil), 404, RefusedRequest, "invalid_request_error", ""},
		{"json body", StripePath, "application/json", basic(stripeKey, ""), []byte(`{"amount":1000}`), 400, RefusedRequest, "invalid_request_error", ""},
		{"unknown parameter", StripePath, form, basic(stripeKey, ""), stripeForm(func(f url.Values) { f.Set("card[pin]", "1234") }), 400, RefusedRequest, "invalid_request_error", "parameter_unknown"},
		{"another card", StripePath, form, basic(stripeKey, ""), stripeForm(func(f url.Values) { f.Set("card[number]", "4111111111111111") }), 402, RefusedCard, "card_error", "incorrect_number"},
		{"wrong month", StripePath, form, basic(stripeKey, ""), stripeForm(func(f url.Values) { f.Set("card[exp_month]", "12") }), 402, RefusedCard, "card_error", "invalid_expiry_month"},
		{"three-digit year", StripePath, form, basic(stripeKey, ""), stripeForm(func(f url.Values) { f.Set("card[exp_year]", "030") }), 402, RefusedCard, "card_error", "invalid_expiry_year"},
		{"wrong cvc", StripePath, form, basic(stripeKey, ""), stripeForm(func(f url.Values) { f.Set("card[cvc]", "123") }), 402, RefusedCard, "card_error", "incorrect_cvc"},
		{"name escaped wrongly", StripePath, form, basic(stripeKey, ""), []byte(strings.Replace(string(stripeForm(nil)), "%26", "&", 1)), 400, RefusedRequest, "invalid_request_error", "parameter_unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newRequest(t, http.MethodPost, s.URL+tt.path, tt.ctype, tt.body)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			got := do(t, s, req)
			check(t, got, tt.status, tt.verdict)
			if tt.verdict == Accepted {
				card := "payment_method_details"
				want := map[string]any{
					"network_transaction_id": NetworkTransactionID, "authorization_code": AuthCode,
					"acquirer_reference_number": ARN, "last4": "4242", "brand": "visa",
				}
				gotIDs := map[string]any{}
				for k := range want {
					gotIDs[k] = jsonAt(t, got.body, card, "card", k)
				}
				if d := cmp.Diff(want, gotIDs); d != "" {
					t.Errorf("charge identifiers (-want +got):\n%s", d)
				}
				if jsonAt(t, got.body, "status") != "succeeded" {
					t.Errorf("charge status = %v, want succeeded", jsonAt(t, got.body, "status"))
				}
				return
			}
			if typ := jsonAt(t, got.body, "error", "type"); typ != tt.errType {
				t.Errorf("error.type = %v, want %s", typ, tt.errType)
			}
			if code, _ := jsonAt(t, got.body, "error", "code").(string); code != tt.errCode {
				t.Errorf("error.code = %q, want %q", code, tt.errCode)
			}
			if tt.status == 401 {
				if got.header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				if strings.Contains(string(got.body), "SomebodyElsesKey") || strings.Contains(string(got.body), stripeKey) {
					t.Errorf("401 body %s echoes a key; Stripe shows only its last four", got.body)
				}
			}
		})
	}
}

func TestStripeAccountUpdated(t *testing.T) {
	s := Start(t, newCA(t), &Stripe{SecretKey: stripeKey, Card: testCard, Answer: AnswerAccountUpdated})
	req := newRequest(t, http.MethodPost, s.URL+StripePath, "application/x-www-form-urlencoded", stripeForm(nil))
	req.Header.Set("Authorization", basic(stripeKey, ""))
	got := do(t, s, req)
	check(t, got, 200, Accepted)
	nc := jsonAt(t, got.body, "payment_method_details", "card", "account_updater", "new_card")
	want := map[string]any{"number": UpdatedNumber, "exp_month": float64(UpdatedExpMonth), "exp_year": float64(UpdatedExpYear)}
	if d := cmp.Diff(want, nc); d != "" {
		t.Errorf("account_updater.new_card (-want +got):\n%s", d)
	}
}

// A request for a merchant-initiated payment carries no CVC: a processor
// told to expect none refuses one.
func TestStripeNoCVCExpected(t *testing.T) {
	c := testCard
	c.CVC = ""
	s := Start(t, newCA(t), &Stripe{SecretKey: stripeKey, Card: c})
	for _, tt := range []struct {
		name    string
		body    []byte
		verdict Verdict
	}{
		{"without cvc", stripeForm(func(f url.Values) { f.Del("card[cvc]") }), Accepted},
		{"with cvc", stripeForm(nil), RefusedCard},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := newRequest(t, http.MethodPost, s.URL+StripePath, "application/x-www-form-urlencoded", tt.body)
			req.Header.Set("Authorization", basic(stripeKey, ""))
			if got := do(t, s, req); got.x.Verdict != tt.verdict {
				t.Errorf("verdict = %s (%s), want %s", got.x.Verdict, got.x.Reason, tt.verdict)
			}
		})
	}
}
