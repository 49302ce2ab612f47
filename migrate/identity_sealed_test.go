package migrate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardgate/cardgate/vaultclient"
)

func newDataKeys(t *testing.T) *vaultclient.DataKeys {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keyring.json")
	if err := vaultclient.CreateLocalKeyring(path); err != nil {
		t.Fatal(err)
	}
	k, err := vaultclient.OpenLocalKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	dk, err := vaultclient.NewDataKeys(k, IdentityPurpose, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return dk
}

// TestSealedIdentity: a sealed identity opens with the key backend that
// sealed it, and with nothing else; the file never holds the identity in
// clear.
func TestSealedIdentity(t *testing.T) {
	ctx := context.Background()
	kw := newDataKeys(t)
	file, recipient, err := NewSealedIdentity(ctx, kw)
	if err != nil {
		t.Fatalf("NewSealedIdentity: %v", err)
	}
	if strings.Contains(string(file), "AGE-SECRET-KEY") {
		t.Fatal("the sealed file holds the identity in clear")
	}
	write := func(b []byte, mode os.FileMode) string {
		p := filepath.Join(t.TempDir(), "import.key")
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	path := write(file, 0o600)
	if sealed, err := IsSealedIdentity(ctx, path); err != nil || !sealed {
		t.Errorf("IsSealedIdentity = %v, %v; want true", sealed, err)
	}
	id, err := OpenSealedIdentity(ctx, path, kw)
	if err != nil {
		t.Fatalf("OpenSealedIdentity: %v", err)
	}
	if id.Recipient().String() != recipient {
		t.Errorf("opened identity's recipient = %s, want %s", id.Recipient(), recipient)
	}

	tampered := []byte(strings.Replace(string(file), sealedIdentityTag+" ", sealedIdentityTag+" A", 1))
	flipped := []byte(string(file[:len(file)-4]) + "AAA\n")
	tests := []struct {
		name string
		path string
		kw   KeyWrapper
		want string
	}{
		{"another key backend", path, newDataKeys(t), "does not open"},
		{"wrapped key altered", write(tampered, 0o600), kw, "sealed identity"},
		{"ciphertext altered", write(flipped, 0o600), kw, "damaged"},
		{"group writable", write(file, 0o620), kw, "chmod 600"},
		{"an age-keygen file", write([]byte(id.String()+"\n"), 0o600), kw, "not a sealed identity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := OpenSealedIdentity(ctx, tt.path, tt.kw)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("OpenSealedIdentity = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	plain := write([]byte(id.String()+"\n"), 0o600)
	if sealed, err := IsSealedIdentity(ctx, plain); err != nil || sealed {
		t.Errorf("IsSealedIdentity(age-keygen file) = %v, %v; want false", sealed, err)
	}
}
