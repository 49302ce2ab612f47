package credentials

import (
	"crypto"
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strconv"
)

// Secret is one loaded credential. Every way of printing or encoding it
// — String, GoString, fmt's verbs, slog, JSON, text — gives the mask
// "[secret.NAME]"; only Reveal and Signer reach the value.
//
// Secret is not comparable (== does not compile) and Equal compares in
// constant time. The zero Secret holds nothing and equals nothing. A
// Secret is immutable and safe to share; it stays valid after the store
// reloads, so a forward that took it keeps a consistent value.
type Secret struct {
	_ [0]func() // not comparable
	v *value    // behind a pointer: a struct holding a Secret in an unexported field prints an address, not bytes
}

// value is what a Secret points to. Its byte slices are zeroed by a
// cleanup once no Secret or Signer refers to it any more, so a value a
// reload replaced does not linger in freed memory.
type value struct {
	name    string
	kind    Kind
	source  string
	version int
	b       []byte
	signer  *keySigner // for private-key kinds
}

func newValue(name string, kind Kind, source string, version int, b []byte, key crypto.Signer, wipeKey func()) *value {
	v := &value{name: name, kind: kind, source: source, version: version, b: b}
	if key != nil {
		v.signer = &keySigner{v: v, k: key}
	}
	// The cleanup's argument holds the bytes and the key, not v, so v
	// can become unreachable; anything that still needs them (a Secret,
	// a Signer) holds v.
	runtime.AddCleanup(v, func(wipe func()) { wipe() }, func() {
		clear(b)
		if wipeKey != nil {
			wipeKey()
		}
	})
	return v
}

// Name returns the credential's configured name; "" for the zero Secret.
func (s Secret) Name() string {
	if s.v == nil {
		return ""
	}
	return s.v.name
}

// Kind returns the credential's kind; "" for the zero Secret.
func (s Secret) Kind() Kind {
	if s.v == nil {
		return ""
	}
	return s.v.kind
}

// Source returns the kind of source it was read from: SourceFile,
// SourceEnv or SourceVault.
func (s Secret) Source() string {
	if s.v == nil {
		return ""
	}
	return s.v.source
}

// Version returns the Vault KV version the value was read from, or 0 for
// file and environment sources.
func (s Secret) Version() int {
	if s.v == nil {
		return 0
	}
	return s.v.version
}

// IsZero reports whether s holds no credential.
func (s Secret) IsZero() bool { return s.v == nil }

// Equal reports whether s and o hold the same bytes, in time that does
// not depend on where they differ. A zero Secret is equal to nothing, not
// even another zero Secret, so that a missing credential never matches.
func (s Secret) Equal(o Secret) bool {
	if s.v == nil || o.v == nil {
		return false
	}
	return subtle.ConstantTimeCompare(s.v.b, o.v.b) == 1
}

// Reveal returns a copy of the credential's bytes: for a secret or an
// HMAC key the value itself, for a private key the decoded PEM or DER.
//
// Reveal is dangerous and is the only way to the bytes. It exists so
// that the forwarder can write a credential into a header or key an
// HMAC, at the last moment, on the request that the signed allowlist
// lets carry it. Never log, trace, store, compare with ==, return to a
// caller or put into an error what it returns. The copy belongs to the
// caller, who should clear() it as soon as it is used. The zero Secret
// reveals nil.
func (s Secret) Reveal() []byte {
	if s.v == nil {
		return nil
	}
	return append([]byte(nil), s.v.b...)
}

// Signer returns the private key of an ed25519-private-key or
// ecdsa-p256-private-key credential. The signer prints as the mask and
// keeps the credential's value alive while it is held. It is as dangerous
// as Reveal: it signs anything it is given, so hand it only to the code
// that signs a request the allowlist says may be signed with it.
func (s Secret) Signer() (crypto.Signer, error) {
	if s.v == nil || s.v.signer == nil {
		return nil, &Error{Code: CodeWrongKind, Name: s.Name(), Detail: fmt.Sprintf("kind %q holds no private key", s.Kind())}
	}
	return s.v.signer, nil
}

func mask(name string) string {
	if name == "" {
		return "[secret]"
	}
	return "[secret." + name + "]"
}

// String returns the mask "[secret.NAME]", the form dry runs show.
func (s Secret) String() string { return mask(s.Name()) }

// GoString returns the mask, for %#v.
func (s Secret) GoString() string { return mask(s.Name()) }

// Format prints the mask for every verb, so %x or %d cannot reach the
// bytes either.
func (s Secret) Format(f fmt.State, _ rune) { io.WriteString(f, mask(s.Name())) }

// LogValue logs the mask.
func (s Secret) LogValue() slog.Value { return slog.StringValue(mask(s.Name())) }

// MarshalJSON encodes the mask as a JSON string.
func (s Secret) MarshalJSON() ([]byte, error) { return strconv.AppendQuote(nil, mask(s.Name())), nil }

// MarshalText encodes the mask.
func (s Secret) MarshalText() ([]byte, error) { return []byte(mask(s.Name())), nil }

// AppendText appends the mask.
func (s Secret) AppendText(b []byte) ([]byte, error) { return append(b, mask(s.Name())...), nil }

// keySigner is the crypto.Signer handed out by Signer: it forwards to the
// parsed key and prints as the mask (an ed25519.PrivateKey is a byte
// slice, which %v would print).
type keySigner struct {
	_ [0]func()
	v *value // keeps the value, and so the key's bytes, from being wiped
	k crypto.Signer
}

func (k *keySigner) Public() crypto.PublicKey { return k.k.Public() }

// Sign signs with the key. For ed25519 pass the message and
// crypto.Hash(0); for ECDSA P-256 the SHA-256 digest and crypto.SHA256.
func (k *keySigner) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return k.k.Sign(rand, digest, opts)
}

func (k *keySigner) String() string             { return mask(k.v.name) }
func (k *keySigner) GoString() string           { return mask(k.v.name) }
func (k *keySigner) Format(f fmt.State, _ rune) { io.WriteString(f, mask(k.v.name)) }
func (k *keySigner) LogValue() slog.Value       { return slog.StringValue(mask(k.v.name)) }
func (k *keySigner) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, mask(k.v.name)), nil
}
func (k *keySigner) MarshalText() ([]byte, error) { return []byte(mask(k.v.name)), nil }
