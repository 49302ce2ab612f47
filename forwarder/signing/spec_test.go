package signing

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

type specCase struct {
	Name    string   `yaml:"name"`
	Field   string   `yaml:"field"`
	Methods []string `yaml:"methods"`
	Signing Spec     `yaml:"signing"`
}

// loadSpecCases decodes signing blocks strictly, as the allowlist's
// parser must: an unknown key is an error, and durations are strings.
func loadSpecCases(t *testing.T, name string) []specCase {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(readTestdata(t, name)))
	dec.KnownFields(true)
	var cases []specCase
	if err := dec.Decode(&cases); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(cases) == 0 {
		t.Fatalf("%s: no cases", name)
	}
	return cases
}

func TestValidateAccepts(t *testing.T) {
	for _, tc := range loadSpecCases(t, "specs-valid.yaml") {
		t.Run(tc.Name, func(t *testing.T) {
			if err := tc.Signing.Validate(tc.Methods); err != nil {
				t.Errorf("Validate(%v) = %v, want nil", tc.Methods, err)
			}
		})
	}
}

func TestValidateRefuses(t *testing.T) {
	for _, tc := range loadSpecCases(t, "specs-invalid.yaml") {
		t.Run(tc.Name, func(t *testing.T) {
			err := tc.Signing.Validate(tc.Methods)
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("Validate(%v) = %v, want a *SpecError naming %s", tc.Methods, err, tc.Field)
			}
			if se.Field != tc.Field || se.Reason == "" {
				t.Errorf("Validate(%v) = %v, want field %q", tc.Methods, err, tc.Field)
			}
			if se.ErrorCode() != CodeSpecInvalid || !strings.HasPrefix(err.Error(), "signing: "+tc.Field+": ") {
				t.Errorf("error = %q (code %s), want it to name the field", err, se.ErrorCode())
			}
		})
	}
}

// The YAML shape decodes a duration from its string form.
func TestSpecYAMLDuration(t *testing.T) {
	for _, tc := range loadSpecCases(t, "specs-valid.yaml") {
		if tc.Name == "rfc9421 ed25519" && tc.Signing.RFC9421.Expires != 5*time.Minute {
			t.Errorf("expires decoded as %v, want 5m", tc.Signing.RFC9421.Expires)
		}
	}
}

// New refuses a key that does not fit the spec, and never says what the
// key was.
func TestNewKeyMismatch(t *testing.T) {
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	const secret = "s3cr3t-VALUE-not-base64!"
	rfc := func(alg, enc string) Spec {
		comps := []string{"@method"}
		return Spec{Scheme: SchemeRFC9421, Credential: "k", SecretEncoding: enc, RFC9421: &RFC9421Spec{Algorithm: alg, KeyID: "k", Components: comps}}
	}
	tests := []struct {
		name string
		spec Spec
		key  Key
	}{
		{"ed25519 given a secret", rfc(AlgEd25519, ""), SecretKey([]byte(secret))},
		{"ed25519 given a public key only", rfc(AlgEd25519, ""), PublicKey(ed.Public())},
		{"p256 given a P-384 key", rfc(AlgECDSAP256SHA256, ""), PrivateKey(p384)},
		{"p256 given an ed25519 key", rfc(AlgECDSAP256SHA256, ""), PrivateKey(ed)},
		{"hmac given a private key", rfc(AlgHMACSHA256, ""), PrivateKey(ed)},
		{"hmac given an empty secret", rfc(AlgHMACSHA256, ""), SecretKey(nil)},
		{"base64 secret that is not", rfc(AlgHMACSHA256, "base64"), SecretKey([]byte(secret))},
		{"hex secret that is not", rfc(AlgHMACSHA256, "hex"), SecretKey([]byte(secret))},
		{"cavage given a private key", cybsSpec(), PrivateKey(ed)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.spec, tt.key)
			var se *SpecError
			if !errors.As(err, &se) || se.Field != "credential" {
				t.Fatalf("New = %v, want a *SpecError naming credential", err)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error %q quotes the secret", err)
			}
		})
	}
}
