package integration

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardgate/cardgate/forwarder/signing"
	"github.com/cardgate/cardgate/internal/testprocessor"
)

// TestConformanceRFC9421 runs docs/processors.md §5: a processor that
// authenticates with HTTP Message Signatures over @method, @authority,
// @path, content-digest and content-type, created and keyid required,
// and Content-Digest over the body, with the gateway's ed25519 key; then
// the same entry with hmac-sha256 and a shared secret. The expiry is one
// MM/YY field, written with the {{card.exp | MM/YY}} filter.
func TestConformanceRFC9421(t *testing.T) {
	c := newConfEnv(t)
	card := confCard(visa)
	ed := testprocessor.Start(t, c.procCA, &testprocessor.HTTPSig{
		KeyID: confSigpayKeyID, Algorithm: signing.AlgEd25519, PublicKey: c.sigpayPublic, Card: card,
	})
	hm := testprocessor.Start(t, c.procCA, &testprocessor.HTTPSig{
		KeyID: "cardgate-hmac-2026", Algorithm: signing.AlgHMACSHA256, Secret: []byte(confSigpayHMACText), Card: card,
	})
	c.addEntry("rfc9421-entry", ed.URL, nil)
	c.addEntry("rfc9421-entry", hm.URL, func(e string) string {
		for old, new := range map[string]string{
			"id: sigpay-authorizations\n":       "id: sigpay-authorizations-hmac\n",
			"credentials: [sigpay-signing-key]": "credentials: [sigpay-hmac-secret]",
			"credential: sigpay-signing-key":    "credential: sigpay-hmac-secret",
			"algorithm: ed25519":                "algorithm: hmac-sha256",
			"key_id: " + confSigpayKeyID + "\n": "key_id: cardgate-hmac-2026\n",
		} {
			if !strings.Contains(e, old) {
				t.Fatalf("rfc9421-entry has no %q", old)
			}
			e = strings.Replace(e, old, new, 1)
		}
		return e
	})
	c.write("creds/sigpay-hmac-secret", []byte(confSigpayHMACText+"\n"))
	c.extra = "  sigpay-hmac-secret:\n    file: " + filepath.Join(c.dir, "creds", "sigpay-hmac-secret") + "\n    kind: hmac-key\n"
	c.startGateway()

	for _, tt := range []struct {
		name, destination string
		proc              *testprocessor.Server
	}{
		{"ed25519", "sigpay-authorizations", ed},
		{"hmac-sha256", "sigpay-authorizations-hmac", hm},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := c.request("rfc9421-request", c.tokenizeCard(card), tt.proc.URL)
			req["destination"] = tt.destination
			status, out := c.forward(req)
			body := c.answered("RFC 9421 authorization", status, out, http.StatusCreated)
			x := accepted(t, "RFC 9421 authorization", tt.proc)
			if in := x.Header.Get("Signature-Input"); !strings.Contains(in, `("@method" "@authority" "@path" "content-digest" "content-type")`) {
				t.Errorf("Signature-Input %q does not cover the documented components in order", in)
			}
			if !strings.HasPrefix(x.Header.Get("Content-Digest"), "sha-256=:") {
				t.Errorf("Content-Digest = %q, want sha-256", x.Header.Get("Content-Digest"))
			}
			if got := confJSON(t, body, "status"); got != "authorized" {
				t.Errorf("status = %v, want authorized", got)
			}
			kept(t, body, testprocessor.NetworkTransactionID, "network_transaction_id")
			kept(t, body, testprocessor.ARN, "acquirer_reference_number")
		})
	}
}
