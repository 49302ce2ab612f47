package vaultclient

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestDetokenizeRetiredKey: a card sealed under a key version that was
// rotated away and retired fails with the typed key_retired error (which
// the API answers 410), never as an outage or an internal error, and its
// message names no card data.
func TestDetokenizeRetiredKey(t *testing.T) {
	ctx := context.Background()
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			store := sk.new(t)
			k1, path := newTestKeyring(t)
			tok, err := newTestVault(t, store, k1, Options{}).Tokenize(ctx, testCards[0].input())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := RotateLocalKeyring(path); err != nil {
				t.Fatal(err)
			}
			if _, err := RetireLocalKeyring(path, 2); err != nil {
				t.Fatal(err)
			}
			k2, err := OpenLocalKeyring(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { k2.Close() })
			v := newTestVault(t, store, k2, Options{})
			for name, detok := range map[string]func(context.Context, string) (*Card, error){
				"Detokenize": v.Detokenize, "DetokenizeConsumingCVC": v.DetokenizeConsumingCVC,
			} {
				_, err := detok(ctx, tok.Token)
				var e *Error
				if !errors.As(err, &e) || e.Code != CodeKeyRetired || !errors.Is(err, ErrKeyRetired) {
					t.Errorf("%s(token under a retired version) = %v, want a *Error %q wrapping ErrKeyRetired", name, err, CodeKeyRetired)
					continue
				}
				if strings.Contains(e.PublicMessage(), testCards[0].digits) || strings.Contains(err.Error(), testCards[0].digits) {
					t.Errorf("%s: the error names the card: %v", name, err)
				}
			}
		})
	}
}
