package allowlist

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cardgate/cardgate/credentials"
	"github.com/cardgate/cardgate/forwarder/signing"
)

func TestParseCredentialsFixture(t *testing.T) {
	doc, err := ParseUnverified(readFixture(t, "credentials.yaml"))
	if err != nil {
		t.Fatalf("ParseUnverified(credentials.yaml) = %v", err)
	}
	type got struct {
		ID          string
		Credentials []string
		Signing     *signing.Spec
		SigningCred string
	}
	var have []got
	for i := range doc.Destinations {
		d := &doc.Destinations[i]
		have = append(have, got{d.ID, d.Credentials, d.Signing, d.SigningCredential()})
	}
	want := []got{
		{ID: "stripe-charges", Credentials: []string{"stripe-secret-key"}},
		{ID: "cybs-payments", Credentials: []string{"cybs-shared-secret"}, SigningCred: "cybs-shared-secret", Signing: &signing.Spec{
			Scheme: signing.SchemeCavage, Credential: "cybs-shared-secret", SecretEncoding: "base64",
			Cavage: &signing.CavageSpec{
				KeyID: "08c94330-f618-42a3-b09d-e1e43be5efda", Algorithm: "HmacSHA256",
				Headers: []string{"host", "date", "request-target", "digest", "v-c-merchant-id"},
			},
		}},
		{ID: "digest-only", Signing: &signing.Spec{Scheme: signing.SchemeContentDigest}},
		{ID: "rfc9421-ed25519", Credentials: []string{"sig-api-key", "sig-ed25519"}, SigningCred: "sig-ed25519", Signing: &signing.Spec{
			Scheme: signing.SchemeRFC9421, Credential: "sig-ed25519",
			RFC9421: &signing.RFC9421Spec{
				Algorithm: signing.AlgEd25519, KeyID: "sig-2026", Created: true, Expires: 5 * time.Minute,
				Components: []string{"@method", "@authority", "@path", "content-digest", "content-type"},
			},
		}},
	}
	if diff := cmp.Diff(want, have); diff != "" {
		t.Errorf("ParseUnverified(credentials.yaml) mismatch (-want +got):\n%s", diff)
	}
	if d := &doc.Destinations[0]; !d.GrantsCredential("stripe-secret-key") || d.GrantsCredential("cybs-shared-secret") || d.GrantsCredential("") {
		t.Errorf("GrantsCredential on %s: want only stripe-secret-key granted", d.ID)
	}
}

// entryDoc is a one-entry document; extra is appended to the entry (four
// spaces of indentation), whose methods are methods.
func entryDoc(methods, extra string) string {
	return `format: cardgate.allowlist/v1
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
    methods: ` + methods + `
    callers: [billing]
    fields: [number]
` + extra
}

