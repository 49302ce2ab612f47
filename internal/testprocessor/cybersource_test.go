package testprocessor

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cardgate/cardgate/forwarder/signing"
	"github.com/google/go-cmp/cmp"
)

const (
	cybsMerchant = "cardgate_conformance"
	cybsKeyID    = "08c94330-f618-42a3-b09d-e1e43be5efda"
)

// cybsSecret is the shared secret as the Business Center shows it:
// base64 of 32 bytes.
var cybsSecret = base64.StdEncoding.EncodeToString([]byte("cardgate-conformance-shared-key!"))

func cybsBody(mutate func(card, top map[string]any)) []byte {
	card := map[string]any{"number": testCard.Number, "expirationMonth": "03", "expirationYear": "2030", "securityCode": testCard.CVC}
	top := map[string]any{
		"clientReferenceInformation": map[string]any{"code": "order-0001"},
		"processingInformation":      map[string]any{"commerceIndicator": "internet"},
		"paymentInformation":         map[string]any{"card": card},
		"orderInformation": map[string]any{
			"amountDetails": map[string]any{"totalAmount": "10.00", "currency": "USD"},
			"billTo":        map[string]any{"firstName": "Jane", "lastName": "Doe", "country": "US"},
		},
	}
	if mutate != nil {
		mutate(card, top)
	}
	b, _ := json.Marshal(top)
	return b
}

func mitBody(previous string) []byte {
	return cybsBody(func(card, top map[string]any) {
		delete(card, "securityCode")
		initiator := map[string]any{"type": "merchant", "storedCredentialUsed": true}
		if previous != "" {
			initiator["merchantInitiatedTransaction"] = map[string]any{"reason": "7", "previousTransactionId": previous}
		}
		top["processingInformation"] = map[string]any{
			"commerceIndicator":    "recurring",
			"authorizationOptions": map[string]any{"initiator": initiator},
		}
	})
}

// mitWithCVC is a merchant-initiated payment that wrongly carries a
// security code.
func mitWithCVC() []byte {
	var m map[string]any
	_ = json.Unmarshal(mitBody(NetworkTransactionID), &m)
	m["paymentInformation"].(map[string]any)["card"].(map[string]any)["securityCode"] = testCard.CVC
	b, _ := json.Marshal(m)
	return b
}

// cybsSigned builds a request to s signed under spec with secret at time
// at, then applies after (which may tamper with it).
func cybsSigned(t *testing.T, s *Server, spec signing.Spec, secret, merchant string, body []byte, at time.Time, after func(*http.Request)) *http.Request {
	t.Helper()
	req := newRequest(t, http.MethodPost, s.URL+CybersourcePath, "application/json", body)
	req.Header.Set("v-c-merchant-id", merchant)
	signer, err := signing.New(spec, signing.SecretKey([]byte(secret)))
	if err != nil {
		t.Fatalf("signing.New: %v", err)
	}
	if err := signer.Sign(req, body, at); err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if after != nil {
		after(req)
	}
	return req
}

