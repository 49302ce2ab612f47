package migrate

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/cardgate/cardgate/vaultclient"
)

// BenchmarkImport measures import throughput, reported as cards/s: b.N
// cards from an age file, each validated, sealed by the key backend,
// stored, audited to a file and mapped. The SoftHSM2 variant is in
// bench_pkcs11_test.go.
func BenchmarkImport(b *testing.B) {
	for _, kind := range storeKinds {
		b.Run("keyring/"+kind, func(b *testing.B) {
			dir := b.TempDir()
			keyring := filepath.Join(dir, "keyring.json")
			if err := vaultclient.CreateLocalKeyring(keyring); err != nil {
				b.Fatal(err)
			}
			keys, err := vaultclient.OpenLocalKeyring(keyring)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { keys.Close() })
			benchImport(b, newEnvWith(b, kind, keys))
		})
	}
}

func benchImport(b *testing.B, e *env) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		b.Fatal(err)
	}
	path := encryptFile(b, id, &cardStream{n: b.N})
	in, err := OpenInput(path, id)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	key, err := TokenKey([]byte(id.String()), in.SHA256())
	if err != nil {
		b.Fatal(err)
	}
	m, err := OpenMapping(filepath.Join(b.TempDir(), "mapping.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	b.ResetTimer()
	start := time.Now()
	c, err := Import(context.Background(), in, ImportOptions{Vault: e.vault, Audit: e.audit, Mapping: m, TokenKey: key, RunID: "imp_bench", Caller: "bench"})
	elapsed := time.Since(start)
	b.StopTimer()
	if err != nil || c.Imported != b.N {
		b.Fatalf("import: %+v, %v", c, err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "cards/s")
}
