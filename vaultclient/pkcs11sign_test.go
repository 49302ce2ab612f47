//go:build cgo

package vaultclient

import (
	"context"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

type pkcs11NoteAdapter struct {
	ctx context.Context
	s   *PKCS11NoteSigner
}

func (a pkcs11NoteAdapter) Name() string                    { return a.s.Name() }
func (a pkcs11NoteAdapter) KeyHash() uint32                 { return a.s.KeyHash() }
func (a pkcs11NoteAdapter) Sign(msg []byte) ([]byte, error) { return a.s.Sign(a.ctx, msg) }

// An Ed25519 key pair made on SoftHSM2 signs notes that verify with the
// note package alone, next to the card backend on the same token.
func TestPKCS11NoteSigner(t *testing.T) {
	ctx := context.Background()
	cards, cfg := newTestPKCS11(t) // crypto11 initializes the module first
	const label, origin = "cardgate-checkpoint", "cardgate.test/audit/dev-1"
	if err := GeneratePKCS11NoteKey(ctx, cfg, label); err != nil {
		t.Fatalf("GeneratePKCS11NoteKey: %v", err)
	}
	if err := GeneratePKCS11NoteKey(ctx, cfg, label); err == nil {
		t.Error("GeneratePKCS11NoteKey over an existing label succeeded")
	}
	s, err := OpenPKCS11NoteSigner(ctx, cfg, origin, label)
	if err != nil {
		t.Fatalf("OpenPKCS11NoteSigner: %v", err)
	}
	text := origin + "\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
	msg, err := note.Sign(&note.Note{Text: text}, pkcs11NoteAdapter{ctx, s})
	if err != nil {
		t.Fatalf("note.Sign: %v", err)
	}
	v, err := note.NewVerifier(s.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	if n, err := note.Open(msg, note.VerifierList(v)); err != nil || n.Text != text {
		t.Fatalf("note.Open = %v, %v", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cards.Ping(ctx); err != nil {
		t.Errorf("the card backend after the signer closed: %v", err)
	}
	if _, err := OpenPKCS11NoteSigner(ctx, cfg, origin, "nothing"); err == nil || !strings.Contains(err.Error(), "no private key") {
		t.Errorf("OpenPKCS11NoteSigner(missing label) = %v", err)
	}
	// A card key (AES) is no signing key.
	if _, err := OpenPKCS11NoteSigner(ctx, cfg, origin, DefaultPKCS11KeyLabel+"-v1"); err == nil {
		t.Error("OpenPKCS11NoteSigner(an AES card key) succeeded")
	}
}
