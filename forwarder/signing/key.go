package signing

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
)

// Key is the key material a Signer or Verifier uses: a shared secret
// (HMAC), a private key behind a crypto.Signer (ed25519, ECDSA P-256; an
// HSM key works), or, for a Verifier only, a public key. Build one with
// SecretKey, PrivateKey or PublicKey. Every way of printing a Key prints a
// mask, and Keys cannot be compared with ==.
type Key struct {
	_      [0]func() // not comparable: compare secrets in constant time or not at all
	secret []byte
	priv   crypto.Signer
	pub    crypto.PublicKey
}

// SecretKey returns a Key holding a copy of secret, so that the caller may
// wipe its own slice. How the bytes become the HMAC key is the Spec's
// SecretEncoding.
func SecretKey(secret []byte) Key { return Key{secret: bytes.Clone(secret)} }

// PrivateKey returns a Key that signs with s. s.Public() must be an
// ed25519.PublicKey or a P-256 *ecdsa.PublicKey.
func PrivateKey(s crypto.Signer) Key { return Key{priv: s} }

// PublicKey returns a Key for a Verifier: an ed25519.PublicKey or a P-256
// *ecdsa.PublicKey.
func PublicKey(p crypto.PublicKey) Key { return Key{pub: p} }

const keyMask = "signing.Key{[masked]}"

// String prints a mask.
func (Key) String() string { return keyMask }

// GoString prints a mask.
func (Key) GoString() string { return keyMask }

// Format prints a mask for every verb, so %x or %d never reach the bytes.
func (Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(keyMask)) }

// LogValue prints a mask.
func (Key) LogValue() slog.Value { return slog.StringValue(keyMask) }

// MarshalJSON prints a mask.
func (Key) MarshalJSON() ([]byte, error) { return []byte(`"[masked]"`), nil }

// macKey turns the secret into the HMAC key per the spec's encoding. The
// error never quotes the secret: a decoder's offset would say where the
// secret is wrong, which is already too much.
func macKey(k Key, encoding string) ([]byte, error) {
	if k.secret == nil {
		return nil, specErr("credential", "the algorithm needs a shared secret, and the credential is not one")
	}
	if len(k.secret) == 0 {
		return nil, specErr("credential", "the shared secret is empty")
	}
	var out []byte
	switch encoding {
	case "", "raw":
		out = bytes.Clone(k.secret)
	case "base64":
		// Files and environment variables often end the value with a
		// newline; it is never part of a base64 secret.
		s := string(bytes.TrimSpace(k.secret))
		var err error
		if out, err = base64.StdEncoding.DecodeString(s); err != nil {
			if out, err = base64.RawStdEncoding.DecodeString(s); err != nil {
				return nil, specErr("credential", "the shared secret is not valid base64, as secret_encoding says it is")
			}
		}
	case "hex":
		var err error
		if out, err = hex.DecodeString(string(bytes.TrimSpace(k.secret))); err != nil {
			return nil, specErr("credential", "the shared secret is not valid hex, as secret_encoding says it is")
		}
	default:
		return nil, specErr("secret_encoding", "must be raw, base64 or hex")
	}
	if len(out) == 0 {
		return nil, specErr("credential", "the shared secret decodes to nothing")
	}
	return out, nil
}

// publicOf returns the public key of k and checks it fits alg.
func publicOf(k Key, alg string) (crypto.PublicKey, error) {
	pub := k.pub
	if k.priv != nil {
		pub = k.priv.Public()
	}
	if pub == nil {
		return nil, specErr("credential", "the algorithm "+alg+" needs a private or public key, and the credential is not one")
	}
	switch alg {
	case AlgEd25519:
		if p, ok := pub.(ed25519.PublicKey); ok && len(p) == ed25519.PublicKeySize {
			return p, nil
		}
	case AlgECDSAP256SHA256:
		if p, ok := pub.(*ecdsa.PublicKey); ok && p.Curve == elliptic.P256() {
			return p, nil
		}
	}
	return nil, specErr("credential", "the key does not fit the algorithm "+alg)
}
