package forwarder

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/credentials"
	"github.com/cardgate/cardgate/forwarder/signing"
)

// Test credentials. They look like the real thing (a Stripe-style test
// key, a Cybersource-style base64 shared secret) so that masking is
// tested on realistic bytes; none of them is a card number.
const (
	testAPIKey     = "sk_test_51HcredsAPIkey7dcXYZ/+q=="
	testBasicUser  = "sk_test_51HbasicAuthUserKey:"
	testCybsSecret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	testCybsKeyID  = "08c94330-f618-42a3-b09d-e1e43be5efda"
	testMerchantID = "testrest"
)

// cred is one credential of a test store.
type cred struct {
	name, value string
	kind        credentials.Kind
	enc         credentials.Encoding
}

// newCredStore returns a real credentials.Store reading the values from
// an environment map, loaded.
func newCredStore(t testing.TB, creds ...cred) *credentials.Store {
	t.Helper()
	st := newUnloadedCredStore(t, creds...)
	if err := st.Reload(context.Background()); err != nil {
		t.Fatalf("credentials Reload: %v", err)
	}
	return st
}

func newUnloadedCredStore(t testing.TB, creds ...cred) *credentials.Store {
	t.Helper()
	env := map[string]string{}
	var specs []credentials.Spec
	for i, c := range creds {
		v := fmt.Sprintf("TEST_CRED_%d", i)
		env[v] = c.value
		specs = append(specs, credentials.Spec{Name: c.name, Source: credentials.Env{Var: v}, Kind: c.kind, Encoding: c.enc})
	}
	st, err := credentials.New(specs, credentials.Options{Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatalf("credentials.New: %v", err)
	}
	return st
}

// countingCreds counts Get calls, so tests can see that a refusal came
// before any credential was touched.
type countingCreds struct {
	Credentials
	mu sync.Mutex
	n  int
}

func (c *countingCreds) Get(name string) (credentials.Secret, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.Credentials.Get(name)
}

func (c *countingCreds) gets() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// withCreds gives the forwarder creds and grants names to the entry, in
// the two headers processors read keys from (Authorization, X-Api-Key);
// withCredHeaders, after it, lists others.
func withCreds(creds Credentials, names ...string) envOpt {
	return func(o *Options, d *allowlist.Destination) {
		o.Credentials = creds
		d.Credentials = names
		d.CredentialHeaders = []string{"Authorization", "X-Api-Key"}
	}
}

// withCredHeaders sets the entry's credential_headers (canonical names);
// none means its credentials only sign.
func withCredHeaders(names ...string) envOpt {
	return func(_ *Options, d *allowlist.Destination) { d.CredentialHeaders = names }
}

// withSigning declares sp on the entry.
func withSigning(sp signing.Spec) envOpt {
	return func(_ *Options, d *allowlist.Destination) { d.Signing = &sp }
}

// cybsSpec is a Cybersource-style cavage block; target is the
// request-target spelling the entry chooses.
func cybsSpec(target string) signing.Spec {
	return signing.Spec{
		Scheme: signing.SchemeCavage, Credential: "cybs-secret", SecretEncoding: "base64",
		Cavage: &signing.CavageSpec{
			KeyID: testCybsKeyID, Algorithm: "HmacSHA256",
			Headers: []string{"host", "date", target, "digest", "v-c-merchant-id"},
		},
	}
}

// spellings are the forms of a secret a leak check looks for.
func spellings(secret string) []string {
	return []string{
		secret,
		base64.StdEncoding.EncodeToString([]byte(secret)),
		strings.TrimRight(base64.StdEncoding.EncodeToString([]byte(secret)), "="),
	}
}

// assertNoSecret fails when text holds any spelling of any of secrets.
func assertNoSecret(t *testing.T, where, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		for _, sp := range spellings(s) {
			if strings.Contains(text, sp) {
				t.Errorf("%s holds a credential (%d bytes of it)", where, len(sp))
			}
		}
	}
}
