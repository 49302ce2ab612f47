package main

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/redis/go-redis/v9"

	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/config"
	"github.com/cardgate/cardgate/vaultclient"
)

// The cards command's dispatcher: status (cards_status.go), and the
// migration commands import-key, import and export.

const cardsUsage = `usage: cardgate cards <command> [flags]

commands:
  status -config FILE       count stored cards by time since last use (retention)
  import-key -config FILE -out FILE
                            make an import identity sealed under the key backend; prints its age recipient
  import -config FILE -identity FILE -in FILE.age -mapping FILE
                            tokenize the cards of an age-encrypted migration file; resumable
  export -config FILE -to ID -out FILE|-
                            write every stored card, age-encrypted to the allowlist's export recipient ID

The format and the procedure: docs/migration.md.
`

func runCards(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, cardsUsage)
		return errUsage
	}
	switch args[0] {
	case "status":
		return cardsStatus(ctx, args[1:], stdout, stderr)
	case "import":
		return runCardsImport(ctx, args[1:], stdout, stderr)
	case "export":
		return runCardsExport(ctx, args[1:], stdout, stderr)
	case "import-key":
		return runCardsImportKey(ctx, args[1:], stdout, stderr)
	}
	if isHelp(args[0]) {
		fmt.Fprint(stdout, cardsUsage)
		return nil
	}
	fmt.Fprintf(stderr, "cardgate cards: unknown command %q\n\n%s", args[0], cardsUsage)
	return errUsage
}

// cardsTools are what import and export open from the configuration: the
// vault over the configured store and key backend, the store's scanner,
// and the audit log, as the gateway opens them.
type cardsTools struct {
	vault   *vaultclient.Vault
	keys    vaultclient.Keyer
	store   vaultclient.RewrapStore
	rdb     redis.UniversalClient // nil with bolt
	audit   *audit.Log
	closers []io.Closer
}

func (t *cardsTools) close() {
	for i := len(t.closers) - 1; i >= 0; i-- {
		t.closers[i].Close()
	}
}

// openCardsTools opens the store, the key backend and the audit sinks
// that cfg names. With bolt, the gateway must be stopped: bolt allows one
// process per file.
func openCardsTools(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *cardsTools, err error) {
	t := &cardsTools{}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	switch cfg.Store.Backend {
	case config.StoreBolt:
		b, err := vaultclient.OpenBoltStoreWith(cfg.Store.Bolt.Path, vaultclient.BoltOptions{Logger: log})
		if err != nil {
			return nil, fmt.Errorf("store.bolt (stop the gateway first: bolt allows one process): %w", err)
		}
		t.closers = append(t.closers, b)
		t.store = b
	case config.StoreRedis:
		if t.rdb, err = newRedisClient(cfg.Store.Redis); err != nil {
			return nil, err
		}
		t.closers = append(t.closers, t.rdb)
		// With the retention as the gateway sets it: an imported card
		// must expire like any other.
		t.store = newRedisCardStore(t.rdb, cfg)
	}
	octx, cancel := context.WithTimeout(ctx, keyOpTimeout)
	keys, err := openKeys(octx, cfg, log)
	cancel()
	if err != nil {
		return nil, err
	}
	t.closers = append(t.closers, keys)
	t.keys = keys
	if unsafeLocalKeys(cfg) {
		log.Warn(unsafeLocalKeysWarning, slog.String("keyring", cfg.Keys.Local.Path))
	}
	storeTimeout := vaultclient.DefaultStoreTimeout
	if cfg.Store.Backend == config.StoreRedis {
		storeTimeout = cfg.Store.Redis.Timeout
	}
	if t.vault, err = vaultclient.New(t.store, keys, vaultclient.Options{
		CVCTTL: cfg.Cards.CVCTTL, StoreTimeout: storeTimeout, KeyTimeout: keyTimeout(cfg), Logger: log,
	}); err != nil {
		return nil, err
	}
	if t.audit, err = openCardsAudit(cfg, t, log); err != nil {
		return nil, err
	}
	return t, nil
}

// openCardsAudit opens the audit sinks as the gateway does: the file as
// the primary and the stream as its mirror, or whichever one is
// configured. The gateway's reconciler copies to the stream any record
// it lacks. Dev mode without a sink logs records to stderr.
func openCardsAudit(cfg config.Config, t *cardsTools, log *slog.Logger) (*audit.Log, error) {
	var sinks []audit.Sink
	var file bool
	if cfg.Audit.File != "" {
		f, err := audit.OpenFileSink(cfg.Audit.File)
		if err != nil {
			return nil, fmt.Errorf("audit.file: %w", err)
		}
		t.closers = append(t.closers, f)
		sinks, file = append(sinks, f), true
	}
	var mirror audit.Mirror
	if cfg.Audit.RedisStream != "" {
		if t.rdb == nil {
			return nil, fmt.Errorf("audit.redis_stream needs the redis store")
		}
		s, err := audit.NewRedisStreamSink(audit.RedisStreamOptions{Client: t.rdb, Key: cfg.Audit.RedisStream, Timeout: cfg.Audit.Timeout})
		if err != nil {
			return nil, fmt.Errorf("audit.redis_stream: %w", err)
		}
		if file {
			mirror = s
		} else {
			sinks = append(sinks, s)
		}
	}
	if len(sinks) == 0 {
		if cfg.Mode != config.ModeDev {
			return nil, fmt.Errorf("no audit sink configured: set audit.file or audit.redis_stream")
		}
		log.Warn("DEV MODE: no audit sink configured; audit records go to this log and are not durable")
		sinks = append(sinks, logSink{log: log})
	}
	return audit.New(audit.Options{Sinks: sinks, Mirror: mirror, Logger: log})
}

// newRunID names one import or export run in its audit records and in
// what it prints: prefix and 80 random bits in lowercase base32. Not hex:
// the audit log refuses an identifier holding a long digit run, and 16
// hex digits hold one now and then.
func newRunID(prefix string) string {
	var b [10]byte
	rand.Read(b[:])
	return prefix + base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding).EncodeToString(b[:])
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
