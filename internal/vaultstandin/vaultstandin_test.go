package vaultstandin

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
)

// client returns Vault's own API client pointed at s, with the CA.
func client(t *testing.T, s *Server) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = s.URL
	if err := cfg.ConfigureTLS(&api.TLSConfig{CACert: s.CAFile, TLSServerName: ServerName}); err != nil {
		t.Fatal(err)
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.ClearToken()
	return c
}

// TestKVAgainstVaultClient reads and writes through vault/api's KVv2
// helpers, which parse Vault's real answers: if they accept the
// stand-in's, its shapes are Vault's.
func TestKVAgainstVaultClient(t *testing.T) {
	s := New(t)
	s.EnableKV2("secret")
	ctx := context.Background()
	c := client(t, s)

	auth, err := approle.NewAppRoleAuth(s.RoleID, &approle.SecretID{FromFile: s.SecretIDFile(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Auth().Login(ctx, auth); err != nil {
		t.Fatalf("AppRole login = %v", err)
	}
	kv := c.KVv2("secret")
	if _, err := kv.Put(ctx, "acme", map[string]any{"api_key": "one"}); err != nil {
		t.Fatalf("Put = %v", err)
	}
	if _, err := kv.Put(ctx, "acme", map[string]any{"api_key": "two"}); err != nil {
		t.Fatalf("Put = %v", err)
	}
	got, err := kv.Get(ctx, "acme")
	if err != nil || got.Data["api_key"] != "two" || got.VersionMetadata.Version != 2 {
		t.Fatalf("Get = %+v, %v; want two at version 2", got, err)
	}
	old, err := kv.GetVersion(ctx, "acme", 1)
	if err != nil || old.Data["api_key"] != "one" || old.VersionMetadata.Version != 1 {
		t.Errorf("GetVersion(1) = %+v, %v", old, err)
	}
	if _, err := kv.Get(ctx, "missing"); !errors.Is(err, api.ErrSecretNotFound) {
		t.Errorf("Get(missing) = %v, want ErrSecretNotFound", err)
	}
	if err := kv.Delete(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	// vault/api reads a deleted version's 404 as the metadata it carries.
	deleted, err := kv.Get(ctx, "acme")
	if err != nil || deleted.Data != nil || deleted.VersionMetadata == nil || deleted.VersionMetadata.DeletionTime.IsZero() {
		t.Errorf("Get(deleted) = %+v, %v; want no data and a deletion time", deleted, err)
	}
	if err := kv.Destroy(ctx, "acme", []int{1}); err != nil {
		t.Fatal(err)
	}
	destroyed, err := kv.GetVersion(ctx, "acme", 1)
	if err != nil || destroyed.VersionMetadata == nil || !destroyed.VersionMetadata.Destroyed {
		t.Errorf("GetVersion(destroyed) = %+v, %v", destroyed, err)
	}

	c.SetToken("hvs.wrong")
	_, err = kv.Get(ctx, "acme")
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
		t.Errorf("Get with a wrong token = %v, want 403", err)
	}
}
