package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/cardgate/cardgate/api"
	"github.com/cardgate/cardgate/config"
	"github.com/cardgate/cardgate/vaultclient"
)

const keysUsage = `usage: cardgate keys <command> [flags]

commands:
  init FILE                        create a development keyring (mode 0600); never overwrites
  init -config FILE                create the backend's keys if missing (hsm: card key v1 and the
                                   fingerprint key in the token; vault: the derived transit keys)
  status -config FILE              show the primary version and how many records each version sealed
  rotate -config FILE              make a new primary key version
  rewrap -config FILE [-cursor C] [-batch N]
                                   re-seal every record under the primary version; resumable
  retire -config FILE -min-version N [-force] [-destroy]
                                   make versions below N unusable (vault: min_decryption_version;
                                   local: delete them; hsm: -destroy deletes the key objects)

The keys commands read the gateway's configuration. With the vault backend,
they log in with CARDGATE_VAULT_TOKEN when it is set (an operator's token
with the rotator's policy), else with the configured auth.
`

// keyOpTimeout bounds each keys command's setup and single calls.
const keyOpTimeout = 30 * time.Second

func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	// One flag set for every keys command, so that flags may stand before
	// the command as well as after it ("keys -config F rotate").
	fs := commandFlags("keys", keysUsage+"\nflags:\n", stderr)
	path := fs.String("config", "", "the gateway's configuration `file`")
	cursor := fs.String("cursor", "", "rewrap: resume from this `cursor`, as printed by an interrupted run")
	batch := fs.Int("batch", vaultclient.DefaultRewrapBatch, "rewrap: records per key-backend call")
	minVersion := fs.Uint("min-version", 0, "retire: the lowest key `version` that stays usable")
	force := fs.Bool("force", false, "retire: even if records are still sealed under older versions (they become unreadable)")
	destroy := fs.Bool("destroy", false, "retire (hsm): destroy the old key objects in the token; irreversible")
	if len(args) == 1 && args[0] == "help" {
		fs.Usage()
		return errHelp
	}
	if err := parseCommand(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	verb, operands := fs.Arg(0), fs.Args()[1:]
	switch verb {
	case "init", "status", "rotate", "rewrap", "retire":
	default:
		fmt.Fprintf(stderr, "cardgate keys: unknown command %q\n\n%s", verb, keysUsage)
		return errUsage
	}
	if verb == "init" && *path == "" && len(operands) == 1 {
		// "keys init FILE": a development keyring, not a backend's keys.
		// Flags are parsed first, so "-h" is help, never a file name.
		if err := vaultclient.CreateLocalKeyring(operands[0]); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "created development keyring", operands[0])
		return nil
	}
	if *path == "" || len(operands) != 0 {
		fs.Usage()
		return errUsage
	}
	cfg, err := config.Load(*path, os.Getenv)
	if err != nil {
		return err
	}
	if cfg.Keys.Backend == config.KeysVault && os.Getenv(config.EnvVaultToken) != "" {
		cfg.Keys.Vault.Auth = config.VaultAuth{Method: config.VaultAuthToken, Token: os.Getenv(config.EnvVaultToken)}
	}
	log := newLogger(stderr, cfg.Log.Level)
	switch verb {
	case "init":
		return keysInit(ctx, cfg, log, stdout)
	case "status":
		return keysStatus(ctx, cfg, log, stdout)
	case "rotate":
		return keysRotate(ctx, cfg, log, stdout)
	case "rewrap":
		return keysRewrap(ctx, cfg, log, stdout, *cursor, *batch)
	case "retire":
		if *minVersion == 0 || *minVersion > 1<<32-1 {
			fmt.Fprintln(stderr, "keys retire: -min-version N is required")
			return errUsage
		}
		return keysRetire(ctx, cfg, log, stdout, uint32(*minVersion), *force, *destroy)
	}
	return errUsage // not reached: the command was checked above
}

// keyer is what the gateway needs from a key backend.
type keyer interface {
	vaultclient.Keyer
	io.Closer
}

