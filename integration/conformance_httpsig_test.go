package integration

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
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
// the same entry with hmac-sha256 and a shared secret, and with
// ecdsa-p256-sha256 and a P-256 key. The expiry is one
// MM/YY field, written with the {{card.exp | MM/YY}} filter. A processor
// holding another key refuses each.
func TestConformanceRFC9421(t *testing.T) {
	c := newConfEnv(t)
	card := confCard(visa)
	edP := &testprocessor.HTTPSig{KeyID: confSigpayKeyID, Algorithm: signing.AlgEd25519, PublicKey: c.sigpayPublic, Card: card}
	hmP := &testprocessor.HTTPSig{KeyID: "cardgate-hmac-2026", Algorithm: signing.AlgHMACSHA256, Secret: []byte(confSigpayHMACText), Card: card}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecP := &testprocessor.HTTPSig{KeyID: "cardgate-p256-2026", Algorithm: signing.AlgECDSAP256SHA256, ECDSAPublicKey: &ecKey.PublicKey, Card: card}
	ed := testprocessor.Start(t, c.procCA, edP)
	hm := testprocessor.Start(t, c.procCA, hmP)
	ec := testprocessor.Start(t, c.procCA, ecP)
	c.addEntry("rfc9421-entry", ed.URL, nil)
	// The same entry under another algorithm and key: suffix names the
	// entry and the credential.
	variant := func(suffix, alg, keyID string) func(string) string {
		return func(e string) string {
			for old, new := range map[string]string{
				"id: sigpay-authorizations\n":       "id: sigpay-authorizations-" + suffix + "\n",
				"credentials: [sigpay-signing-key]": "credentials: [sigpay-" + suffix + "-key]",
				"credential: sigpay-signing-key":    "credential: sigpay-" + suffix + "-key",
				"algorithm: ed25519":                "algorithm: " + alg,
				"key_id: " + confSigpayKeyID + "\n": "key_id: " + keyID + "\n",
			} {
				if !strings.Contains(e, old) {
					t.Fatalf("rfc9421-entry has no %q", old)
				}
				e = strings.Replace(e, old, new, 1)
			}
			return e
		}
	}
	c.addEntry("rfc9421-entry", hm.URL, variant("hmac", signing.AlgHMACSHA256, hmP.KeyID))
	c.addEntry("rfc9421-entry", ec.URL, variant("p256", signing.AlgECDSAP256SHA256, ecP.KeyID))
	der, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	ecPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	for _, line := range strings.Split(string(ecPEM), "\n") {
		if len(line) > 20 && !strings.HasPrefix(line, "-----") {
			c.secrets = append(c.secrets, line)
		}
	}
	c.write("creds/sigpay-hmac-key", []byte(confSigpayHMACText+"\n"))
	c.write("creds/sigpay-p256-key.pem", ecPEM)
	c.extra = "  sigpay-hmac-key:\n    file: " + filepath.Join(c.dir, "creds", "sigpay-hmac-key") + "\n    kind: hmac-key\n" +
		"  sigpay-p256-key:\n    file: " + filepath.Join(c.dir, "creds", "sigpay-p256-key.pem") + "\n    kind: ecdsa-p256-private-key\n"
	c.startGateway()

	otherPublic, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherP256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, destination string
		proc              *testprocessor.Server
		// wrongKey makes the processor hold a key the gateway's is not.
		wrongKey func()
	}{
		{"ed25519", "sigpay-authorizations", ed, func() { edP.PublicKey = otherPublic }},
		{"hmac-sha256", "sigpay-authorizations-hmac", hm, func() { hmP.Secret = []byte(confSigpayHMACText + "-other") }},
		{"ecdsa-p256-sha256", "sigpay-authorizations-p256", ec, func() { ecP.ECDSAPublicKey = &otherP256.PublicKey }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The env's helpers fail the test they hold: this subtest,
			// not its parent, whose FailNow a subtest must not call.
			parent := c.t
			c.t = t
			defer func() { c.t = parent }()
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

			// A processor holding another key refuses the signature
			// with its 401 and Accept-Signature.
			tt.proc.Update(tt.wrongKey)
			req = c.request("rfc9421-request", c.tokenizeCard(card), tt.proc.URL)
			req["destination"] = tt.destination
			status, out = c.forward(req)
			c.answered("RFC 9421 authorization under another key", status, out, http.StatusUnauthorized)
			if x, _ := tt.proc.Last(); x.Verdict != testprocessor.RefusedAuth || x.Reason != "signature: signature_invalid" {
				t.Errorf("the processor judged another key's signature %s (%s), want %s (signature: signature_invalid)", x.Verdict, x.Reason, testprocessor.RefusedAuth)
			}
		})
	}
}
