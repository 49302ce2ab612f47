package credentials

import (
	"context"
	"fmt"
	"strings"
)

// Kind says what a credential's bytes are, so that a bad key fails when
// it is loaded, not at the first forward that needs it.
type Kind string

// Kinds.
const (
	// KindSecret is an opaque value written into a header (an API key, a
	// password, a bearer token). It must be printable: no control
	// characters other than tab, and no whitespace at either end, so it
	// cannot split or bend the header it is written into.
	KindSecret Kind = "secret"
	// KindHMACKey is a key for an HMAC signature: any bytes, at least
	// MinHMACKeyBytes of them (after decoding: Cybersource's shared
	// secret is base64).
	KindHMACKey Kind = "hmac-key"
	// KindEd25519PrivateKey is an Ed25519 private key: PEM "PRIVATE KEY"
	// (PKCS#8), PKCS#8 DER, or a 32-byte seed.
	KindEd25519PrivateKey Kind = "ed25519-private-key"
	// KindECDSAP256PrivateKey is an ECDSA key on P-256: PEM "PRIVATE KEY"
	// (PKCS#8) or "EC PRIVATE KEY" (SEC 1), or the same in DER.
	KindECDSAP256PrivateKey Kind = "ecdsa-p256-private-key"
)

// Encoding is how a source's bytes encode the value.
type Encoding string

// Encodings.
const (
	EncodingRaw    Encoding = "raw"    // the bytes as they are (the default)
	EncodingBase64 Encoding = "base64" // standard base64 with padding (RFC 4648 §4)
	EncodingHex    Encoding = "hex"    // hexadecimal, either case
)

// Source kinds, as Error.Source and Secret.Source name them.
const (
	SourceFile  = "file"
	SourceEnv   = "env"
	SourceVault = "vault"
)

// Spec declares one credential.
type Spec struct {
	// Name is how allowlist entries and placeholders ({{secret.NAME}})
	// refer to it: 1-63 of a-z, 0-9, '_' and '-', starting with a letter
	// or digit.
	Name string
	// Source is exactly one of File, Env or VaultKV.
	Source Source
	// Encoding is "" (raw), raw, base64 or hex.
	Encoding Encoding
	// Kind is "" (secret) or one of the Kind constants.
	Kind Kind
}

// Source is where a credential's bytes come from: File, Env or VaultKV.
type Source interface {
	// Kind is SourceFile, SourceEnv or SourceVault.
	Kind() string
	// read returns the raw bytes, which the caller clears, and the Vault
	// version they are (0 for others).
	read(ctx context.Context, l *loader) (b []byte, version int, err error)
	check(o *Options) string
}

// File reads a file: its whole content with one trailing newline ("\n" or
// "\r\n") removed. The path may be a symlink (or a chain of them, as
// Kubernetes secret volumes are) to a regular file; a directory, FIFO,
// socket or device is refused without blocking.
type File struct {
	Path string
}

// Env reads an environment variable; unset and empty are refused.
type Env struct {
	Var string
}

// VaultKV reads one key of a HashiCorp Vault KV version 2 secret: GET
// /v1/MOUNT/data/PATH, the string at data.data[KEY]. With Version 0 each
// load reads the latest version, so a reload follows the secret's new
// versions; a positive Version pins it.
type VaultKV struct {
	Mount   string
	Path    string
	Key     string
	Version int
}

func (File) Kind() string    { return SourceFile }
func (Env) Kind() string     { return SourceEnv }
func (VaultKV) Kind() string { return SourceVault }

func (f File) check(*Options) string {
	if f.Path == "" {
		return "file: the path is empty"
	}
	return ""
}

func (e Env) check(*Options) string {
	if !validEnvName(e.Var) {
		return fmt.Sprintf("env: %q is not a variable name", e.Var)
	}
	return ""
}

func (v VaultKV) check(o *Options) string {
	switch {
	case o.Vault == nil:
		return "vault: no Vault client is configured"
	case !validVaultPath(v.Mount):
		return fmt.Sprintf("vault: mount %q is not a Vault path", v.Mount)
	case !validVaultPath(v.Path):
		return fmt.Sprintf("vault: path %q is not a Vault path", v.Path)
	case v.Key == "":
		return "vault: the key within the secret's data is empty"
	case v.Version < 0:
		return fmt.Sprintf("vault: version %d is negative", v.Version)
	}
	return ""
}

// ValidName reports whether s is a credential name:
// [a-z0-9][a-z0-9_-]{0,62}.
func ValidName(s string) bool {
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
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// validVaultPath accepts slash-separated segments of letters, digits,
// '.', '_' and '-', none of them "." or "..", so a configured path cannot
// climb out of its mount or carry a query.
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

// check returns what is wrong with sp, or "".
func (sp *Spec) check(o *Options) string {
	if !ValidName(sp.Name) {
		return "the name must be 1-63 of a-z, 0-9, '_' and '-', starting with a letter or digit"
	}
	switch sp.Source.(type) {
	case File, Env, VaultKV:
	case nil:
		return "no source: set a File, Env or VaultKV"
	default:
		return "the source must be a File, Env or VaultKV value"
	}
	switch sp.Encoding {
	case "", EncodingRaw, EncodingBase64, EncodingHex:
	default:
		return fmt.Sprintf("encoding %q is not raw, base64 or hex", sp.Encoding)
	}
	switch sp.Kind {
	case "", KindSecret, KindHMACKey, KindEd25519PrivateKey, KindECDSAP256PrivateKey:
	default:
		return fmt.Sprintf("kind %q is not %s, %s, %s or %s", sp.Kind, KindSecret, KindHMACKey, KindEd25519PrivateKey, KindECDSAP256PrivateKey)
	}
	return sp.Source.check(o)
}
