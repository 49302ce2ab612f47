//go:build !cgo

package vaultclient

import "testing"

// newTestPKCS11 skips: a CGO_ENABLED=0 build has no PKCS#11 backend. The
// README's test command builds with cgo and runs these tests against
// SoftHSM2.
func newTestPKCS11(t testing.TB) (*PKCS11, PKCS11Config) {
	t.Skip("built without cgo: the PKCS#11 backend is not in this build")
	return nil, PKCS11Config{}
}