// openKeys opens the configured key backend. For HSM and Vault, ctx
// bounds the login.
func openKeys(ctx context.Context, cfg config.Config, log *slog.Logger) (keyer, error) {
	switch cfg.Keys.Backend {
	case config.KeysLocal:
		k, err := vaultclient.OpenLocalKeyring(cfg.Keys.Local.Path)
		if err != nil {
			return nil, fmt.Errorf("keys.local: %w", err)
		}
		return k, nil
	case config.KeysHSM:
		k, err := vaultclient.OpenPKCS11(ctx, pkcs11Config(cfg.Keys.HSM))
		if err != nil {
			return nil, fmt.Errorf("keys.hsm: %w", err)
		}
		return k, nil
	case config.KeysVault:
		k, err := vaultclient.OpenTransit(ctx, transitConfig(cfg.Keys.Vault, log))
		if err != nil {
			return nil, fmt.Errorf("keys.vault: %w", err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("keys.backend: %q is not supported", cfg.Keys.Backend)
}

// unsafeLocalKeys reports whether the local keyring runs outside dev mode,
// which only keys.local.unsafe_allow_outside_dev permits.
func unsafeLocalKeys(cfg config.Config) bool {
	return cfg.Keys.Backend == config.KeysLocal && cfg.Mode != config.ModeDev
}

// unsafeLocalKeysWarning is logged at every start with the local keyring
// outside dev mode, and is the key_custody readiness detail.
const unsafeLocalKeysWarning = "UNSAFE: local keyring outside dev mode (keys.local.unsafe_allow_outside_dev): " +
	"this gateway holds its own key-encryption key in a file, so there is no key custody; use keys.backend hsm or vault"

// keyCustodyCheck is the key_custody readiness check: it says where the
// key-encryption keys live. It never fails (the cards check covers the
// backend being reachable), but with the local keyring outside dev mode its
// detail says UNSAFE, so a readiness dashboard shows it on every replica,
// not only in a start-up log line that scrolls away.
func keyCustodyCheck(cfg config.Config) api.Check {
	var detail string
	switch {
	case unsafeLocalKeys(cfg):
		detail = unsafeLocalKeysWarning
	case cfg.Keys.Backend == config.KeysLocal:
		detail = "local keyring (dev mode)"
	case cfg.Keys.Backend == config.KeysHSM:
		detail = "keys held by the HSM (PKCS#11); they never enter the gateway"
	case cfg.Keys.Backend == config.KeysVault:
		detail = "keys held by Vault Transit; they never enter the gateway"
	}
	return api.Check{Name: "key_custody", Check: func(context.Context) (string, error) { return detail, nil }}
}

// keyTimeout is the Vault's per-call bound for the configured backend, so
// that the backend's own timeout, not a default, decides.
func keyTimeout(cfg config.Config) time.Duration {
	switch cfg.Keys.Backend {
	case config.KeysHSM:
		return cfg.Keys.HSM.Timeout
	case config.KeysVault:
		return cfg.Keys.Vault.Timeout
	}
	return 0
}

func pkcs11Config(h config.HSM) vaultclient.PKCS11Config {
	return vaultclient.PKCS11Config{
		Library: h.Library, TokenLabel: h.TokenLabel, PIN: h.PIN,
		KeyLabel: h.KeyLabel, FingerprintLabel: h.FingerprintLabel,
		PrimaryVersion: h.PrimaryVersion, MinVersion: h.MinVersion,
		Timeout: h.Timeout, MaxSessions: h.MaxSessions,
	}
}

func transitConfig(v config.Vault, log *slog.Logger) vaultclient.TransitConfig {
	retries := v.MaxRetries
	if retries == 0 {
		retries = -1 // config's 0 means none; vaultclient's 0 means its default
	}
	return vaultclient.TransitConfig{
		Address: v.Address, Namespace: v.Namespace, Mount: v.Mount, Key: v.Key, FingerprintKey: v.FingerprintKey,
		CACertFile: v.CAFile, ClientCertFile: v.ClientCertFile, ClientKeyFile: v.ClientKeyFile, TLSServerName: v.TLSServerName,
		Timeout: v.Timeout, MaxRetries: retries, Logger: log,
		Auth: vaultclient.TransitAuth{
			Method: v.Auth.Method, Mount: v.Auth.Mount, RoleID: v.Auth.RoleID, SecretIDFile: v.Auth.SecretIDFile,
			SecretIDWrapped: v.Auth.SecretIDWrapped, CertRole: v.Auth.CertRole, Token: v.Auth.Token,
		},
	}
}

func keysInit(ctx context.Context, cfg config.Config, log *slog.Logger, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, keyOpTimeout)
	defer cancel()
	var created []string
	var err error
	switch cfg.Keys.Backend {
	case config.KeysLocal:
		if err := vaultclient.CreateLocalKeyring(cfg.Keys.Local.Path); err != nil {
			return err
		}
		created = []string{cfg.Keys.Local.Path}
	case config.KeysHSM:
		created, err = vaultclient.InitPKCS11(ctx, pkcs11Config(cfg.Keys.HSM))
	case config.KeysVault:
		var t *vaultclient.Transit
		if t, err = vaultclient.OpenTransit(ctx, transitConfig(cfg.Keys.Vault, log)); err == nil {
			created, err = t.InitKeys(ctx)
			t.Close()
		}
	}
	if err != nil {
		return err
	}
	if len(created) == 0 {
		fmt.Fprintln(stdout, "keys exist already; nothing created")
	}
	for _, c := range created {
		fmt.Fprintln(stdout, "created", c)
	}
	return nil
}

// openKeysStore opens the configured store and key backend and a Vault
// over them, for status and rewrap.
func openKeysVault(ctx context.Context, cfg config.Config, log *slog.Logger) (*vaultclient.Vault, keyer, func(), error) {
	var closers []io.Closer
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i].Close()
		}
	}
	var store vaultclient.Store
	switch cfg.Store.Backend {
	case config.StoreBolt:
		b, err := vaultclient.OpenBoltStore(cfg.Store.Bolt.Path)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("store.bolt: %w", err)
		}
		closers = append(closers, b)
		store = b
	case config.StoreRedis:
		rdb, err := newRedisClient(cfg.Store.Redis)
		if err != nil {
			return nil, nil, nil, err
		}
		closers = append(closers, rdb)
		store = vaultclient.NewRedisStore(rdb, cfg.Store.Redis.Prefix)
	}
	octx, cancel := context.WithTimeout(ctx, keyOpTimeout)
	keys, err := openKeys(octx, cfg, log)
	cancel()
	if err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	closers = append(closers, keys)
	v, err := vaultclient.New(store, keys, vaultclient.Options{KeyTimeout: max(keyTimeout(cfg), vaultclient.DefaultKeyTimeout), Logger: log})
	if err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	return v, keys, closeAll, nil
}