func TestCybersource(t *testing.T) {
	p := &Cybersource{MerchantID: cybsMerchant, KeyID: cybsKeyID, SharedSecret: cybsSecret, Card: testCard}
	s := Start(t, newCA(t), p)
	legacy := (&Cybersource{KeyID: cybsKeyID, LegacyRequestTarget: true}).Spec()
	otherKeyID := p.Spec()
	otherKeyID.Cavage.KeyID = "6d75ffad-ed36-4a6d-85af-5609185494f4"
	rawSecret := p.Spec()
	rawSecret.SecretEncoding = "" // the secret's base64 text used as the key, undecoded
	now := time.Now()
	body := cybsBody(nil)
	tests := []struct {
		name     string
		req      func() *http.Request
		status   int
		verdict  Verdict
		reason   string // Exchange.Reason
		wantBody string // for refusals: a fragment of the documented error body
	}{
		{"signed as documented", func() *http.Request {
			return cybsSigned(t, s, p.Spec(), cybsSecret, cybsMerchant, body, now, nil)
		}, 201, Accepted, "", ""},
		{"draft spelling (request-target)", func() *http.Request {
			return cybsSigned(t, s, legacy, cybsSecret, cybsMerchant, body, now, nil)
		}, 401, RefusedAuth, "signature: signature_policy", `{"response":{"rmsg":"Authentication Failed"}}`},
		{"secret not base64-decoded", func() *http.Request {
			return cybsSigned(t, s, rawSecret, cybsSecret, cybsMerchant, body, now, nil)
		}, 401, RefusedAuth, "signature: signature_invalid", `"rmsg":"Authentication Failed"`},
		{"wrong secret", func() *http.Request {
			return cybsSigned(t, s, p.Spec(), base64.StdEncoding.EncodeToString([]byte("somebody-elses-shared-secret-key")), cybsMerchant, body, now, nil)
		}, 401, RefusedAuth, "signature: signature_invalid", `"rmsg":"Authentication Failed"`},
		{"another key id", func() *http.Request {
			return cybsSigned(t, s, otherKeyID, cybsSecret, cybsMerchant, body, now, nil)
		}, 401, RefusedAuth, "signature: signature_policy", `"rmsg":"Authentication Failed"`},
		{"body changed after signing", func() *http.Request {
			changed := []byte(strings.Replace(string(body), `"10.00"`, `"99.00"`, 1))
			return cybsSigned(t, s, p.Spec(), cybsSecret, cybsMerchant, body, now, func(r *http.Request) {
				r.Body, r.ContentLength = newRequest(t, "POST", "https://x", "", changed).Body, int64(len(changed))
			})
		}, 401, RefusedAuth, "signature: digest_mismatch", `"rmsg":"Authentication Failed"`},
		{"no signature", func() *http.Request {
			return cybsSigned(t, s, p.Spec(), cybsSecret, cybsMerchant, body, now, func(r *http.Request) { r.Header.Del("Signature") })
		}, 401, RefusedAuth, "signature: signature_missing", `"rmsg":"Authentication Failed"`},
		{"another merchant, signed", func() *http.Request {
			return cybsSigned(t, s, p.Spec(), cybsSecret, "someone_else", body, now, nil)
		}, 401, RefusedAuth, "v-c-merchant-id missing or wrong", `"rmsg":"Authentication Failed"`},
		{"date ten minutes old", func() *http.Request {
			return cybsSigned(t, s, p.Spec(), cybsSecret, cybsMerchant, body, now.Add(-10*time.Minute), nil)
		}, 401, RefusedAuth, "signature: signature_stale", `"rmsg":"Authentication Failed"`},
		{"no card number", func() *http.Request {
			return cybsSigned(t, s, p.Spec(), cybsSecret, cybsMerchant, cybsBody(func(c, _ map[string]any) { delete(c, "number") }), now, nil)
		}, 400, RefusedRequest, "card number missing", `"reason":"MISSING_FIELD"`},
		{"month not zero-padded", func() *http.Request {
			return cybsSigned(t, s, p.Spec(), cybsSecret, cybsMerchant, cybsBody(func(c, _ map[string]any) { c["expirationMonth"] = "3" }), now, nil)
		}, 400, RefusedRequest, "expirationMonth format", `"reason":"INVALID_DATA"`},
		{"another card", func() *http.Request {
			return cybsSigned(t, s, p.Spec(), cybsSecret, cybsMerchant, cybsBody(func(c, _ map[string]any) { c["number"] = "4111111111111111" }), now, nil)
		}, 201, RefusedCard, "card number is not the expected card", `"reason":"INVALID_ACCOUNT"`},
		{"wrong security code", func() *http.Request {
			return cybsSigned(t, s, p.Spec(), cybsSecret, cybsMerchant, cybsBody(func(c, _ map[string]any) { c["securityCode"] = "123" }), now, nil)
		}, 201, RefusedCard, "securityCode is not the expected value", `"reason":"CV_FAILED"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := do(t, s, tt.req())
			check(t, got, tt.status, tt.verdict)
			if got.x.Reason != tt.reason {
				t.Errorf("reason = %q, want %q", got.x.Reason, tt.reason)
			}
			if tt.verdict != Accepted {
				if !strings.Contains(string(got.body), tt.wantBody) {
					t.Errorf("body %s, want it to hold %s", got.body, tt.wantBody)
				}
				return
			}
			want := map[string]any{"status": "AUTHORIZED", "approvalCode": AuthCode, "networkTransactionId": NetworkTransactionID, "acquirerReferenceNumber": ARN}
			gotIDs := map[string]any{
				"status":                  jsonAt(t, got.body, "status"),
				"approvalCode":            jsonAt(t, got.body, "processorInformation", "approvalCode"),
				"networkTransactionId":    jsonAt(t, got.body, "processorInformation", "networkTransactionId"),
				"acquirerReferenceNumber": jsonAt(t, got.body, "acquirerReferenceNumber"),
			}
			if d := cmp.Diff(want, gotIDs); d != "" {
				t.Errorf("payment answer (-want +got):\n%s", d)
			}
			// What the processor received carries the documented headers.
			for _, h := range []string{"Date", "Host", "Digest", "Signature", "V-C-Merchant-Id"} {
				if got.x.Header.Get(h) == "" && !(h == "Host" && got.x.Host != "") {
					t.Errorf("request had no %s header", h)
				}
			}
			if sig := got.x.Header.Get("Signature"); !strings.Contains(sig, `algorithm="HmacSHA256"`) ||
				!strings.Contains(sig, `headers="host date request-target digest v-c-merchant-id"`) || !strings.Contains(sig, `keyid="`+cybsKeyID+`"`) {
				t.Errorf("Signature = %s, want Cybersource's parameters", sig)
			}
		})
	}
}

// Before its 2024 update Cybersource documented "(request-target)"; a
// processor configured so takes that spelling and refuses the new one.
func TestCybersourceLegacyRequestTarget(t *testing.T) {
	p := &Cybersource{MerchantID: cybsMerchant, KeyID: cybsKeyID, SharedSecret: cybsSecret, Card: testCard, LegacyRequestTarget: true}
	s := Start(t, newCA(t), p)
	current := (&Cybersource{KeyID: cybsKeyID}).Spec()
	for _, tt := range []struct {
		name    string
		spec    signing.Spec
		verdict Verdict
	}{
		{"(request-target)", p.Spec(), Accepted},
		{"request-target", current, RefusedAuth},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := do(t, s, cybsSigned(t, s, tt.spec, cybsSecret, cybsMerchant, cybsBody(nil), time.Now(), nil))
			if got.x.Verdict != tt.verdict {
				t.Errorf("verdict = %s (%s), want %s", got.x.Verdict, got.x.Reason, tt.verdict)
			}
		})
	}
}

func TestCybersourceMerchantInitiated(t *testing.T) {
	c := testCard
	c.CVC = ""
	p := &Cybersource{MerchantID: cybsMerchant, KeyID: cybsKeyID, SharedSecret: cybsSecret, Card: c, PreviousTransactionID: NetworkTransactionID}
	s := Start(t, newCA(t), p)
	for _, tt := range []struct {
		name    string
		body    []byte
		status  int
		verdict Verdict
	}{
		{"references the previous transaction", mitBody(NetworkTransactionID), 201, Accepted},
		{"no previous transaction id", mitBody(""), 400, RefusedRequest},
		{"another previous transaction id", mitBody("016153570198200"), 400, RefusedRequest},
		{"with a security code", mitWithCVC(), 201, RefusedCard},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := do(t, s, cybsSigned(t, s, p.Spec(), cybsSecret, cybsMerchant, tt.body, time.Now(), nil))
			check(t, got, tt.status, tt.verdict)
		})
	}
}

func TestCybersourceAccountUpdated(t *testing.T) {
	p := &Cybersource{MerchantID: cybsMerchant, KeyID: cybsKeyID, SharedSecret: cybsSecret, Card: testCard, Answer: AnswerAccountUpdated}
	s := Start(t, newCA(t), p)
	got := do(t, s, cybsSigned(t, s, p.Spec(), cybsSecret, cybsMerchant, cybsBody(nil), time.Now(), nil))
	check(t, got, 201, Accepted)
	want := map[string]any{"number": UpdatedNumber, "expirationMonth": "03", "expirationYear": "2031"}
	if d := cmp.Diff(want, jsonAt(t, got.body, "accountUpdate", "card")); d != "" {
		t.Errorf("accountUpdate.card (-want +got):\n%s", d)
	}
}
