package vaultclient

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestDeriveToken(t *testing.T) {
	key := bytes.Repeat([]byte{7}, MinTokenKeyLen)
	a, err := DeriveToken(key, []byte("line 1"))
	if err != nil {
		t.Fatalf("DeriveToken: %v", err)
	}
	if !ValidToken(a) {
		t.Errorf("DeriveToken = %q, not a valid token", a)
	}
	again, _ := DeriveToken(key, []byte("line 1"))
	if again != a {
		t.Errorf("DeriveToken twice = %q, %q, want the same token", a, again)
	}
	other, _ := DeriveToken(key, []byte("line 2"))
	otherKey, _ := DeriveToken(bytes.Repeat([]byte{8}, MinTokenKeyLen), []byte("line 1"))
	if other == a || otherKey == a {
		t.Errorf("DeriveToken gave %q for another name or key, want a new token", a)
	}
	if _, err := DeriveToken(key[:MinTokenKeyLen-1], []byte("line 1")); err == nil {
		t.Error("DeriveToken with a 31-byte key succeeded, want an error")
	}
}

// TestTokenizeAsNeverOverwrites: a second TokenizeAs under one token
// writes nothing, says ErrExists, and is not logged as a collision (a
// resumed import meets it by design); the first card stays readable.
func TestTokenizeAsNeverOverwrites(t *testing.T) {
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			keys, _ := newTestKeyring(t)
			var logs bytes.Buffer
			v := newTestVault(t, sk.new(t), keys, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			ctx := context.Background()
			token, err := DeriveToken(bytes.Repeat([]byte{1}, 32), []byte("x"))
			if err != nil {
				t.Fatal(err)
			}
			info, err := v.TokenizeAs(ctx, token, testCards[0].input())
			if err != nil {
				t.Fatalf("TokenizeAs: %v", err)
			}
			if info.Token != token {
				t.Errorf("TokenizeAs token = %q, want %q", info.Token, token)
			}
			_, err = v.TokenizeAs(ctx, token, testCards[2].input())
			if !errors.Is(err, ErrExists) {
				t.Fatalf("second TokenizeAs = %v, want ErrExists", err)
			}
			card, err := v.Detokenize(ctx, token)
			if err != nil {
				t.Fatalf("Detokenize: %v", err)
			}
			if card.Number.Reveal() != testCards[0].digits {
				t.Errorf("Detokenize number = %s, want the first card's", card.Number)
			}
			if strings.Contains(logs.String(), "collision") {
				t.Errorf("log = %q, want no collision logged", logs.String())
			}
			if _, err := v.TokenizeAs(ctx, "tok_short", testCards[0].input()); code(err) != CodeInternal {
				t.Errorf("TokenizeAs(malformed token) code = %q, want %q", code(err), CodeInternal)
			}
		})
	}
}
