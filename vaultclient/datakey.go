package vaultclient

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// FieldDataKey is the Binding field of a data key: a key that another
// package seals its own data under, wrapped by the key backend (envelope
// encryption). Its Binding's Token names the purpose, which is never a
// card token, so a wrapped data key and a card record can never be taken
// for each other.
const FieldDataKey = "data-key"

// DataKeySize is the size of the data keys DataKeys wraps: AES-256.
const DataKeySize = 32

// dataKeyFormat starts every wrapped data key; bump it only with a new
// layout.
const dataKeyFormat = "cgdk1"

// maxWrappedDataKey bounds what Unwrap parses: a Transit ciphertext of 32
// bytes is under 100 characters, a local or PKCS#11 blob 60 bytes.
const maxWrappedDataKey = 1024

// DataKeys wraps and unwraps data keys with a Keyer, bound to one
// purpose. With the HSM or Vault Transit backends the key-encryption key
// never enters this process; the data key does, by design, and the caller
// keeps it in memory only.
type DataKeys struct {
	keys    Keyer
	binding Binding
	timeout time.Duration
}

// NewDataKeys returns DataKeys for purpose (for example
// "idempotency-answers"), which must not be spelled like a card token.
// Each backend call is bounded by timeout (0 means 2s).
func NewDataKeys(k Keyer, purpose string, timeout time.Duration) (*DataKeys, error) {
	if k == nil {
		return nil, errors.New("vaultclient: data keys: no key backend")
	}
	if purpose == "" || ValidToken(purpose) {
		return nil, errors.New("vaultclient: data keys: the purpose must be set and must not be a card token")
	}
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	return &DataKeys{keys: k, binding: Binding{Token: purpose, Field: FieldDataKey}, timeout: timeout}, nil
}

// DataKeyError is what Unwrap returns when a wrapped key can never be
// opened: it is malformed, does not authenticate (ErrIntegrity) or names a
// key version the backend no longer holds (ErrKeyRetired). Any other
// Unwrap error means the backend is unavailable, and a retry may succeed.
type DataKeyError struct{ Err error }

func (e *DataKeyError) Error() string {
	return "vaultclient: data key cannot be unwrapped: " + e.Err.Error()
}
func (e *DataKeyError) Unwrap() error { return e.Err }

// Permanent reports that retrying will not help.
func (e *DataKeyError) Permanent() bool { return true }

// Wrap seals key (DataKeySize bytes) under the backend's primary key
// version and returns the wrapped key: the format tag, the KeyID and the
// backend's blob, to store next to what key seals.
func (d *DataKeys) Wrap(ctx context.Context, key []byte) ([]byte, error) {
	if len(key) != DataKeySize {
		return nil, fmt.Errorf("vaultclient: data key is %d bytes, want %d", len(key), DataKeySize)
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	sealed, err := d.keys.Encrypt(ctx, []EncryptItem{{Binding: d.binding, Plaintext: key}})
	if err != nil {
		return nil, fmt.Errorf("vaultclient: wrap data key: %w", err)
	}
	s := sealed[0]
	if len(s.Key.Backend) > 255 || len(s.Key.Name) > 255 {
		return nil, errors.New("vaultclient: wrap data key: key name too long")
	}
	out := append([]byte(dataKeyFormat), byte(len(s.Key.Backend)))
	out = append(out, s.Key.Backend...)
	out = append(out, byte(len(s.Key.Name)))
	out = append(out, s.Key.Name...)
	out = binary.BigEndian.AppendUint32(out, s.Key.Version)
	out = append(out, s.Blob...)
	if len(out) > maxWrappedDataKey {
		return nil, errors.New("vaultclient: wrap data key: wrapped key too long")
	}
	return out, nil
}

// Unwrap opens a key that Wrap returned, with the same purpose. The
// caller zeroes the key when it is done with it.
func (d *DataKeys) Unwrap(ctx context.Context, wrapped []byte) ([]byte, error) {
	s, ok := parseWrappedDataKey(wrapped)
	if !ok {
		return nil, &DataKeyError{Err: fmt.Errorf("malformed wrapped key: %w", ErrIntegrity)}
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	pts, err := d.keys.Decrypt(ctx, []DecryptItem{{Binding: d.binding, Sealed: s}})
	switch {
	case errors.Is(err, ErrIntegrity), errors.Is(err, ErrKeyRetired):
		return nil, &DataKeyError{Err: err}
	case err != nil:
		return nil, fmt.Errorf("vaultclient: unwrap data key: %w", err)
	}
	if len(pts[0]) != DataKeySize {
		clear(pts[0])
		return nil, &DataKeyError{Err: fmt.Errorf("unwrapped key has the wrong size: %w", ErrIntegrity)}
	}
	return pts[0], nil
}

// parseWrappedDataKey splits Wrap's output into the KeyID and the blob.
func parseWrappedDataKey(b []byte) (Sealed, bool) {
	if len(b) > maxWrappedDataKey || len(b) < len(dataKeyFormat) || string(b[:len(dataKeyFormat)]) != dataKeyFormat {
		return Sealed{}, false
	}
	b = b[len(dataKeyFormat):]
	var id KeyID
	for _, dst := range []*string{&id.Backend, &id.Name} {
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return Sealed{}, false
		}
		*dst, b = string(b[1:1+int(b[0])]), b[1+int(b[0]):]
	}
	if len(b) < 4 {
		return Sealed{}, false
	}
	id.Version, b = binary.BigEndian.Uint32(b), b[4:]
	if len(b) == 0 {
		return Sealed{}, false
	}
	return Sealed{Key: id, Blob: b}, true
}
