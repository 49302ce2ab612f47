package config

import (
	"strings"
	"time"
)

// Key backends.
const (
	KeysLocal = "local"
	KeysHSM   = "hsm"
	KeysVault = "vault"
)

// Vault auth methods.
const (
	VaultAuthAppRole = "approle"
	VaultAuthCert    = "cert"
	VaultAuthToken   = "token"
)

// Key backend defaults. They equal vaultclient's, restated here so the
// configuration file's defaults are visible in one package.
const (
	DefaultHSMKeyLabel          = "cardgate-card"
	DefaultHSMFingerprintLabel  = "cardgate-fingerprint"
	DefaultHSMTimeout           = 2 * time.Second
	DefaultHSMMaxSessions       = 16
	DefaultVaultMount           = "transit"
	DefaultVaultKey             = "cardgate-card"
	DefaultVaultFingerprintKey  = "cardgate-fingerprint"
	DefaultVaultTimeout         = 2 * time.Second
	DefaultVaultMaxRetries      = 2
	DefaultVaultAuthMethod      = VaultAuthAppRole
	DefaultVaultSecretIDWrapped = false
)

// Environment overrides for the key backends' addresses and secrets.
const (
	EnvHSMPIN             = "CARDGATE_HSM_PIN"
	EnvVaultAddr          = "CARDGATE_VAULT_ADDR"
	EnvVaultRoleID        = "CARDGATE_VAULT_ROLE_ID"
	EnvVaultSecretIDFile  = "CARDGATE_VAULT_SECRET_ID_FILE"
	EnvVaultToken         = "CARDGATE_VAULT_TOKEN"
	EnvVaultNamespace     = "CARDGATE_VAULT_NAMESPACE"
	EnvVaultClientCert    = "CARDGATE_VAULT_CLIENT_CERT_FILE"
	EnvVaultClientCertKey = "CARDGATE_VAULT_CLIENT_KEY_FILE"
)

// Keys selects the key backend.
type Keys struct {
	// Backend is "local" (development), "hsm" (PKCS#11) or "vault"
	// (HashiCorp Vault or OpenBao Transit).
	Backend string `yaml:"backend"`
	Local   Local  `yaml:"local"`
	HSM     HSM    `yaml:"hsm"`
	Vault   Vault  `yaml:"vault"`
}

// HSM is the PKCS#11 backend: keys generated inside the token, never
// extractable.
type HSM struct {
	// Library is the vendor's PKCS#11 module.
	Library string `yaml:"library"`
	// TokenLabel selects the token (slot ids are not stable).
	TokenLabel string `yaml:"token_label"`
	// PIN is the user PIN; set it through CARDGATE_HSM_PIN.
	PIN string `yaml:"pin" secret:"true"`
	// KeyLabel and FingerprintLabel are the key objects' label prefixes:
	// card key version N is "<key_label>-vN".
	KeyLabel         string `yaml:"key_label"`
	FingerprintLabel string `yaml:"fingerprint_label"`
	// PrimaryVersion pins the version that seals new cards; 0 means the
	// highest version on the token at or above MinVersion.
	PrimaryVersion uint32 `yaml:"primary_version"`
	// MinVersion retires every version below it: records sealed under
	// one fail with key_retired. 0 means none is retired.
	MinVersion  uint32        `yaml:"min_version"`
	Timeout     time.Duration `yaml:"timeout"`
	MaxSessions int           `yaml:"max_sessions"`
}

