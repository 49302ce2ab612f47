package vaultclient

import (
	"context"

	"github.com/hashicorp/vault/api"
)

// VaultSession is a logged-in HashiCorp Vault (or OpenBao) API client for
// secrets engines other than Transit: the gateway reads processor
// credentials from KV version 2 through it. It is Transit's connection,
// login and renewal, not a copy of them: https only with verification
// never off, no proxy, the process environment's VAULT_* variables
// ignored, the same auth methods (AppRole, cert, token), token renewal
// and re-login, per-request Timeout, and retries of idempotent calls
// after connection errors and 5xx answers.
type VaultSession struct {
	t     *Transit
	owned bool // Close closes t
}

// OpenVaultSession builds the client, logs in (within ctx and
// cfg.Timeout) and starts token renewal. cfg is the Transit backend's
// configuration; its Mount, Key and FingerprintKey are not used, so a
// gateway whose key backend is an HSM can still read credentials from
// Vault with the keys.vault connection settings.
func OpenVaultSession(ctx context.Context, cfg TransitConfig) (*VaultSession, error) {
	t, err := OpenTransit(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &VaultSession{t: t, owned: true}, nil
}

// Session returns a VaultSession sharing t's login, so that a gateway
// whose key backend is Transit logs in to Vault once. Closing t ends it;
// its own Close does nothing.
func (t *Transit) Session() *VaultSession { return &VaultSession{t: t} }

// Client returns the logged-in client; its token is renewed until Close.
// It is shared: callers must not change its token, namespace, headers or
// address, and must bound their reads as Transit does (a response size
// limit, no body in an error).
func (s *VaultSession) Client() *api.Client { return s.t.client }

// Close stops token renewal if s opened its own login.
func (s *VaultSession) Close() error {
	if !s.owned {
		return nil
	}
	return s.t.Close()
}
