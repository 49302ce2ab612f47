package testprocessor

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cardgate/cardgate/forwarder/signing"
	"github.com/google/go-cmp/cmp"
)

func httpSigBody(mutate func(card, top map[string]any)) []byte {
	card := map[string]any{"number": testCard.Number, "expiry": "03/30", "cvc": testCard.CVC, "holder_name": testCard.Name}
	top := map[string]any{"amount": map[string]any{"value": 1000, "currency": "EUR"}, "reference": "order-0001", "card": card}
	if mutate != nil {
		mutate(card, top)
	}
	b, _ := json.Marshal(top)
	return b
}

// httpSigSigned builds a request to s signed under spec with key, then
// applies after (which may tamper with it).
func httpSigSigned(t *testing.T, s *Server, spec signing.Spec, key signing.Key, body []byte, after func(*http.Request)) *http.Request {
	t.Helper()
	req := newRequest(t, http.MethodPost, s.URL+HTTPSigPath, "application/json", body)
	signer, err := signing.New(spec, key)
	if err != nil {
		t.Fatalf("signing.New: %v", err)
	}
	if err := signer.Sign(req, body, time.Now()); err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if after != nil {
		after(req)
	}
	return req
}

func TestHTTPSig(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	secret := []byte("hmac-shared-secret-for-conformance-tests")

	edP := &HTTPSig{KeyID: "cardgate-ed25519-2026", Algorithm: signing.AlgEd25519, PublicKey: pub, Card: testCard}
	hmacP := &HTTPSig{KeyID: "cardgate-hmac-2026", Algorithm: signing.AlgHMACSHA256, Secret: secret, Card: testCard}
	ed := Start(t, newCA(t), edP)
	hm := Start(t, newCA(t), hmacP)

	noContentType := edP.Spec()
	noContentType.RFC9421.Components = []string{"@method", "@authority", "@path", "content-digest"}
	noCreated := edP.Spec()
	noCreated.RFC9421.Created = false
	otherLabel := edP.Spec()
	otherLabel.RFC9421.Label = "proxy"
	body := httpSigBody(nil)

	tests := []struct {
		name    string
		s       *Server
		req     func(s *Server) *http.Request
		status  int
		verdict Verdict
		reason  string
	}{
		{"ed25519", ed, func(s *Server) *http.Request {
			return httpSigSigned(t, s, edP.Spec(), signing.PrivateKey(priv), body, nil)
		}, 201, Accepted, ""},
		{"hmac-sha256", hm, func(s *Server) *http.Request {
			return httpSigSigned(t, s, hmacP.Spec(), signing.SecretKey(secret), body, nil)
		}, 201, Accepted, ""},
		{"another ed25519 key", ed, func(s *Server) *http.Request {
			return httpSigSigned(t, s, edP.Spec(), signing.PrivateKey(otherPriv), body, nil)
		}, 401, RefusedAuth, "signature: signature_invalid"},
		{"another hmac secret", hm, func(s *Server) *http.Request {
			return httpSigSigned(t, s, hmacP.Spec(), signing.SecretKey([]byte("not-the-shared-secret-at-all-000")), body, nil)
		}, 401, RefusedAuth, "signature: signature_invalid"},
		{"body changed after signing", ed, func(s *Server) *http.Request {
			changed := []byte(strings.Replace(string(body), `"value":1000`, `"value":9000`, 1))
			return httpSigSigned(t, s, edP.Spec(), signing.PrivateKey(priv), body, func(r *http.Request) {
				r.Body, r.ContentLength = newRequest(t, "POST", "https://x", "", changed).Body, int64(len(changed))
			})
		}, 401, RefusedAuth, "signature: digest_mismatch"},
		{"content-type changed after signing", ed, func(s *Server) *http.Request {
			return httpSigSigned(t, s, edP.Spec(), signing.PrivateKey(priv), body, func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") })
		}, 401, RefusedAuth, "signature: signature_invalid"},
		{"content-type not covered", ed, func(s *Server) *http.Request {
			return httpSigSigned(t, s, noContentType, signing.PrivateKey(priv), body, nil)
		}, 401, RefusedAuth, "signature: signature_policy"},
		{"no created", ed, func(s *Server) *http.Request {
			return httpSigSigned(t, s, noCreated, signing.PrivateKey(priv), body, nil)
		}, 401, RefusedAuth, "signature: signature_policy"},
		{"another label", ed, func(s *Server) *http.Request {
			return httpSigSigned(t, s, otherLabel, signing.PrivateKey(priv), body, nil)
		}, 401, RefusedAuth, "signature: signature_missing"},
		{"no Content-Digest", ed, func(s *Server) *http.Request {
			return httpSigSigned(t, s, edP.Spec(), signing.PrivateKey(priv), body, func(r *http.Request) { r.Header.Del("Content-Digest") })
		}, 401, RefusedAuth, "signature: signature_invalid"},
		{"unsigned", ed, func(s *Server) *http.Request {
			return newRequest(t, http.MethodPost, s.URL+HTTPSigPath, "application/json", body)
		},
			401, RefusedAuth, "signature: signature_missing"},
		{"expiry as month and year", ed, func(s *Server) *http.Request {
			return httpSigSigned(t, s, edP.Spec(), signing.PrivateKey(priv), httpSigBody(func(c, _ map[string]any) { c["expiry"] = "03/2030" }), nil)
		}, 400, RefusedRequest, "expiry format"},
		{"another card", ed, func(s *Server) *http.Request {
			return httpSigSigned(t, s, edP.Spec(), signing.PrivateKey(priv), httpSigBody(func(c, _ map[string]any) { c["number"] = "4111111111111111" }), nil)
		}, 402, RefusedCard, "card number is not the expected card"},
		{"another expiry", ed, func(s *Server) *http.Request {
			return httpSigSigned(t, s, edP.Spec(), signing.PrivateKey(priv), httpSigBody(func(c, _ map[string]any) { c["expiry"] = "04/30" }), nil)
		}, 402, RefusedCard, "expiry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := do(t, tt.s, tt.req(tt.s))
			check(t, got, tt.status, tt.verdict)
			if got.x.Reason != tt.reason {
				t.Errorf("reason = %q, want %q", got.x.Reason, tt.reason)
			}
			switch tt.verdict {
			case Accepted:
				want := map[string]any{"status": "authorized", "authorization_code": AuthCode, "network_transaction_id": NetworkTransactionID, "acquirer_reference_number": ARN}
				gotIDs := map[string]any{}
				for k := range want {
					gotIDs[k] = jsonAt(t, got.body, k)
				}
				if d := cmp.Diff(want, gotIDs); d != "" {
					t.Errorf("authorization answer (-want +got):\n%s", d)
				}
			case RefusedAuth:
				if got.header.Get("Accept-Signature") == "" {
					t.Error("401 without Accept-Signature")
				}
				if ct := got.header.Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("Content-Type = %s, want application/problem+json", ct)
				}
			}
		})
	}
}

func TestHTTPSigAccountUpdated(t *testing.T) {
	secret := []byte("hmac-shared-secret-for-conformance-tests")
	p := &HTTPSig{KeyID: "k", Algorithm: signing.AlgHMACSHA256, Secret: secret, Card: testCard, Answer: AnswerAccountUpdated}
	s := Start(t, newCA(t), p)
	got := do(t, s, httpSigSigned(t, s, p.Spec(), signing.SecretKey(secret), httpSigBody(nil), nil))
	check(t, got, 201, Accepted)
	if d := cmp.Diff(map[string]any{"number": UpdatedNumber, "expiry": "03/31"}, jsonAt(t, got.body, "account_update", "card")); d != "" {
		t.Errorf("account_update.card (-want +got):\n%s", d)
	}
}
