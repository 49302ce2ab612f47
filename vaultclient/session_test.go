package vaultclient

import (
	"context"
	"testing"
)

// TestVaultSession: a session logs in like Transit and its client reads
// other engines with the login's token; a Transit's session shares its
// login and does not end it.
func TestVaultSession(t *testing.T) {
	sv := newVaultStandIn(t)
	s, err := OpenVaultSession(context.Background(), sv.config(t))
	if err != nil {
		t.Fatalf("OpenVaultSession() = %v", err)
	}
	c := s.Client()
	if c.Token() == "" {
		t.Fatal("the session's client has no token after login")
	}
	if _, err := c.Auth().Token().LookupSelfWithContext(context.Background()); err != nil {
		t.Errorf("lookup-self with the session's token = %v", err)
	}
	if got := sv.count("auth/approle/login"); got != 1 {
		t.Errorf("%d AppRole logins, want 1", got)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}

	tr := openTestTransit(t, sv.config(t))
	shared := tr.Session()
	if shared.Client() != tr.client {
		t.Error("Transit.Session() does not share the Transit's client")
	}
	if err := shared.Close(); err != nil {
		t.Errorf("shared Close() = %v", err)
	}
	if err := tr.Ping(context.Background()); err != nil {
		t.Errorf("Transit after its session closed: Ping() = %v, want it still open", err)
	}
}

// TestVaultSessionRefusesHTTP: the session keeps Transit's rule that
// Vault is reached over https only.
func TestVaultSessionRefusesHTTP(t *testing.T) {
	cfg := TransitConfig{Address: "http://127.0.0.1:8200", Auth: TransitAuth{Method: TransitAuthToken, Token: "hvs.x"}}
	if _, err := OpenVaultSession(context.Background(), cfg); err == nil {
		t.Error("OpenVaultSession(http://) succeeded")
	}
}
