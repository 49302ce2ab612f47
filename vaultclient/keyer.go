package vaultclient

import (
	"context"
	"encoding/binary"
)

// Keyer is a key backend: it seals and opens card data and computes the
// lookup fingerprint. Implementations: LocalKeyring (development), PKCS11
// (an HSM) and Transit (HashiCorp Vault or OpenBao); with the last two the
// key-encryption key never enters this process.
//
// Errors: wrap ErrIntegrity when a blob does not authenticate and
// ErrKeyRetired when its key version is not held or is retired; any other
// error means the backend is unavailable. Errors must never contain
// plaintext, keys or ciphertext.
type Keyer interface {
	// Encrypt seals each item under the current primary key version, bound
	// to its Binding, in one round trip to the backend. It returns one
	// Sealed per item, in order, or an error and nothing.
	Encrypt(ctx context.Context, items []EncryptItem) ([]Sealed, error)
	// Decrypt opens each item, in one round trip. It fails as a whole if
	// any item fails. The caller zeroes the plaintexts after use.
	Decrypt(ctx context.Context, items []DecryptItem) ([][]byte, error)
	// Fingerprint returns a keyed MAC of the card number, made with a key
	// kept apart from the encryption keys, and which key made it.
	Fingerprint(ctx context.Context, pan []byte) (mac []byte, key KeyID, err error)
	// Rewrap seals each item again under the current primary version, in
	// one round trip where the backend has a batch call, and returns one
	// Sealed per item, in order, or an error and nothing. With Vault
	// Transit the plaintext never leaves Vault.
	Rewrap(ctx context.Context, items []DecryptItem) ([]Sealed, error)
	// Primary returns the key version that Encrypt uses now.
	Primary(ctx context.Context) (KeyID, error)
	// Ping checks that the backend can serve requests.
	Ping(ctx context.Context) error
	// Close releases the backend. Later calls fail.
	Close() error
}

// KeyID names the key that sealed a blob. It is stored in the record in
// clear: it drives decryption and, with issue 4, rotation queries.
type KeyID struct {
	Backend string `json:"backend"` // "local", "pkcs11", "transit"
	Name    string `json:"name"`    // key name within the backend
	Version uint32 `json:"version"` // 1, 2, …
}

// Sealed is a blob sealed by a Keyer. Blob is backend-native and is stored
// verbatim: nonce ‖ ciphertext ‖ tag for the local keyring and PKCS#11, the
// "vault:vN:…" string for Vault Transit.
type Sealed struct {
	Key  KeyID
	Blob []byte
}

// EncryptItem is one plaintext to seal. The Keyer does not keep Plaintext.
type EncryptItem struct {
	Binding   Binding
	Plaintext []byte
}

// DecryptItem is one blob to open.
type DecryptItem struct {
	Binding Binding
	Sealed  Sealed
}

// Binding is what a ciphertext is bound to: the token and the record field.
// It is derived from where the record is read, never stored, so a blob
// moved to another token or field fails to open. Backends pass Bytes() as
// the AES-GCM additional data (local keyring, PKCS#11) or as the derived-key
// context (Vault Transit, whose rewrap ignores additional data).
type Binding struct {
	Token string
	Field string // FieldCard or FieldCVC
}

// Record fields that a Binding names.
const (
	FieldCard = "card"
	FieldCVC  = "cvc"
)

// bindingDomain separates these bytes from anything else the same keys
// might ever authenticate. Bump the version only with a new record format.
const bindingDomain = "cardgate-card/v1"

// Bytes returns the canonical binding: each of domain, token and field as a
// 4-byte big-endian length and the bytes. Length prefixes make the encoding
// injective: no two different bindings give the same bytes.
func (b Binding) Bytes() []byte {
	out := make([]byte, 0, 12+len(bindingDomain)+len(b.Token)+len(b.Field))
	for _, s := range [...]string{bindingDomain, b.Token, b.Field} {
		out = binary.BigEndian.AppendUint32(out, uint32(len(s)))
		out = append(out, s...)
	}
	return out
}
