// The gateway's processor credentials: built from the configuration's
// credentials section, loaded before anything listens, reloaded on SIGHUP
// and on a file change, reported by /readyz, and checked against every
// allowlist the gateway loads.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/metric"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/api"
	"github.com/cardgate/cardgate/config"
	"github.com/cardgate/cardgate/credentials"
	"github.com/cardgate/cardgate/forwarder"
	"github.com/cardgate/cardgate/forwarder/signing"
	"github.com/cardgate/cardgate/vaultclient"
)

// credentialSpecs translates the configuration's credentials section.
func credentialSpecs(cfg config.Config) []credentials.Spec {
	var specs []credentials.Spec
	for _, name := range cfg.CredentialNames() {
		c := cfg.Credentials[name]
		sp := credentials.Spec{Name: name, Encoding: credentials.Encoding(c.Encoding), Kind: credentials.Kind(c.Kind)}
		switch {
		case c.File != "":
			sp.Source = credentials.File{Path: c.File}
		case c.Env != "":
			sp.Source = credentials.Env{Var: c.Env}
		case c.Vault != nil:
			sp.Source = credentials.VaultKV{Mount: c.Vault.Mount, Path: c.Vault.Path, Key: c.Vault.Key, Version: c.Vault.Version}
		}
		specs = append(specs, sp)
	}
	return specs
}

// openCredentials builds the credentials store and loads it. Every
// credential that fails is reported, at once, and the gateway does not
// start. Vault credentials are read through the key backend's Vault login
// when keys.backend is vault, else through a login of their own with the
// keys.vault settings (closed with the gateway). nil means none are
// configured.
func openCredentials(ctx context.Context, cfg config.Config, keys keyer, log *slog.Logger, mp metric.MeterProvider, closers *[]io.Closer) (*credentials.Store, error) {
	if len(cfg.Credentials) == 0 {
		return nil, nil
	}
	specs := credentialSpecs(cfg)
	opts := credentials.Options{Logger: log, MeterProvider: mp}
	for _, sp := range specs {
		if _, ok := sp.Source.(credentials.VaultKV); !ok || opts.Vault != nil {
			continue
		}
		if t, ok := keys.(*vaultclient.Transit); ok {
			opts.Vault = t.Session().Client()
			continue
		}
		sess, err := vaultclient.OpenVaultSession(ctx, transitConfig(cfg.Keys.Vault, log))
		if err != nil {
			return nil, fmt.Errorf("refusing to start: credentials: vault: %w", err)
		}
		*closers = append(*closers, sess)
		opts.Vault = sess.Client()
	}
	store, err := credentials.New(specs, opts)
	if err != nil {
		return nil, fmt.Errorf("refusing to start: %w", err)
	}
	if err := store.Reload(ctx); err != nil {
		return nil, fmt.Errorf("refusing to start: %w", err)
	}
	return store, nil
}

// forwarderCredentials is the store as the forwarder's interface: nil,
// not a nil pointer in an interface, when none are configured.
func (g *gateway) forwarderCredentials() forwarder.Credentials {
	if g.creds == nil {
		return nil
	}
	return g.creds
}

// checkDestinationCredentials refuses an allowlist naming a credential
// this gateway does not configure, or signing with a credential whose
// kind cannot sign the entry's scheme: its forwards could only fail, so
// the last good allowlist stays live (unsupported_by_gateway), at start
// and on every reload. Credential names are fixed at start, so a new one
// needs a restart.
func checkDestinationCredentials(d *allowlist.Document, creds map[string]config.Credential) error {
	var errs []error
	for _, dst := range d.Destinations {
		for _, name := range dst.Credentials {
			if _, ok := creds[name]; !ok {
				errs = append(errs, fmt.Errorf("destination %s names credential %q, which the credentials section does not configure; add it and restart", dst.ID, name))
			}
		}
		name := dst.SigningCredential()
		c, ok := creds[name]
		if name == "" || !ok {
			continue
		}
		kind := c.Kind
		if kind == "" {
			kind = config.CredentialKindSecret
		}
		if want := signingKinds(dst.Signing); !strings.Contains(","+want+",", ","+kind+",") {
			errs = append(errs, fmt.Errorf("destination %s signs with credential %q of kind %s; its %s signing needs kind %s", dst.ID, name, kind, dst.Signing.Scheme, strings.ReplaceAll(want, ",", " or ")))
		}
	}
	return errors.Join(errs...)
}

// signingKinds lists the credential kinds that can key sp, comma-separated.
func signingKinds(sp *signing.Spec) string {
	if sp.Scheme == signing.SchemeRFC9421 && sp.RFC9421 != nil {
		switch sp.RFC9421.Algorithm {
		case signing.AlgEd25519:
			return config.CredentialKindEd25519
		case signing.AlgECDSAP256SHA256:
			return config.CredentialKindECDSAP256
		}
	}
	return config.CredentialKindHMACKey + "," + config.CredentialKindSecret
}

// credentialChecks is the /readyz probe: ready once a complete set is
// loaded; a failed reload is shown while the last good set serves.
func (g *gateway) credentialChecks() []api.Check {
	if g.creds == nil {
		return nil
	}
	return []api.Check{{Name: "credentials", Check: func(context.Context) (string, error) {
		st := g.creds.Status()
		if !st.Ready {
			return "no credentials loaded; forwards that need one are refused", errors.New("credentials: not loaded")
		}
		var b strings.Builder
		for i, c := range st.Credentials {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s (%s", c.Name, c.Source)
			if c.Version > 0 {
				fmt.Fprintf(&b, " v%d", c.Version)
			}
			b.WriteString(")")
		}
		if st.LastError != "" {
			// Names, sources and paths; never a value.
			b.WriteString("; last reload failed, the last good credentials serve: " + st.LastError)
		}
		return b.String(), nil
	}}}
}

// runCredentials adds to loops the reload of the credentials on a file
// change and, for Vault credentials that follow the latest version, on a
// timer.
func (g *gateway) runCredentials(loops *runGroup) {
	if g.creds != nil {
		loops.Go("credentials watch", func(ctx context.Context) { _ = g.creds.Watch(ctx) })
	}
}

// reloadCredentials is SIGHUP's reload. The store logs the outcome and
// keeps the last good set when a credential fails.
func (g *gateway) reloadCredentials(ctx context.Context) {
	if g.creds != nil {
		_ = g.creds.Reload(ctx)
	}
}
