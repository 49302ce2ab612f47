package vaultclient

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// TestDataKeys wraps and unwraps a data key with every key backend, and
// checks that a wrapped key opens only for its purpose and unaltered.
func TestDataKeys(t *testing.T) {
	ctx := context.Background()
	backends := []struct {
		name string
		new  func(t *testing.T) Keyer
	}{
		{"local", func(t *testing.T) Keyer { k, _ := newTestKeyring(t); return k }},
		{"pkcs11-softhsm2", func(t *testing.T) Keyer {
			if !PKCS11Available {
				t.Skip("built without cgo")
			}
			p, _ := newTestPKCS11(t)
			return p
		}},
		{"transit-standin", func(t *testing.T) Keyer { gw, _, _ := newTestTransit(t); return gw }},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			k := b.new(t)
			dk, err := NewDataKeys(k, "idempotency-answers", 0)
			if err != nil {
				t.Fatal(err)
			}
			key := bytes.Repeat([]byte{7}, DataKeySize)
			wrapped, err := dk.Wrap(ctx, key)
			if err != nil {
				t.Fatalf("Wrap: %v", err)
			}
			if bytes.Contains(wrapped, key) {
				t.Fatal("the wrapped key holds the key")
			}
			got, err := dk.Unwrap(ctx, wrapped)
			if err != nil || !bytes.Equal(got, key) {
				t.Fatalf("Unwrap = %x, %v; want the key", got, err)
			}
			other, _ := NewDataKeys(k, "another-purpose", 0)
			flipped := bytes.Clone(wrapped)
			flipped[len(flipped)-2] ^= 1
			for name, tc := range map[string]struct {
				dk *DataKeys
				w  []byte
			}{
				"other purpose": {other, wrapped},
				"altered blob":  {dk, flipped},
				"truncated":     {dk, wrapped[:len(dataKeyFormat)+3]},
				"not wrapped":   {dk, []byte("hello")},
			} {
				if _, err := tc.dk.Unwrap(ctx, tc.w); !permanent(err) {
					t.Errorf("Unwrap(%s) = %v, want a permanent DataKeyError", name, err)
				}
			}
		})
	}
}

func permanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

// TestDataKeysOutage: a backend failure is not permanent (a retry may
// open the key), and a purpose spelled like a card token is refused.
func TestDataKeysOutage(t *testing.T) {
	ctx := context.Background()
	k, _ := newTestKeyring(t)
	dk, _ := NewDataKeys(k, "idempotency-answers", 0)
	wrapped, err := dk.Wrap(ctx, make([]byte, DataKeySize))
	if err != nil {
		t.Fatal(err)
	}
	down, _ := NewDataKeys(faultyKeyer{Keyer: k, decryptErr: errors.New("connection refused")}, "idempotency-answers", 0)
	if _, err := down.Unwrap(ctx, wrapped); err == nil || permanent(err) {
		t.Errorf("Unwrap with the backend down = %v, want a non-permanent error", err)
	}
	if _, err := NewDataKeys(k, "tok_abcdefghijklmnopqrstuvwxyz234567", 0); err == nil {
		t.Error("NewDataKeys accepted a card token as its purpose")
	}
	if _, err := dk.Wrap(ctx, make([]byte, 16)); err == nil {
		t.Error("Wrap accepted a 16-byte key")
	}
}
