//go:build !cgo

package vaultclient

import "context"

// PKCS11NoteSigner is the PKCS#11 note signer. In this build every method
// fails: see PKCS11Available.
type PKCS11NoteSigner struct{}

// OpenPKCS11NoteSigner fails: this build has no PKCS#11 support.
func OpenPKCS11NoteSigner(context.Context, PKCS11Config, string, string) (*PKCS11NoteSigner, error) {
	return nil, errPKCS11NoCgo
}

// GeneratePKCS11NoteKey fails: this build has no PKCS#11 support.
func GeneratePKCS11NoteKey(context.Context, PKCS11Config, string) error { return errPKCS11NoCgo }

// Name is empty.
func (*PKCS11NoteSigner) Name() string { return "" }

// KeyHash is 0.
func (*PKCS11NoteSigner) KeyHash() uint32 { return 0 }

// VerifierKey is empty.
func (*PKCS11NoteSigner) VerifierKey() string { return "" }

// Sign fails.
func (*PKCS11NoteSigner) Sign(context.Context, []byte) ([]byte, error) { return nil, errPKCS11NoCgo }

// Close does nothing.
func (*PKCS11NoteSigner) Close() error { return nil }
