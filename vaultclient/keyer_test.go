package vaultclient

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// testKeyer is the contract every Keyer passes: the local keyring, the
// PKCS#11 backend on SoftHSM2 and the Transit backend on the Vault
// stand-in. rotate makes a new primary version on the backend behind k
// and returns a Keyer that sees it (k itself, or k reopened).
func testKeyer(t *testing.T, k Keyer, rotate func(t *testing.T) Keyer) {
	ctx := context.Background()
	card := Binding{Token: "tok_abcdefghijklmnopqrstuvwxyz234567", Field: FieldCard}
	cvc := Binding{Token: card.Token, Field: FieldCVC}
	pt1, pt2 := []byte("4242424242424242|12|2030"), []byte("123")

	primary := mustPrimary(t, k)
	sealed, err := k.Encrypt(ctx, []EncryptItem{{Binding: card, Plaintext: pt1}, {Binding: cvc, Plaintext: pt2}})
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	if len(sealed) != 2 {
		t.Fatalf("Encrypt returned %d blobs for 2 items", len(sealed))
	}
	for i, s := range sealed {
		if s.Key != primary {
			t.Errorf("Encrypt item %d key = %+v, want the primary %+v", i, s.Key, primary)
		}
		if bytes.Contains(s.Blob, pt1) || bytes.Contains(s.Blob, pt2) {
			t.Errorf("Encrypt item %d blob holds the plaintext", i)
		}
	}
	again, err := k.Encrypt(ctx, []EncryptItem{{Binding: card, Plaintext: pt1}})
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	if bytes.Equal(again[0].Blob, sealed[0].Blob) {
		t.Error("one plaintext sealed twice gave one blob; nonces must be fresh")
	}

	items := []DecryptItem{{Binding: card, Sealed: sealed[0]}, {Binding: cvc, Sealed: sealed[1]}}
	pts, err := k.Decrypt(ctx, items)
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if len(pts) != 2 || !bytes.Equal(pts[0], pt1) || !bytes.Equal(pts[1], pt2) {
		t.Fatalf("Decrypt did not return the plaintexts sealed")
	}

	t.Run("wrong binding", func(t *testing.T) {
		for _, b := range []Binding{
			{Token: card.Token, Field: FieldCVC},
			{Token: "tok_bbcdefghijklmnopqrstuvwxyz234567", Field: FieldCard},
		} {
			_, err := k.Decrypt(ctx, []DecryptItem{{Binding: b, Sealed: sealed[0]}})
			if !errors.Is(err, ErrIntegrity) {
				t.Errorf("Decrypt(binding %+v) = %v, want ErrIntegrity", b, err)
			}
		}
	})
	t.Run("one bad item fails the batch", func(t *testing.T) {
		_, err := k.Decrypt(ctx, []DecryptItem{items[0], {Binding: card, Sealed: sealed[1]}})
		if !errors.Is(err, ErrIntegrity) {
			t.Errorf("Decrypt(good, moved) = %v, want ErrIntegrity", err)
		}
	})
	t.Run("tampered", func(t *testing.T) {
		for _, i := range []int{0, len(sealed[0].Blob) / 2, len(sealed[0].Blob) - 1} {
			blob := bytes.Clone(sealed[0].Blob)
			blob[i] ^= 0x01
			_, err := k.Decrypt(ctx, []DecryptItem{{Binding: card, Sealed: Sealed{Key: sealed[0].Key, Blob: blob}}})
			if !errors.Is(err, ErrIntegrity) {
				t.Errorf("Decrypt(byte %d flipped) = %v, want ErrIntegrity", i, err)
			}
		}
		_, err := k.Decrypt(ctx, []DecryptItem{{Binding: card, Sealed: Sealed{Key: sealed[0].Key, Blob: sealed[0].Blob[:10]}}})
		if !errors.Is(err, ErrIntegrity) {
			t.Errorf("Decrypt(truncated) = %v, want ErrIntegrity", err)
		}
	})
	t.Run("unknown version", func(t *testing.T) {
		id := sealed[0].Key
		id.Version = 999
		_, err := k.Decrypt(ctx, []DecryptItem{{Binding: card, Sealed: Sealed{Key: id, Blob: sealed[0].Blob}}})
		if !errors.Is(err, ErrKeyRetired) && !errors.Is(err, ErrIntegrity) {
			t.Errorf("Decrypt(version 999) = %v, want ErrKeyRetired or ErrIntegrity", err)
		}
		id = sealed[0].Key
		id.Name = "another-key"
		_, err = k.Decrypt(ctx, []DecryptItem{{Binding: card, Sealed: Sealed{Key: id, Blob: sealed[0].Blob}}})
		if !errors.Is(err, ErrKeyRetired) {
			t.Errorf("Decrypt(key another-key) = %v, want ErrKeyRetired", err)
		}
	})
	t.Run("fingerprint", func(t *testing.T) {
		a, ida, err := k.Fingerprint(ctx, []byte("4242424242424242"))
		if err != nil {
			t.Fatalf("Fingerprint: %v", err)
		}
		b, idb, _ := k.Fingerprint(ctx, []byte("4242424242424242"))
		c, _, _ := k.Fingerprint(ctx, []byte("4111111111111111"))
		if len(a) != 32 || !bytes.Equal(a, b) || ida != idb {
			t.Errorf("Fingerprint is not a stable 32-byte MAC")
		}
		if bytes.Equal(a, c) {
			t.Error("two numbers got one fingerprint")
		}
		if ida.Name == primary.Name {
			t.Errorf("fingerprint key %q is the card key; they must be separate", ida.Name)
		}
	})
	if err := k.Ping(ctx); err != nil {
		t.Errorf("Ping = %v", err)
	}

	if rotate == nil {
		return
	}
	t.Run("rotate and rewrap", func(t *testing.T) {
		k2 := rotate(t)
		p2 := mustPrimary(t, k2)
		if p2.Version <= primary.Version || p2.Name != primary.Name || p2.Backend != primary.Backend {
			t.Fatalf("primary after rotate = %+v, want a higher version of %+v", p2, primary)
		}
		// The old version still opens.
		if _, err := k2.Decrypt(ctx, items); err != nil {
			t.Fatalf("Decrypt(old version) after rotate = %v", err)
		}
		re, err := k2.Rewrap(ctx, items)
		if err != nil {
			t.Fatalf("Rewrap: %v", err)
		}
		if len(re) != 2 || re[0].Key != p2 || re[1].Key != p2 {
			t.Fatalf("Rewrap keys = %+v, want two blobs under %+v", re, p2)
		}
		pts, err := k2.Decrypt(ctx, []DecryptItem{{Binding: card, Sealed: re[0]}, {Binding: cvc, Sealed: re[1]}})
		if err != nil || !bytes.Equal(pts[0], pt1) || !bytes.Equal(pts[1], pt2) {
			t.Fatalf("Decrypt(rewrapped) = %v, or the plaintexts changed", err)
		}
		// Rewrap keeps the binding: a rewrapped blob moved elsewhere fails.
		if _, err := k2.Decrypt(ctx, []DecryptItem{{Binding: cvc, Sealed: re[0]}}); !errors.Is(err, ErrIntegrity) {
			t.Errorf("Decrypt(rewrapped blob under another binding) = %v, want ErrIntegrity", err)
		}
		if _, err := k2.Rewrap(ctx, []DecryptItem{{Binding: cvc, Sealed: sealed[0]}}); !errors.Is(err, ErrIntegrity) {
			t.Errorf("Rewrap(blob under another binding) = %v, want ErrIntegrity", err)
		}
	})
}

func TestLocalKeyringContract(t *testing.T) {
	k, path := newTestKeyring(t)
	testKeyer(t, k, func(t *testing.T) Keyer {
		if _, err := RotateLocalKeyring(path); err != nil {
			t.Fatalf("RotateLocalKeyring: %v", err)
		}
		k2, err := OpenLocalKeyring(path)
		if err != nil {
			t.Fatalf("OpenLocalKeyring after rotate: %v", err)
		}
		t.Cleanup(func() { k2.Close() })
		return k2
	})
}
