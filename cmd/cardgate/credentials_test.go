package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/config"
	"github.com/cardgate/cardgate/credentials"
)

// TestCheckDestinationCredentials: an allowlist naming a credential the
// gateway does not configure, or signing with a key of the wrong kind,
// is refused when it loads (the Holder turns the error into
// unsupported_by_gateway and keeps the last good allowlist).
func TestCheckDestinationCredentials(t *testing.T) {
	entry := func(extra string) *allowlist.Document {
		t.Helper()
		raw := `format: cardgate.allowlist/v1
namespace: cardgate-allowlist@v1
environment: test
version: 1
issued_at: 2026-11-01T00:00:00Z
expires: 2027-01-15T00:00:00Z
prev_sha256: ""
destinations:
  - id: acme
    purpose: charges
    owner: billing@example.com
    url: https://api.acme.example/v1
    methods: [POST]
    callers: [billing]
    fields: [number]
` + extra
		d, err := allowlist.ParseUnverified([]byte(raw))
		if err != nil {
			t.Fatalf("ParseUnverified: %v", err)
		}
		return d
	}
	rfc9421 := func(alg string) string {
		return "    credentials: [acme-sig]\n    signing:\n      scheme: rfc9421\n      credential: acme-sig\n" +
			"      rfc9421:\n        algorithm: " + alg + "\n        key_id: k\n        components: [\"@method\", content-digest]\n"
	}
	cavage := "    credentials: [acme-sig]\n    signing:\n      scheme: cavage\n      credential: acme-sig\n" +
		"      cavage:\n        key_id: k\n        algorithm: HmacSHA256\n        headers: [host, date, digest]\n"
	configured := func(kind string) map[string]config.Credential {
		return map[string]config.Credential{
			"acme-key": {Env: "ACME_KEY"},
			"acme-sig": {File: "/run/secrets/acme-sig", Kind: kind},
		}
	}
	tests := []struct {
		name  string
		extra string
		creds map[string]config.Credential
		want  string // "" for accepted
	}{
		{"no credentials", "", nil, ""},
		{"configured", "    credentials: [acme-key]\n", configured(""), ""},
		{"not configured", "    credentials: [acme-key, acme-other]\n", configured(""),
			`destination acme names credential "acme-other", which the credentials section does not configure`},
		{"gateway has none", "    credentials: [acme-key]\n", nil, `names credential "acme-key"`},
		{"cavage with an hmac key", cavage, configured(config.CredentialKindHMACKey), ""},
		{"cavage with a secret", cavage, configured(""), ""},
		{"cavage with a private key", cavage, configured(config.CredentialKindEd25519),
			`destination acme signs with credential "acme-sig" of kind ed25519-private-key; its cavage signing needs kind hmac-key or secret`},
		{"ed25519 with an ed25519 key", rfc9421("ed25519"), configured(config.CredentialKindEd25519), ""},
		{"ed25519 with a shared secret", rfc9421("ed25519"), configured(config.CredentialKindHMACKey), "needs kind ed25519-private-key"},
		{"ecdsa with an ed25519 key", rfc9421("ecdsa-p256-sha256"), configured(config.CredentialKindEd25519), "needs kind ecdsa-p256-private-key"},
		{"hmac-sha256 with a secret", rfc9421("hmac-sha256"), configured(""), ""},
		{"digest scheme needs nothing", "    signing:\n      scheme: content-digest\n", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkDestinationCredentials(entry(tt.extra), tt.creds)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("checkDestinationCredentials = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("checkDestinationCredentials = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestCredentialSpecs(t *testing.T) {
	cfg, err := config.Parse([]byte(`
credentials:
  acme-key:
    env: ACME_API_KEY
  acme-basic:
    file: /run/secrets/acme-basic
  cybs-secret:
    vault: {mount: secret, path: processors/cybersource, key: shared_secret, version: 3}
    encoding: base64
    kind: hmac-key
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []credentials.Spec{
		{Name: "acme-basic", Source: credentials.File{Path: "/run/secrets/acme-basic"}},
		{Name: "acme-key", Source: credentials.Env{Var: "ACME_API_KEY"}},
		{Name: "cybs-secret", Source: credentials.VaultKV{Mount: "secret", Path: "processors/cybersource", Key: "shared_secret", Version: 3},
			Encoding: credentials.EncodingBase64, Kind: credentials.KindHMACKey},
	}
	if diff := cmp.Diff(want, credentialSpecs(cfg)); diff != "" {
		t.Errorf("credentialSpecs (-want +got):\n%s", diff)
	}
}
