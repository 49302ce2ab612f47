//go:build !cgo

package vaultclient

import (
	"context"
	"errors"
)

// PKCS11Available reports whether this build has the PKCS#11 backend. This
// build was made with CGO_ENABLED=0, so it has not: the vendor's module is
// a C library. Rebuild with cgo (CGO_ENABLED=1 and a C compiler) to use an
// HSM; the local keyring and Vault Transit work in either build.
const PKCS11Available = false

var errPKCS11NoCgo = errors.New("vaultclient: pkcs11: this binary was built without cgo (CGO_ENABLED=0) and cannot load a PKCS#11 module; rebuild with CGO_ENABLED=1 or use the vault key backend")

// PKCS11 is the PKCS#11 HSM backend. In this build every method fails:
// see PKCS11Available.
type PKCS11 struct{}

// OpenPKCS11 fails: this build has no PKCS#11 support.
func OpenPKCS11(context.Context, PKCS11Config) (*PKCS11, error) { return nil, errPKCS11NoCgo }

// InitPKCS11 fails: this build has no PKCS#11 support.
func InitPKCS11(context.Context, PKCS11Config) ([]string, error) { return nil, errPKCS11NoCgo }

// Encrypt fails.
func (*PKCS11) Encrypt(context.Context, []EncryptItem) ([]Sealed, error) { return nil, errPKCS11NoCgo }

// Decrypt fails.
func (*PKCS11) Decrypt(context.Context, []DecryptItem) ([][]byte, error) { return nil, errPKCS11NoCgo }

// Rewrap fails.
func (*PKCS11) Rewrap(context.Context, []DecryptItem) ([]Sealed, error) { return nil, errPKCS11NoCgo }

// Fingerprint fails.
func (*PKCS11) Fingerprint(context.Context, []byte) ([]byte, KeyID, error) {
	return nil, KeyID{}, errPKCS11NoCgo
}

// Primary fails.
func (*PKCS11) Primary(context.Context) (KeyID, error) { return KeyID{}, errPKCS11NoCgo }

// Ping fails.
func (*PKCS11) Ping(context.Context) error { return errPKCS11NoCgo }

// Versions fails.
func (*PKCS11) Versions(context.Context) ([]uint32, error) { return nil, errPKCS11NoCgo }

// Rotate fails.
func (*PKCS11) Rotate(context.Context) (KeyID, error) { return KeyID{}, errPKCS11NoCgo }

// DestroyBelow fails.
func (*PKCS11) DestroyBelow(context.Context, uint32) ([]uint32, error) { return nil, errPKCS11NoCgo }

// Close does nothing.
func (*PKCS11) Close() error { return nil }
