package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardgate/cardgate/api"
	"github.com/cardgate/cardgate/config"
	"github.com/cardgate/cardgate/vaultclient"
)

// TestCallerPermissions: the defaults without a callers section, and
// exactly what the section lists with one.
func TestCallerPermissions(t *testing.T) {
	all := []api.CardOp{api.OpTokenize, api.OpRead, api.OpUpdate, api.OpDelete}
	listed := []config.Caller{
		{Caller: "spiffe://example.org/checkout", Allow: []string{config.OpTokenize}},
		{Caller: "spiffe://example.org/updater", Allow: []string{config.OpRead, config.OpUpdate}},
		{Caller: config.AnyCaller, Allow: []string{config.OpRead}},
	}
	tests := []struct {
		name    string
		mode    string
		callers []config.Caller
		caller  string
		want    []api.CardOp
	}{
		{"dev without section", config.ModeDev, nil, "dev:anyone", all},
		{"production without section", config.ModeProduction, nil, "spiffe://example.org/x", []api.CardOp{api.OpTokenize}},
		{"empty section", config.ModeDev, []config.Caller{}, "dev:anyone", nil},
		{"listed collector", config.ModeProduction, listed, "spiffe://example.org/checkout", []api.CardOp{api.OpTokenize, api.OpRead}},
		{"listed updater", config.ModeProduction, listed, "spiffe://example.org/updater", []api.CardOp{api.OpRead, api.OpUpdate}},
		{"unlisted caller gets the * entry", config.ModeProduction, listed, "spiffe://example.org/other", []api.CardOp{api.OpRead}},
		{"empty identity", config.ModeDev, nil, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Mode, cfg.Callers = tt.mode, tt.callers
			p := newCallerPermissions(cfg)
			for _, op := range all {
				want := false
				for _, w := range tt.want {
					want = want || w == op
				}
				if got := p.Permitted(context.Background(), tt.caller, op); got != want {
					t.Errorf("Permitted(%q, %s) = %v, want %v", tt.caller, op, got, want)
				}
			}
		})
	}
}

// TestCardsStatus: `cardgate cards status` counts a bolt store's cards by
// last use, without a key backend.
func TestCardsStatus(t *testing.T) {
	dir := t.TempDir()
	keyring := filepath.Join(dir, "keyring.json")
	if err := vaultclient.CreateLocalKeyring(keyring); err != nil {
		t.Fatal(err)
	}
	keys, err := vaultclient.OpenLocalKeyring(keyring)
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	dbPath := filepath.Join(dir, "cards.db")
	store, err := vaultclient.OpenBoltStore(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vaultclient.New(store, keys, vaultclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"4242424242424242", "5555555555554444"} {
		if _, err := v.Tokenize(context.Background(), vaultclient.CardInput{Number: n, ExpMonth: 12, ExpYear: time.Now().Year() + 2}); err != nil {
			t.Fatal(err)
		}
	}
	store.Close()
	cfgPath := filepath.Join(dir, "cardgate.yaml")
	cfgText := "mode: dev\nenvironment: test\nallowlist:\n  path: a\n  signatures_dir: s\n  allowed_signers: as\n  state_file: st\n" +
		"store:\n  backend: bolt\n  bolt:\n    path: " + dbPath + "\nkeys:\n  backend: local\n  local:\n    path: " + keyring + "\ncards:\n  retention: 8760h\n"
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"cards", "status", "-config", cfgPath}, &stdout, &stderr); err != nil {
		t.Fatalf("cards status: %v\n%s", err, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"0 to 1d ago       2\n", "1d to 7d ago      0\n", "total             2\n", "365d expire"} {
		if !strings.Contains(out, want) {
			t.Errorf("cards status output lacks %q:\n%s", want, out)
		}
	}
}

func TestCardRoute(t *testing.T) {
	tok := "tok_" + strings.Repeat("a", 32)
	for path, want := range map[string]string{
		"/v1/cards/" + tok:                cardTokenRoute,
		"/v1/cards/" + tok + "/cvc":       cardCVCRoute,
		"/v1/cards/" + tok + "/other":     "",
		"/v1/cards/4242424242424242":      "",
		"/v1/cards/4242424242424242/cvc":  "",
		"/v1/cards/":                      "",
		"/v1/forward":                     "",
		"/v1/cards/" + tok + "/cvc/extra": "",
	} {
		if got := cardRoute(path); got != want {
			t.Errorf("cardRoute(%q) = %q, want %q", path, got, want)
		}
	}
}