func keysStatus(ctx context.Context, cfg config.Config, log *slog.Logger, stdout io.Writer) error {
	v, keys, closeAll, err := openKeysVault(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeAll()
	pctx, cancel := context.WithTimeout(ctx, keyOpTimeout)
	defer cancel()
	primary, err := keys.Primary(pctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backend %s, key %s, primary version %d\n", primary.Backend, primary.Name, primary.Version)
	if t, ok := keys.(*vaultclient.Transit); ok {
		if info, err := t.KeyInfo(pctx); err == nil {
			fmt.Fprintf(stdout, "vault: latest version %d, min_decryption_version %d\n", info.LatestVersion, info.MinDecryptionVersion)
		}
	}
	census, err := v.KeyCensus(ctx)
	if err != nil {
		return err
	}
	ids := make([]vaultclient.KeyID, 0, len(census))
	for id := range census {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b vaultclient.KeyID) int { return int(a.Version) - int(b.Version) })
	for _, id := range ids {
		name := fmt.Sprintf("%s/%s v%d", id.Backend, id.Name, id.Version)
		if id == (vaultclient.KeyID{}) {
			name = "unreadable"
		}
		fmt.Fprintf(stdout, "  %-40s %d sealed records and CVCs\n", name, census[id])
	}
	return nil
}

func keysRotate(ctx context.Context, cfg config.Config, log *slog.Logger, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, keyOpTimeout)
	defer cancel()
	var id vaultclient.KeyID
	var err error
	switch cfg.Keys.Backend {
	case config.KeysLocal:
		id, err = vaultclient.RotateLocalKeyring(cfg.Keys.Local.Path)
	case config.KeysHSM:
		var p *vaultclient.PKCS11
		if p, err = vaultclient.OpenPKCS11(ctx, pkcs11Config(cfg.Keys.HSM)); err == nil {
			id, err = p.Rotate(ctx)
			p.Close()
		}
	case config.KeysVault:
		var t *vaultclient.Transit
		if t, err = vaultclient.OpenTransit(ctx, transitConfig(cfg.Keys.Vault, log)); err == nil {
			id, err = t.Rotate(ctx)
			t.Close()
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "new primary: %s/%s version %d\n", id.Backend, id.Name, id.Version)
	switch cfg.Keys.Backend {
	case config.KeysHSM:
		if cfg.Keys.HSM.PrimaryVersion != 0 {
			fmt.Fprintf(stdout, "keys.hsm.primary_version pins version %d: set it to %d and restart the gateways to seal with the new version\n", cfg.Keys.HSM.PrimaryVersion, id.Version)
		} else {
			fmt.Fprintln(stdout, "gateways seal with it after they restart; they can already open what it seals")
		}
	case config.KeysLocal:
		fmt.Fprintln(stdout, "gateways seal with it after they restart")
	}
	fmt.Fprintln(stdout, "next: cardgate keys rewrap -config FILE")
	return nil
}

func keysRewrap(ctx context.Context, cfg config.Config, log *slog.Logger, stdout io.Writer, cursor string, batch int) error {
	v, _, closeAll, err := openKeysVault(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeAll()
	start := time.Now()
	p, err := v.Rewrap(ctx, vaultclient.RewrapOptions{Cursor: cursor, BatchSize: batch, Progress: func(p vaultclient.RewrapProgress) {
		fmt.Fprintf(stdout, "scanned %d: rewrapped %d, already current %d, retired %d, corrupt %d, changed %d; cursor %q\n",
			p.Scanned, p.Rewrapped, p.Current, p.Retired, p.Corrupt, p.Conflicts, p.Cursor)
	}})
	if err != nil {
		if p.Cursor != "" {
			return fmt.Errorf("rewrap stopped after %d records (resume with -cursor %q): %w", p.Scanned, p.Cursor, err)
		}
		return fmt.Errorf("rewrap stopped after %d records (run it again; records already moved are skipped): %w", p.Scanned, err)
	}
	fmt.Fprintf(stdout, "done in %v: %d records under %s/%s version %d (%d rewrapped now)\n",
		time.Since(start).Round(time.Millisecond), p.Rewrapped+p.Current, p.Primary.Backend, p.Primary.Name, p.Primary.Version, p.Rewrapped)
	if p.Conflicts > 0 {
		return fmt.Errorf("%d records changed while being moved: run rewrap again", p.Conflicts)
	}
	if p.Retired > 0 || p.Corrupt > 0 {
		return fmt.Errorf("%d records are under retired key versions and %d failed authentication; they were left as they are (their tokens are in the log)", p.Retired, p.Corrupt)
	}
	return nil
}

func keysRetire(ctx context.Context, cfg config.Config, log *slog.Logger, stdout io.Writer, minVersion uint32, force, destroy bool) error {
	v, keys, closeAll, err := openKeysVault(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeAll()
	census, err := v.KeyCensus(ctx)
	if err != nil {
		return err
	}
	left := 0
	for id, n := range census {
		if id.Version < minVersion {
			left += n
		}
	}
	if left > 0 && !force {
		return fmt.Errorf("%d records and CVCs are still sealed under versions below %d: run `cardgate keys rewrap` first, or pass -force to make them unreadable", left, minVersion)
	}
	ctx, cancel := context.WithTimeout(ctx, keyOpTimeout)
	defer cancel()
	switch k := keys.(type) {
	case *vaultclient.Transit:
		if err := k.SetMinDecryptionVersion(ctx, minVersion); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "vault: min_decryption_version is now %d\n", minVersion)
	case *vaultclient.LocalKeyring:
		retired, err := vaultclient.RetireLocalKeyring(cfg.Keys.Local.Path, minVersion)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted key versions %v from %s; restart the gateways\n", retired, cfg.Keys.Local.Path)
	case *vaultclient.PKCS11:
		if !destroy {
			return fmt.Errorf("hsm: set keys.hsm.min_version: %d in the configuration and restart the gateways (reversible), or pass -destroy to delete the old key objects from the token (irreversible)", minVersion)
		}
		destroyed, err := k.DestroyBelow(ctx, minVersion)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "destroyed key versions %v in the token\n", destroyed)
	default:
		return errors.New("keys retire: this key backend cannot retire versions")
	}
	return nil
}