// Vault is the Transit backend.
type Vault struct {
	// Address is Vault's https URL (or CARDGATE_VAULT_ADDR).
	Address   string `yaml:"address"`
	Namespace string `yaml:"namespace"`
	// Mount, Key and FingerprintKey name the Transit mount and keys.
	Mount          string `yaml:"mount"`
	Key            string `yaml:"key"`
	FingerprintKey string `yaml:"fingerprint_key"`
	// CAFile is the PEM bundle that issued Vault's certificate; "" means
	// the system roots. Verification is never optional.
	CAFile string `yaml:"ca_file"`
	// ClientCertFile and ClientKeyFile: mutual TLS, and the credential
	// for cert auth.
	ClientCertFile string `yaml:"client_cert_file"`
	ClientKeyFile  string `yaml:"client_key_file"`
	TLSServerName  string `yaml:"tls_server_name"`
	// Timeout bounds each request to Vault, retries included.
	Timeout time.Duration `yaml:"timeout"`
	// MaxRetries bounds retries of idempotent calls after a connection
	// error or a 5xx; 0 means none.
	MaxRetries int       `yaml:"max_retries"`
	Auth       VaultAuth `yaml:"auth"`
}

// VaultAuth is how the gateway logs in to Vault.
type VaultAuth struct {
	// Method is "approle" (default), "cert" or "token".
	Method string `yaml:"method"`
	// Mount is the auth mount; "" means the method's name.
	Mount string `yaml:"mount"`
	// RoleID (or CARDGATE_VAULT_ROLE_ID) and SecretIDFile (or
	// CARDGATE_VAULT_SECRET_ID_FILE) are the AppRole credentials. With
	// SecretIDWrapped the file holds a single-use response-wrapping token.
	RoleID          string `yaml:"role_id" secret:"true"`
	SecretIDFile    string `yaml:"secret_id_file"`
	SecretIDWrapped bool   `yaml:"secret_id_wrapped"`
	// CertRole names the cert auth role.
	CertRole string `yaml:"cert_role"`
	// Token is for the token method; set it through CARDGATE_VAULT_TOKEN.
	Token string `yaml:"token" secret:"true"`
}

func defaultHSM() HSM {
	return HSM{KeyLabel: DefaultHSMKeyLabel, FingerprintLabel: DefaultHSMFingerprintLabel,
		Timeout: DefaultHSMTimeout, MaxSessions: DefaultHSMMaxSessions}
}

func defaultVault() Vault {
	return Vault{Mount: DefaultVaultMount, Key: DefaultVaultKey, FingerprintKey: DefaultVaultFingerprintKey,
		Timeout: DefaultVaultTimeout, MaxRetries: DefaultVaultMaxRetries,
		Auth: VaultAuth{Method: DefaultVaultAuthMethod, SecretIDWrapped: DefaultVaultSecretIDWrapped}}
}

func (c *Config) applyKeysEnv(set func(dst *string, name, key string)) {
	set(&c.Keys.HSM.PIN, EnvHSMPIN, "keys.hsm.pin")
	set(&c.Keys.Vault.Address, EnvVaultAddr, "keys.vault.address")
	set(&c.Keys.Vault.Namespace, EnvVaultNamespace, "keys.vault.namespace")
	set(&c.Keys.Vault.Auth.RoleID, EnvVaultRoleID, "keys.vault.auth.role_id")
	set(&c.Keys.Vault.Auth.SecretIDFile, EnvVaultSecretIDFile, "keys.vault.auth.secret_id_file")
	set(&c.Keys.Vault.Auth.Token, EnvVaultToken, "keys.vault.auth.token")
	set(&c.Keys.Vault.ClientCertFile, EnvVaultClientCert, "keys.vault.client_cert_file")
	set(&c.Keys.Vault.ClientKeyFile, EnvVaultClientCertKey, "keys.vault.client_key_file")
}

