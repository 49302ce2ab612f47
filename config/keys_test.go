package config

import (
	"errors"
	"strings"
	"testing"
)

// prodBase is dev.yaml in production mode with mTLS, so that only the
// keys section decides.
func prodBase(t *testing.T) Config {
	t.Helper()
	c, err := Parse(mustRead(t, "testdata/dev.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c.Mode = ModeProduction
	c.Listen.TLS = ListenTLS{CertFile: "c", KeyFile: "k", ClientCAFile: "ca"}
	return c
}

func hsmConfig(c *Config) {
	c.Keys.Backend = KeysHSM
	c.Keys.HSM.Library = "/usr/lib/softhsm/libsofthsm2.so"
	c.Keys.HSM.TokenLabel = "cardgate"
	c.Keys.HSM.PIN = "1234"
}

func vaultConfig(c *Config) {
	c.Keys.Backend = KeysVault
	c.Keys.Vault.Address = "https://vault:8200"
	c.Keys.Vault.Auth.RoleID = "gw"
	c.Keys.Vault.Auth.SecretIDFile = "/run/secret-id"
}

func TestKeysDefaults(t *testing.T) {
	k := Default().Keys
	if k.HSM.KeyLabel != DefaultHSMKeyLabel || k.HSM.Timeout != DefaultHSMTimeout || k.HSM.MaxSessions != DefaultHSMMaxSessions {
		t.Errorf("hsm defaults = %+v", k.HSM)
	}
	if k.Vault.Mount != DefaultVaultMount || k.Vault.Key != DefaultVaultKey || k.Vault.Auth.Method != DefaultVaultAuthMethod ||
		k.Vault.MaxRetries != DefaultVaultMaxRetries || k.Vault.Timeout != DefaultVaultTimeout {
		t.Errorf("vault defaults = %+v", k.Vault)
	}
}

func TestKeysValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantKey string // "" means valid
	}{
		{"hsm", hsmConfig, ""},
		{"vault approle", vaultConfig, ""},
		{"vault cert", func(c *Config) {
			vaultConfig(c)
			c.Keys.Vault.Auth = VaultAuth{Method: VaultAuthCert}
			c.Keys.Vault.ClientCertFile, c.Keys.Vault.ClientKeyFile = "c", "k"
		}, ""},
		{"unknown backend", func(c *Config) { c.Keys.Backend = "kms" }, "keys.backend"},
		{"local in production", func(c *Config) {}, "keys.backend"},
		{"hsm without library", func(c *Config) { hsmConfig(c); c.Keys.HSM.Library = "" }, "keys.hsm.library"},
		{"hsm without token label", func(c *Config) { hsmConfig(c); c.Keys.HSM.TokenLabel = "" }, "keys.hsm.token_label"},
		{"hsm without pin", func(c *Config) { hsmConfig(c); c.Keys.HSM.PIN = "" }, "keys.hsm.pin"},
		{"hsm same labels", func(c *Config) { hsmConfig(c); c.Keys.HSM.FingerprintLabel = c.Keys.HSM.KeyLabel }, "keys.hsm.key_label"},
		{"hsm primary retired", func(c *Config) { hsmConfig(c); c.Keys.HSM.PrimaryVersion, c.Keys.HSM.MinVersion = 1, 2 }, "keys.hsm.primary_version"},
		{"hsm zero timeout", func(c *Config) { hsmConfig(c); c.Keys.HSM.Timeout = 0 }, "keys.hsm.timeout"},
		{"hsm one session", func(c *Config) { hsmConfig(c); c.Keys.HSM.MaxSessions = 1 }, "keys.hsm.max_sessions"},
		{"vault without address", func(c *Config) { vaultConfig(c); c.Keys.Vault.Address = "" }, "keys.vault.address"},
		{"vault over http", func(c *Config) { vaultConfig(c); c.Keys.Vault.Address = "http://vault:8200" }, "keys.vault.address"},
		{"vault same keys", func(c *Config) { vaultConfig(c); c.Keys.Vault.FingerprintKey = c.Keys.Vault.Key }, "keys.vault.key"},
		{"vault approle without role", func(c *Config) { vaultConfig(c); c.Keys.Vault.Auth.RoleID = "" }, "keys.vault.auth.role_id"},
		{"vault approle without secret id", func(c *Config) { vaultConfig(c); c.Keys.Vault.Auth.SecretIDFile = "" }, "keys.vault.auth.secret_id_file"},
		{"vault cert without certificate", func(c *Config) { vaultConfig(c); c.Keys.Vault.Auth.Method = VaultAuthCert }, "keys.vault.client_cert_file"},
		{"vault cert without key", func(c *Config) { vaultConfig(c); c.Keys.Vault.ClientCertFile = "c" }, "keys.vault.client_cert_file"},
		{"vault token without token", func(c *Config) { vaultConfig(c); c.Keys.Vault.Auth.Method = VaultAuthToken }, "keys.vault.auth.token"},
		{"vault unknown method", func(c *Config) { vaultConfig(c); c.Keys.Vault.Auth.Method = "userpass" }, "keys.vault.auth.method"},
		{"vault negative retries", func(c *Config) { vaultConfig(c); c.Keys.Vault.MaxRetries = -1 }, "keys.vault.max_retries"},
		{"vault zero timeout", func(c *Config) { vaultConfig(c); c.Keys.Vault.Timeout = 0 }, "keys.vault.timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := prodBase(t)
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantKey == "" {
				// Other sections have their own production requirements;
				// only the keys section is under test.
				for _, k := range fieldKeys(err) {
					if strings.HasPrefix(k, "keys") {
						t.Errorf("Validate() = %v, want nothing about keys", err)
					}
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), "config: "+tt.wantKey+":") {
				t.Errorf("Validate() = %v, want a *FieldError naming %s", err, tt.wantKey)
			}
		})
	}
}

func TestKeysEnv(t *testing.T) {
	env := map[string]string{
		EnvHSMPIN: "9999", EnvVaultAddr: "https://vault.env:8200", EnvVaultRoleID: "role-env",
		EnvVaultSecretIDFile: "/env/secret-id", EnvVaultToken: "hvs.env", EnvVaultNamespace: "ns",
		EnvVaultClientCert: "/env/c.pem", EnvVaultClientCertKey: "/env/k.pem",
	}
	c := Default()
	c.applyEnv(func(k string) string { return env[k] })
	v := c.Keys.Vault
	got := []string{c.Keys.HSM.PIN, v.Address, v.Auth.RoleID, v.Auth.SecretIDFile, v.Auth.Token, v.Namespace, v.ClientCertFile, v.ClientKeyFile}
	want := []string{"9999", "https://vault.env:8200", "role-env", "/env/secret-id", "hvs.env", "ns", "/env/c.pem", "/env/k.pem"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("after env overrides: %q, want %q", got, want)
	}
}

// fieldKeys lists the keys named by the *FieldErrors joined in err.
func fieldKeys(err error) []string {
	var out []string
	var fe *FieldError
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, fieldKeys(e)...)
		}
	} else if errors.As(err, &fe) {
		out = append(out, fe.Key)
	}
	return out
}
