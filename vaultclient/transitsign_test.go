package vaultclient

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// noteSigner adapts a TransitNoteSigner to note.Signer for one call.
type noteSigner struct {
	ctx context.Context
	s   *TransitNoteSigner
}

func (n noteSigner) Name() string                    { return n.s.Name() }
func (n noteSigner) KeyHash() uint32                 { return n.s.KeyHash() }
func (n noteSigner) Sign(msg []byte) ([]byte, error) { return n.s.Sign(n.ctx, msg) }

// A note signed through Transit verifies with the note package alone,
// given only the verifier key; after the key is rotated, the pinned
// version still signs, and its signatures still verify.
func TestTransitNoteSignerVerifiesWithNote(t *testing.T) {
	ctx := context.Background()
	client, admin, _ := newTestTransit(t)
	if _, err := admin.call(ctx, http.MethodPost, "transit/keys/checkpoint", map[string]any{"type": "ed25519"}, false); err != nil {
		t.Fatal(err)
	}
	const origin = "cardgate.test/audit/dev-1"
	s, err := client.NoteSigner(ctx, origin, "checkpoint", 1)
	if err != nil {
		t.Fatalf("NoteSigner: %v", err)
	}
	text := origin + "\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
	check := func(t *testing.T) {
		msg, err := note.Sign(&note.Note{Text: text}, noteSigner{ctx, s})
		if err != nil {
			t.Fatalf("note.Sign: %v", err)
		}
		v, err := note.NewVerifier(s.VerifierKey())
		if err != nil {
			t.Fatalf("note.NewVerifier(%q): %v", s.VerifierKey(), err)
		}
		n, err := note.Open(msg, note.VerifierList(v))
		if err != nil || n.Text != text {
			t.Fatalf("note.Open = %v, %v; want the text, verified", n, err)
		}
		// A changed text fails.
		bad := []byte(strings.Replace(string(msg), "\n3\n", "\n4\n", 1))
		if _, err := note.Open(bad, note.VerifierList(v)); err == nil {
			t.Fatal("note.Open accepted a changed size")
		}
	}
	t.Run("v1", check)
	if _, err := admin.call(ctx, http.MethodPost, "transit/keys/checkpoint/rotate", map[string]any{}, false); err != nil {
		t.Fatal(err)
	}
	t.Run("v1 after rotation", check)
	s2, err := client.NoteSigner(ctx, origin, "checkpoint", 2)
	if err != nil {
		t.Fatal(err)
	}
	if s2.VerifierKey() == s.VerifierKey() {
		t.Error("versions 1 and 2 have the same verifier key")
	}
}

func TestTransitNoteSignerRefuses(t *testing.T) {
	ctx := context.Background()
	client, admin, _ := newTestTransit(t)
	if _, err := admin.call(ctx, http.MethodPost, "transit/keys/checkpoint", map[string]any{"type": "ed25519"}, false); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, key string
		version   int
		want      string
	}{
		{"aes key", DefaultTransitKey, 1, "type ed25519"},
		{"missing version", "checkpoint", 2, "no version 2"},
		{"version 0", "checkpoint", 0, "at least 1"},
		{"missing key", "nothing", 1, "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.NoteSigner(ctx, "cardgate.test/audit", tc.key, tc.version)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NoteSigner(%s, %d) = %v, want an error naming %q", tc.key, tc.version, err, tc.want)
			}
		})
	}
}