// validateKeys checks the keys section. Only the selected backend's
// subsection is checked.
func (c *Config) validateKeys(bad func(key, format string, args ...any), dev bool) {
	switch c.Keys.Backend {
	case KeysLocal:
		if c.Keys.Local.Path == "" {
			bad("keys.local.path", "required for the local keyring: create one with `cardgate keys init FILE`")
		}
		if !dev && !c.Keys.Local.UnsafeAllowOutsideDev {
			bad("keys.backend", "the local keyring is for development only: use mode: dev, or keys.backend %q or %q; keys.local.unsafe_allow_outside_dev overrides this and defeats key custody", KeysHSM, KeysVault)
		}
	case KeysHSM:
		h := c.Keys.HSM
		if h.Library == "" {
			bad("keys.hsm.library", "required: the path of the HSM vendor's PKCS#11 module (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)")
		}
		if h.TokenLabel == "" {
			bad("keys.hsm.token_label", "required: the label of the token that holds the keys (slot numbers are not stable)")
		}
		if h.PIN == "" {
			bad("keys.hsm.pin", "required: set %s rather than writing the PIN into the file", EnvHSMPIN)
		}
		if h.KeyLabel == "" || h.FingerprintLabel == "" || h.KeyLabel == h.FingerprintLabel {
			bad("keys.hsm.key_label", "key_label and fingerprint_label must be set and differ (defaults %q and %q)", DefaultHSMKeyLabel, DefaultHSMFingerprintLabel)
		}
		if h.PrimaryVersion != 0 && h.PrimaryVersion < h.MinVersion {
			bad("keys.hsm.primary_version", "%d is below keys.hsm.min_version %d: the primary cannot be retired", h.PrimaryVersion, h.MinVersion)
		}
		if h.Timeout <= 0 {
			bad("keys.hsm.timeout", "must be a positive duration (default %v)", DefaultHSMTimeout)
		}
		if h.MaxSessions < 2 {
			bad("keys.hsm.max_sessions", "must be at least 2 (default %d)", DefaultHSMMaxSessions)
		}
	case KeysVault:
		v := c.Keys.Vault
		switch {
		case v.Address == "":
			bad("keys.vault.address", "required: Vault's https:// URL, or set %s", EnvVaultAddr)
		case !strings.HasPrefix(v.Address, "https://"):
			bad("keys.vault.address", "must be an https:// URL: card keys are never reached in clear")
		}
		if v.Mount == "" {
			bad("keys.vault.mount", "required (default %q)", DefaultVaultMount)
		}
		if v.Key == "" || v.FingerprintKey == "" || v.Key == v.FingerprintKey {
			bad("keys.vault.key", "key and fingerprint_key must be set and differ (defaults %q and %q)", DefaultVaultKey, DefaultVaultFingerprintKey)
		}
		if (v.ClientCertFile == "") != (v.ClientKeyFile == "") {
			bad("keys.vault.client_cert_file", "client_cert_file and client_key_file must both be set, or neither")
		}
		if v.Timeout <= 0 {
			bad("keys.vault.timeout", "must be a positive duration (default %v)", DefaultVaultTimeout)
		}
		if v.MaxRetries < 0 {
			bad("keys.vault.max_retries", "must be 0 or more (default %d)", DefaultVaultMaxRetries)
		}
		switch v.Auth.Method {
		case VaultAuthAppRole:
			if v.Auth.RoleID == "" {
				bad("keys.vault.auth.role_id", "required for approle: set it or %s", EnvVaultRoleID)
			}
			if v.Auth.SecretIDFile == "" {
				bad("keys.vault.auth.secret_id_file", "required for approle: the file the secret id (or its wrapping token) is delivered to, or set %s", EnvVaultSecretIDFile)
			}
		case VaultAuthCert:
			if v.ClientCertFile == "" {
				bad("keys.vault.client_cert_file", "required for cert auth: the gateway's TLS client certificate")
			}
		case VaultAuthToken:
			if v.Auth.Token == "" {
				bad("keys.vault.auth.token", "required for token auth: set %s", EnvVaultToken)
			}
		default:
			bad("keys.vault.auth.method", "%q is not a method: use %q, %q or %q", v.Auth.Method, VaultAuthAppRole, VaultAuthCert, VaultAuthToken)
		}
	default:
		bad("keys.backend", "%q is not a key backend: use %q, %q or %q", c.Keys.Backend, KeysHSM, KeysVault, KeysLocal)
	}
}
