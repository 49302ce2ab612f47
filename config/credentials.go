package config

import (
	"path/filepath"
	"slices"
	"strings"
)

// Credential encodings and kinds; the credentials package defines what
// each means.
const (
	CredentialEncodingRaw    = "raw"
	CredentialEncodingBase64 = "base64"
	CredentialEncodingHex    = "hex"

	CredentialKindSecret    = "secret"
	CredentialKindHMACKey   = "hmac-key"
	CredentialKindEd25519   = "ed25519-private-key"
	CredentialKindECDSAP256 = "ecdsa-p256-private-key"
)

// Credential is one processor credential the gateway holds for its
// callers (credentials.NAME). Allowlist entries name the credentials they
// may use; the value itself is never in the allowlist, the file or a log.
type Credential struct {
	// Exactly one source. File is a path (a symlink to a regular file is
	// fine): its whole content with one trailing newline removed.
	File string `yaml:"file"`
	// Env names an environment variable. CARDGATE_* and VAULT_* are the
	// gateway's own and are refused.
	Env string `yaml:"env"`
	// Vault is a key of a KV version 2 secret, read with keys.vault's
	// address, TLS and auth, whatever keys.backend is.
	Vault *CredentialVault `yaml:"vault"`
	// Encoding is how the source's bytes encode the value: raw (the
	// default), base64 or hex.
	Encoding string `yaml:"encoding"`
	// Kind is what the value is, checked when it loads: secret (the
	// default; written into headers), hmac-key, ed25519-private-key or
	// ecdsa-p256-private-key (PEM or DER).
	Kind string `yaml:"kind"`
}

// CredentialVault locates a value in Vault KV version 2: GET
// /v1/MOUNT/data/PATH, the string at data.data[KEY].
type CredentialVault struct {
	Mount string `yaml:"mount"`
	Path  string `yaml:"path"`
	Key   string `yaml:"key"`
	// Version pins a version; 0 (the default) follows the latest, which
	// every reload reads again.
	Version int `yaml:"version"`
}

// CredentialNames returns the configured credential names, sorted.
func (c *Config) CredentialNames() []string {
	names := make([]string, 0, len(c.Credentials))
	for n := range c.Credentials {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// validateCredentials checks the credentials section.
func (c *Config) validateCredentials(bad func(key, format string, args ...any), dev bool) {
	own := c.ownSecretFiles()
	usesVault := false
	for _, name := range c.CredentialNames() {
		cr := c.Credentials[name]
		key := "credentials." + name
		if !validCredentialName(name) {
			bad(key, "%q is not a credential name: use 1-63 of a-z, 0-9, '_' and '-', starting with a letter or digit", name)
		}
		n := 0
		for _, set := range []bool{cr.File != "", cr.Env != "", cr.Vault != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			bad(key, "exactly one of file, env, vault")
		}
		if cr.File != "" {
			if k, ok := own[filepath.Clean(cr.File)]; ok {
				bad(key+".file", "%q is the gateway's own secret (%s); a processor credential must not be able to carry it", cr.File, k)
			}
		}
		if cr.Env != "" {
			switch {
			case !validEnvName(cr.Env):
				bad(key+".env", "%q is not an environment variable name", cr.Env)
			case strings.HasPrefix(cr.Env, "CARDGATE_") || strings.HasPrefix(cr.Env, "VAULT_"):
				bad(key+".env", "%s is the gateway's own (CARDGATE_* and VAULT_* configure it and hold its secrets); give the processor credential a variable of its own", cr.Env)
			}
		}
		if v := cr.Vault; v != nil {
			usesVault = true
			if !validVaultPath(v.Mount) {
				bad(key+".vault.mount", "required: the KV version 2 mount, such as \"secret\" (segments of letters, digits, '.', '_' and '-')")
			}
			if !validVaultPath(v.Path) {
				bad(key+".vault.path", "required: the secret's path under the mount, such as \"processors/acme\" (segments of letters, digits, '.', '_' and '-')")
			}
			if v.Key == "" {
				bad(key+".vault.key", "required: the key within the secret's data that holds the value")
			}
			if v.Version < 0 {
				bad(key+".vault.version", "%d is negative: use 0 to follow the latest version, or pin one", v.Version)
			}
		}
		switch cr.Encoding {
		case "", CredentialEncodingRaw, CredentialEncodingBase64, CredentialEncodingHex:
		default:
			bad(key+".encoding", "%q is not an encoding: use %s, %s or %s", cr.Encoding, CredentialEncodingRaw, CredentialEncodingBase64, CredentialEncodingHex)
		}
		switch cr.Kind {
		case "", CredentialKindSecret, CredentialKindHMACKey, CredentialKindEd25519, CredentialKindECDSAP256:
		default:
			bad(key+".kind", "%q is not a kind: use %s, %s, %s or %s", cr.Kind, CredentialKindSecret, CredentialKindHMACKey, CredentialKindEd25519, CredentialKindECDSAP256)
		}
	}
	if usesVault && c.Keys.Backend != KeysVault {
		// keys.vault was not checked with the key backend; its connection
		// and auth settings are needed now. Transit's own key names are
		// not.
		vc := *c
		vc.Keys.Backend = KeysVault
		vc.validateKeys(func(key, format string, args ...any) {
			if key == "keys.vault.mount" || key == "keys.vault.key" {
				return
			}
			bad(key, format+" (credentials are read from Vault)", args...)
		}, dev)
	}
}

// ownSecretFiles maps the gateway's own secret files to their keys.
func (c *Config) ownSecretFiles() map[string]string {
	own := map[string]string{}
	add := func(path, key string) {
		if path != "" {
			own[filepath.Clean(path)] = key
		}
	}
	add(c.Listen.TLS.KeyFile, "listen.tls.key_file")
	add(c.Keys.Local.Path, "keys.local.path")
	add(c.Keys.Vault.Auth.SecretIDFile, "keys.vault.auth.secret_id_file")
	add(c.Keys.Vault.ClientKeyFile, "keys.vault.client_key_file")
	add(c.Store.Redis.TLS.KeyFile, "store.redis.tls.key_file")
	for name, cc := range c.Egress.ClientCerts {
		add(cc.KeyFile, "egress.client_certs."+name+".key_file")
	}
	return own
}

// validCredentialName is the credentials package's grammar,
// [a-z0-9][a-z0-9_-]{0,62}, restated: config does not import it.
func validCredentialName(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '-') {
			return false
		}
	}
	return true
}

func validEnvName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// validVaultPath accepts slash-separated segments of letters, digits,
// '.', '_' and '-', none of them "." or "..".
func validVaultPath(s string) bool {
	if s == "" || len(s) > 512 {
		return false
	}
	for _, seg := range strings.Split(s, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !(c == '.' || c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				return false
			}
		}
	}
	return true
}
