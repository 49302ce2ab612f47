package config

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCredentialsParse(t *testing.T) {
	raw := append(mustRead(t, "testdata/dev.yaml"), []byte(`
credentials:
  acme-live-key:
    file: /run/secrets/acme
  adyen:
    env: ADYEN_API_KEY
  cybersource-secret:
    vault: {mount: secret, path: processors/cybersource, key: shared_secret, version: 3}
    encoding: base64
    kind: hmac-key
`)...)
	c, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Credential{
		"acme-live-key":      {File: "/run/secrets/acme"},
		"adyen":              {Env: "ADYEN_API_KEY"},
		"cybersource-secret": {Vault: &CredentialVault{Mount: "secret", Path: "processors/cybersource", Key: "shared_secret", Version: 3}, Encoding: "base64", Kind: "hmac-key"},
	}
	if diff := cmp.Diff(want, c.Credentials); diff != "" {
		t.Errorf("Credentials (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"acme-live-key", "adyen", "cybersource-secret"}, c.CredentialNames()); diff != "" {
		t.Errorf("CredentialNames() (-want +got):\n%s", diff)
	}
}

func TestCredentialsStrictDecoding(t *testing.T) {
	for name, extra := range map[string]string{
		"unknown key":         "credentials:\n  acme:\n    file: /x\n    value: sk_live_inline\n",
		"unknown vault key":   "credentials:\n  acme:\n    vault: {mount: secret, path: p, key: k, field: x}\n",
		"duplicate name":      "credentials:\n  acme:\n    file: /x\n  acme:\n    env: A\n",
		"list, not a mapping": "credentials:\n  - acme\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse(append(mustRead(t, "testdata/dev.yaml"), extra...)); err == nil {
				t.Error("Parse() accepted it")
			}
		})
	}
}

func TestCredentialsValidate(t *testing.T) {
	vault := func(v CredentialVault) Credential { return Credential{Vault: &v} }
	tests := []struct {
		name     string
		creds    map[string]Credential
		mutate   func(*Config)
		wantKeys []string // the keys named, sorted; nil means valid
		wantMsg  string
	}{
		{"none", nil, nil, nil, ""},
		{"file", map[string]Credential{"acme-live-key": {File: "/run/secrets/acme"}}, nil, nil, ""},
		{"env with encoding and kind", map[string]Credential{"ed": {Env: "ED_KEY", Encoding: "base64", Kind: "ed25519-private-key"}}, nil, nil, ""},
		{"no source", map[string]Credential{"acme-live-key": {}}, nil, []string{"credentials.acme-live-key"}, "credentials.acme-live-key: exactly one of file, env, vault"},
		{"two sources", map[string]Credential{"acme-live-key": {File: "/x", Env: "A"}}, nil, []string{"credentials.acme-live-key"}, "exactly one of file, env, vault"},
		{"upper case name", map[string]Credential{"Acme": {File: "/x"}}, nil, []string{"credentials.Acme"}, "not a credential name"},
		{"dotted name", map[string]Credential{"acme.live": {File: "/x"}}, nil, []string{"credentials.acme.live"}, "not a credential name"},
		{"name too long", map[string]Credential{strings.Repeat("a", 64): {File: "/x"}}, nil, []string{"credentials." + strings.Repeat("a", 64)}, "not a credential name"},
		{"63 characters", map[string]Credential{strings.Repeat("a", 63): {File: "/x"}}, nil, nil, ""},
		{"bad env name", map[string]Credential{"a": {Env: "A-B"}}, nil, []string{"credentials.a.env"}, "not an environment variable name"},
		{"gateway's env", map[string]Credential{"a": {Env: EnvVaultToken}}, nil, []string{"credentials.a.env"}, "the gateway's own"},
		{"vault's env", map[string]Credential{"a": {Env: "VAULT_TOKEN"}}, nil, []string{"credentials.a.env"}, "the gateway's own"},
		{"gateway's key file", map[string]Credential{"a": {File: "./keyring.json"}}, nil, []string{"credentials.a.file"}, "keys.local.path"},
		{"bad encoding", map[string]Credential{"a": {File: "/x", Encoding: "base32"}}, nil, []string{"credentials.a.encoding"}, "not an encoding"},
		{"bad kind", map[string]Credential{"a": {File: "/x", Kind: "rsa"}}, nil, []string{"credentials.a.kind"}, "not a kind"},
		{"vault", map[string]Credential{"a": vault(CredentialVault{Mount: "secret", Path: "processors/acme", Key: "api_key"})}, vaultConfig, nil, ""},
		{"vault fields", map[string]Credential{"a": vault(CredentialVault{Mount: "", Path: "../sys", Version: -1})}, vaultConfig,
			[]string{"credentials.a.vault.key", "credentials.a.vault.mount", "credentials.a.vault.path", "credentials.a.vault.version"}, ""},
		{"vault with an hsm key backend", map[string]Credential{"a": vault(CredentialVault{Mount: "secret", Path: "p", Key: "k"})}, func(c *Config) {
			hsmConfig(c)
			c.Keys.Vault.Address = "https://vault:8200"
			c.Keys.Vault.Auth = VaultAuth{Method: VaultAuthToken, Token: "hvs.x"}
			c.Keys.Vault.Mount, c.Keys.Vault.Key = "", "" // Transit's, not needed
		}, nil, ""},
		{"vault without a connection", map[string]Credential{"a": vault(CredentialVault{Mount: "secret", Path: "p", Key: "k"})}, hsmConfig,
			[]string{"keys.vault.address", "keys.vault.auth.role_id", "keys.vault.auth.secret_id_file"}, "(credentials are read from Vault)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := prodBase(t)
			if tt.mutate != nil {
				tt.mutate(&c)
			} else {
				hsmConfig(&c)
			}
			c.Credentials = tt.creds
			err := c.Validate()
			var got []string
			for _, k := range fieldKeys(err) {
				if strings.HasPrefix(k, "credentials") || strings.HasPrefix(k, "keys") {
					got = append(got, k)
				}
			}
			slices.Sort(got)
			if diff := cmp.Diff(tt.wantKeys, got); diff != "" {
				t.Errorf("Validate() = %v\nkeys (-want +got):\n%s", err, diff)
			}
			var fe *FieldError
			if tt.wantMsg != "" && (!errors.As(err, &fe) || !strings.Contains(err.Error(), tt.wantMsg)) {
				t.Errorf("Validate() = %v, want it to say %q", err, tt.wantMsg)
			}
		})
	}
}