func TestParseCredentialsRefused(t *testing.T) {
	const at = "line 9: destinations[0] (id \"acme\")"
	tooMany := "    credentials: ["
	for i := range MaxCredentials + 1 {
		if i > 0 {
			tooMany += ", "
		}
		tooMany += "k" + strconv.Itoa(i)
	}
	tooMany += "]\n"
	cavage := func(cred string) string {
		return "    signing:\n      scheme: cavage\n      credential: " + cred + "\n" +
			"      cavage:\n        key_id: k1\n        algorithm: HmacSHA256\n        headers: [host, date, request-target, digest]\n"
	}
	tests := []struct {
		name, methods, extra, want string
	}{
		{"empty list", "[POST]", "    credentials: []\n", at + ".credentials: an empty list grants nothing"},
		{"uppercase name", "[POST]", "    credentials: [Acme-Key]\n", at + `.credentials[0]: "Acme-Key" is not a credential name`},
		{"dotted name", "[POST]", "    credentials: [acme.key]\n", at + `.credentials[0]: "acme.key" is not a credential name`},
		{"leading dash", "[POST]", "    credentials: [-acme]\n", `.credentials[0]: "-acme" is not a credential name`},
		{"name too long", "[POST]", "    credentials: [" + strings.Repeat("a", 64) + "]\n", ".credentials[0]: "},
		{"duplicate", "[POST]", "    credentials: [acme-key, acme-sig, acme-key]\n", at + `.credentials[2]: "acme-key" is listed twice`},
		{"too many", "[POST]", tooMany, at + ".credentials: 17 names, more than the limit of 16"},
		{"not a list", "[POST]", "    credentials: acme-key\n", "cannot unmarshal"},
		{"signing credential not granted", "[POST]", cavage("acme-sig"), at + `.signing.credential: "acme-sig" is not in the entry's credentials list`},
		{"signing credential granted elsewhere", "[POST]", "    credentials: [acme-key]\n" + cavage("acme-sig"), `.signing.credential: "acme-sig" is not in`},
		{"signing without the body covered", "[POST]", "    credentials: [acme-sig]\n" +
			"    signing:\n      scheme: cavage\n      credential: acme-sig\n      cavage:\n        key_id: k1\n        algorithm: HmacSHA256\n        headers: [host, date]\n",
			at + ".signing.cavage.headers: must list digest"},
		{"digest scheme with a credential", "[POST]", "    credentials: [acme-sig]\n    signing:\n      scheme: digest\n      credential: acme-sig\n",
			at + ".signing.credential: the digest scheme uses no key"},
		{"unknown scheme", "[POST]", "    signing:\n      scheme: rot13\n", at + ".signing.scheme: must be one of"},
		{"unknown key in signing", "[POST]", "    signing:\n      scheme: digest\n      unsafe: true\n", "field unsafe not found"},
		{"expires as a number", "[GET]", "    credentials: [acme-sig]\n    signing:\n      scheme: rfc9421\n      credential: acme-sig\n" +
			"      rfc9421:\n        algorithm: ed25519\n        key_id: k\n        components: [\"@method\"]\n        expires: 300\n", "cannot unmarshal"},
		{"signing alias", "[POST]", "    credentials: [acme-sig]\n    signing: &s {scheme: digest}\n", "anchors are not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseUnverified([]byte(entryDoc(tt.methods, tt.extra)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseUnverified = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestParseCredentialsAccepted(t *testing.T) {
	tests := []struct {
		name, methods, extra string
	}{
		{"credentials only", "[POST]", "    credentials: [acme-key, acme_key_2, 0day]\n"},
		{"exactly the limit", "[POST]", "    credentials: [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, b0, b1, b2, b3, b4, b5]\n"},
		{"digest scheme, no credentials", "[POST]", "    signing:\n      scheme: digest\n      digest:\n        algorithms: [sha-256, sha-512]\n"},
		{"GET-only rfc9421 need not cover a body", "[GET]", "    credentials: [acme-sig]\n    signing:\n      scheme: rfc9421\n      credential: acme-sig\n" +
			"      rfc9421:\n        algorithm: ecdsa-p256-sha256\n        key_id: k\n        components: [\"@method\", \"@path\"]\n        expires: 30s\n"},
		{"generic hmac", "[POST]", "    credentials: [acme-hmac]\n    signing:\n      scheme: hmac\n      credential: acme-hmac\n      secret_encoding: hex\n" +
			"      hmac:\n        hash: sha256\n        parts: [method, path, body-sha256-hex, timestamp]\n        separator: \"\\n\"\n        header: X-Signature\n        encoding: hex\n        timestamp_header: X-Timestamp\n        timestamp_format: unix\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseUnverified([]byte(entryDoc(tt.methods, tt.extra))); err != nil {
				t.Errorf("ParseUnverified = %v, want nil", err)
			}
		})
	}
}

// TestCredentialNameGrammar keeps the restated grammar equal to the one
// the credentials package enforces on the gateway's configuration.
func TestCredentialNameGrammar(t *testing.T) {
	names := []string{"", "a", "0", "acme-live-key", "acme_key", "a-", "a_", "-a", "_a", "A", "aB", "a.b", "a b", "a/b",
		"é", strings.Repeat("a", 63), strings.Repeat("a", 64), "cybs-shared-secret", "k\n"}
	for _, n := range names {
		if got, want := ValidCredentialName(n), credentials.ValidName(n); got != want {
			t.Errorf("ValidCredentialName(%q) = %v, want %v (credentials.ValidName)", n, got, want)
		}
	}
}

// TestSigningPackageIsALeaf guards the layering that lets the allowlist
// own the signing declaration: forwarder/signing may import the standard
// library only, never a cardgate package (the forwarder above all), so
// the allowlist importing it imports nothing above itself.
func TestSigningPackageIsALeaf(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "forwarder", "signing", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no forwarder/signing sources: %v", err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range file.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
				t.Errorf("%s imports %s; forwarder/signing must stay a standard-library-only leaf (the allowlist imports it)", f, path)
			}
		}
	}
}
