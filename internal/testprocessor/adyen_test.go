package testprocessor

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	adyenKey      = "AQEyhmfxLI3MaBFLw0m/n3Q5qf3VaY9UCJ14XWZE03G/k2NFitRvbe4N1XqH1eHaH2AksaEQwV1bDb7kfNy1WIxIIkxgBw==-test"
	adyenMerchant = "CardgateECOM"
)

func adyenBody(mutate func(pm map[string]any, top map[string]any)) []byte {
	pm := map[string]any{
		"type": "scheme", "number": testCard.Number, "expiryMonth": "03", "expiryYear": "2030",
		"cvc": testCard.CVC, "holderName": testCard.Name,
	}
	top := map[string]any{
		"amount":          map[string]any{"currency": "EUR", "value": 1000},
		"reference":       "order-0001",
		"merchantAccount": adyenMerchant,
		"paymentMethod":   pm,
	}
	if mutate != nil {
		mutate(pm, top)
	}
	b, _ := json.Marshal(top)
	return b
}

func TestAdyen(t *testing.T) {
	s := Start(t, newCA(t), &Adyen{APIKey: adyenKey, MerchantAccount: adyenMerchant, Card: testCard})
	tests := []struct {
		name      string
		key       string
		ctype     string
		body      []byte
		status    int
		verdict   Verdict
		errorCode string // errorCode of an error body
		errorType string
	}{
		{"accepted", adyenKey, "application/json", adyenBody(nil), 200, Accepted, "", ""},
		{"no key", "", "application/json", adyenBody(nil), 401, RefusedAuth, "000", "security"},
		{"wrong key", adyenKey + "x", "application/json", adyenBody(nil), 401, RefusedAuth, "000", "security"},
		{"another merchant account", adyenKey, "application/json", adyenBody(func(_, top map[string]any) { top["merchantAccount"] = "OtherECOM" }), 403, RefusedAuth, "901", "security"},
		{"form body", adyenKey, "application/x-www-form-urlencoded", []byte("number=4242"), 415, RefusedRequest, "000", "validation"},
		{"unknown field", adyenKey, "application/json", adyenBody(func(_, top map[string]any) { top["card"] = map[string]any{} }), 400, RefusedRequest, "702", "validation"},
		{"month not zero-padded", adyenKey, "application/json", adyenBody(func(pm, _ map[string]any) { pm["expiryMonth"] = "3" }), 422, RefusedRequest, "129", "validation"},
		{"two-digit year", adyenKey, "application/json", adyenBody(func(pm, _ map[string]any) { pm["expiryYear"] = "30" }), 422, RefusedRequest, "129", "validation"},
		{"month as a number", adyenKey, "application/json", adyenBody(func(pm, _ map[string]any) { pm["expiryMonth"] = 3 }), 422, RefusedRequest, "702", "validation"},
		{"no number", adyenKey, "application/json", adyenBody(func(pm, _ map[string]any) { delete(pm, "number") }), 422, RefusedRequest, "137", "validation"},
		{"another card", adyenKey, "application/json", adyenBody(func(pm, _ map[string]any) { pm["number"] = "4111111111111111" }), 200, RefusedCard, "", ""},
		{"wrong holder name", adyenKey, "application/json", adyenBody(func(pm, _ map[string]any) { pm["holderName"] = "Jane JJ Doe" }), 200, RefusedCard, "", ""},
		{"no cvc", adyenKey, "application/json", adyenBody(func(pm, _ map[string]any) { delete(pm, "cvc") }), 200, RefusedCard, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newRequest(t, http.MethodPost, s.URL+AdyenPath, tt.ctype, tt.body)
			if tt.key != "" {
				req.Header.Set("X-API-Key", tt.key)
			}
			got := do(t, s, req)
			check(t, got, tt.status, tt.verdict)
			switch {
			case tt.verdict == Accepted:
				want := map[string]any{"resultCode": "Authorised", "authCode": AuthCode, "networkTxReference": NetworkTransactionID, "acquirerReference": ARN, "cardSummary": "4242"}
				gotIDs := map[string]any{"resultCode": jsonAt(t, got.body, "resultCode")}
				for _, k := range []string{"authCode", "networkTxReference", "acquirerReference", "cardSummary"} {
					gotIDs[k] = jsonAt(t, got.body, "additionalData", k)
				}
				if d := cmp.Diff(want, gotIDs); d != "" {
					t.Errorf("payment answer (-want +got):\n%s", d)
				}
			case tt.verdict == RefusedCard:
				if rc := jsonAt(t, got.body, "resultCode"); rc != "Refused" {
					t.Errorf("resultCode = %v, want Refused", rc)
				}
			default:
				want := map[string]any{"status": float64(tt.status), "errorCode": tt.errorCode, "errorType": tt.errorType}
				gotErr := map[string]any{"status": jsonAt(t, got.body, "status"), "errorCode": jsonAt(t, got.body, "errorCode"), "errorType": jsonAt(t, got.body, "errorType")}
				if d := cmp.Diff(want, gotErr); d != "" {
					t.Errorf("error body (-want +got):\n%s", d)
				}
			}
		})
	}
}

func TestAdyenAccountUpdated(t *testing.T) {
	s := Start(t, newCA(t), &Adyen{APIKey: adyenKey, MerchantAccount: adyenMerchant, Card: testCard, Answer: AnswerAccountUpdated})
	req := newRequest(t, http.MethodPost, s.URL+AdyenPath, "application/json", adyenBody(nil))
	req.Header.Set("X-API-Key", adyenKey)
	got := do(t, s, req)
	check(t, got, 200, Accepted)
	want := map[string]any{"realtimeAccountUpdaterStatus": "CardChanged", "accountUpdater.newCardNumber": UpdatedNumber, "expiryDate": "3/2031", "cardSummary": "4444"}
	gotAU := map[string]any{}
	for k := range want {
		gotAU[k] = jsonAt(t, got.body, "additionalData", k)
	}
	if d := cmp.Diff(want, gotAU); d != "" {
		t.Errorf("account updater additionalData (-want +got):\n%s", d)
	}
}
