package forwarder

import (
	"strings"
	"testing"

	"github.com/cardgate/cardgate/credentials"
	"github.com/cardgate/cardgate/forwarder/signing"
)

// TestSignRefusesUnderscoreTwins: CGI and WSGI servers (and nginx or
// Apache in front of them, configured to pass such names) read
// "V_C_Merchant_Id" as "V-C-Merchant-Id". On a signing entry a caller's
// header that reads so as a header the signature covers or sets would
// put a second, unsigned value next to the signed one; it is refused.
func TestSignRefusesUnderscoreTwins(t *testing.T) {
	rfc := signing.Spec{
		Scheme: signing.SchemeRFC9421, Credential: "cybs-secret",
		RFC9421: &signing.RFC9421Spec{Algorithm: signing.AlgHMACSHA256, KeyID: "k1",
			Components: []string{"@method", "@authority", "@path", "content-digest", "x-api-version"}},
	}
	hmacSpec := signing.Spec{
		Scheme: signing.SchemeHMAC, Credential: "cybs-secret",
		HMAC: &signing.HMACSpec{Hash: "sha256", Parts: []string{"method", "path", "header:x-merchant", "body-sha256-hex"},
			Header: "X-Signature", Encoding: "hex"},
	}
	tests := []struct {
		name   string
		spec   signing.Spec
		header string
		ok     bool
	}{
		{"cavage covered header", cybsSpec("request-target"), "V_C_Merchant_Id", false},
		{"cavage set header", cybsSpec("request-target"), "Di_gest", true}, // not a twin of Digest
		{"cavage digest twin", cybsSpec("request-target"), "Digest_", true},
		{"rfc 9421 covered header", rfc, "X_Api_Version", false},
		{"rfc 9421 set header", rfc, "Content_Digest", false},
		{"rfc 9421 signature input", rfc, "Signature_Input", false},
		{"hmac covered header", hmacSpec, "X_Merchant", false},
		{"hmac set header", hmacSpec, "X_Signature", false},
		{"an unrelated underscore header", cybsSpec("request-target"), "X_Request_Tag", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newCredStore(t, cred{name: "cybs-secret", value: testCybsSecret, kind: credentials.KindHMACKey})
			e := newEnv(t, echo, withCreds(store, "cybs-secret"), withSigning(tt.spec))
			r := e.jsonRequest(cardBody)
			r.Headers["V-C-Merchant-Id"] = []string{testMerchantID}
			r.Headers["X-Api-Version"] = []string{"2024-01"}
			r.Headers["X-Merchant"] = []string{"m1"}
			r.Headers[tt.header] = []string{"attacker"}
			if tt.ok {
				if _, err := e.f.Forward(t.Context(), r); err != nil {
					t.Fatalf("Forward with %s: %v", tt.header, err)
				}
				return
			}
			fe := forwardErr(t, e.f, r)
			if fe.Code != CodeInvalidRequest || fe.Outcome != NotSent || !strings.Contains(strings.ToLower(fe.Message), strings.ToLower(tt.header)) {
				t.Errorf("Forward = %s/%s %q, want invalid_request/not_sent naming %s", fe.Code, fe.Outcome, fe.Message, tt.header)
			}
			if n := len(e.p.requests()); n != 0 {
				t.Errorf("processor got %d requests, want none", n)
			}
		})
	}
}
