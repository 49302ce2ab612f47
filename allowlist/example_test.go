package allowlist_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/url"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/cardgate/cardgate/allowlist"
)

// An auditor signs the exact bytes; the gateway verifies them against the
// pinned allowed_signers and matches a request.
func ExampleVerify() {
	raw := []byte(`format: cardgate.allowlist/v1
namespace: cardgate-allowlist@v1
environment: production
version: 1
issued_at: 2026-11-01T00:00:00Z
expires: 2026-12-31T00:00:00Z
destinations:
  - id: acme-charges
    purpose: subscription payments
    owner: billing@example.com
    url: https://api.acme.example/v1/charges
    methods: [POST]
    callers: [billing]
    fields: [number, exp_month, exp_year]
`)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	key, _ := ssh.NewSignerFromKey(priv)
	sig, _ := allowlist.Sign(raw, key) // what ssh-keygen -Y sign -n cardgate-allowlist@v1 writes

	a, err := allowlist.Verify(raw, []allowlist.Signature{{Name: "alice.sig", Armor: sig}}, allowlist.Policy{
		AllowedSigners: []byte("alice@audit.example " + string(ssh.MarshalAuthorizedKey(key.PublicKey()))),
		Threshold:      1,
		Environment:    "production",
		Now:            func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("version", a.Doc.Version, "signed by", a.Signatures[0].Principal)

	u, _ := url.Parse("https://api.acme.example/v1/charges/ch_1/capture")
	d, err := a.Match(allowlist.Query{DestinationID: "acme-charges", Caller: "billing", Method: "POST", URL: u,
		Fields: []allowlist.Field{allowlist.FieldNumber}})
	fmt.Println(d.Host, d.Port, err)

	_, err = a.Match(allowlist.Query{DestinationID: "acme-charges", Caller: "billing", Method: "POST", URL: u,
		Fields: []allowlist.Field{allowlist.FieldCVC}})
	fmt.Println(err)
	// Output:
	// version 1 signed by alice@audit.example
	// api.acme.example 443 <nil>
	// allowlist: card_field_not_allowed: card field "cvc" may not be sent to destination "acme-charges"
}
