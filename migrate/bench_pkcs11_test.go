//go:build cgo

package migrate

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cardgate/cardgate/vaultclient"
)

// softhsmLibrary is where Debian installs SoftHSM2's module (as in
// vaultclient's PKCS#11 tests).
const softhsmLibrary = "/usr/lib/softhsm/libsofthsm2.so"

// BenchmarkImportSoftHSM2 is BenchmarkImport with the card keys in a
// SoftHSM2 token: every seal and fingerprint is a PKCS#11 call.
func BenchmarkImportSoftHSM2(b *testing.B) {
	for _, kind := range storeKinds {
		b.Run("softhsm2/"+kind, func(b *testing.B) {
			cfg := newSoftHSM(b)
			if _, err := vaultclient.InitPKCS11(context.Background(), cfg); err != nil {
				b.Fatalf("InitPKCS11: %v", err)
			}
			keys, err := vaultclient.OpenPKCS11(context.Background(), cfg)
			if err != nil {
				b.Fatalf("OpenPKCS11: %v", err)
			}
			b.Cleanup(func() { keys.Close() })
			benchImport(b, newEnvWith(b, kind, keys))
		})
	}
}

// newSoftHSM initialises a fresh token in a temporary directory, as
// vaultclient's tests do; a missing SoftHSM2 fails the benchmark.
func newSoftHSM(b *testing.B) vaultclient.PKCS11Config {
	b.Helper()
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		b.Fatalf("softhsm2-util not found: %v", err)
	}
	if _, err := os.Stat(softhsmLibrary); err != nil {
		b.Fatalf("SoftHSM2 module: %v", err)
	}
	dir := b.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		b.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	b.Setenv("SOFTHSM2_CONF", conf)
	if out, err := exec.Command(util, "--init-token", "--free", "--label", "cardgate-bench", "--so-pin", "87654321", "--pin", "1234").CombinedOutput(); err != nil {
		b.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	return vaultclient.PKCS11Config{Library: softhsmLibrary, TokenLabel: "cardgate-bench", PIN: "1234"}
}
