package migrate

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cardgate/cardgate/vaultclient"
)

// TestImportAgainAfterDelete: a card deleted after its import (DELETE
// /v1/cards/{token}) is not brought back by importing the same file with
// the same identity and a fresh mapping file: the line counts as
// deleted_before, is not mapped, and the token still answers like one
// that never existed. The other cards are recovered as before.
func TestImportAgainAfterDelete(t *testing.T) {
	ctx := context.Background()
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			id := newIdentity(t)
			path := encryptFile(t, id, strings.NewReader(cardLines(testCards)))
			first := filepath.Join(t.TempDir(), "mapping.jsonl")
			if _, err := e.importFile(t, id, path, first, nil, &bytes.Buffer{}); err != nil {
				t.Fatalf("first import: %v", err)
			}
			m := readMapping(t, first)
			if len(m) != len(testCards) {
				t.Fatalf("first mapping holds %d lines, want %d", len(m), len(testCards))
			}
			gone := m[1].Token
			if err := e.vault.Delete(ctx, gone); err != nil {
				t.Fatalf("Delete: %v", err)
			}

			again := filepath.Join(t.TempDir(), "mapping.jsonl")
			c, err := e.importFile(t, id, path, again, nil, &bytes.Buffer{})
			if err != nil {
				t.Fatalf("second import: %v", err)
			}
			want := Counts{Lines: len(testCards), Recovered: len(testCards) - 1, DeletedBefore: 1}
			if diff := cmp.Diff(want, c, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("second import counts (-want +got):\n%s", diff)
			}
			var mapped []string
			for _, ml := range readMapping(t, again) {
				mapped = append(mapped, ml.Token)
			}
			var wantMapped []string
			for i, ml := range m {
				if i != 1 {
					wantMapped = append(wantMapped, ml.Token)
				}
			}
			if diff := cmp.Diff(wantMapped, mapped); diff != "" {
				t.Errorf("second mapping tokens (-want +got):\n%s", diff)
			}
			if n := len(e.tokens(t)); n != len(testCards)-1 {
				t.Errorf("store holds %d records, want %d: the deleted card came back", n, len(testCards)-1)
			}

			never, err := vaultclient.DeriveToken(bytes.Repeat([]byte{9}, vaultclient.MinTokenKeyLen), []byte("line 1"))
			if err != nil {
				t.Fatal(err)
			}
			_, goneErr := e.vault.Metadata(ctx, gone)
			_, neverErr := e.vault.Metadata(ctx, never)
			var ge, ne *vaultclient.Error
			if !errors.As(goneErr, &ge) || !errors.As(neverErr, &ne) ||
				ge.Code != vaultclient.CodeTokenNotFound || ge.Code != ne.Code || ge.PublicMessage() != ne.PublicMessage() {
				t.Errorf("Metadata(deleted) = %v, want the answer for a token never used: %v", goneErr, neverErr)
			}
		})
	}
}
