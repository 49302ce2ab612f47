package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/cardscan"
	"github.com/cardgate/cardgate/config"
	"github.com/cardgate/cardgate/killswitch"
	"github.com/cardgate/cardgate/migrate"
	"github.com/cardgate/cardgate/vaultclient"
)

const cardsExportUsage = `usage: cardgate cards export -config FILE -to ID -out FILE|- [-armor]

Writes every stored, unexpired card in the migration format
(docs/migration.md), with its token as the id and never a CVC, encrypted
with age to the recipient that the signed allowlist names as export ID
(its exports list). The allowlist is verified as the gateway verifies it;
a recipient it does not name is refused, and the refusal is audited. Each
exported card is audited before it is written. The plaintext is never
written to disk; -out - writes the ciphertext to stdout, which must not be
a terminal. An export that stops leaves no output file. The kill switch
(cardgate destinations disable --all, or disable ID) refuses it. On bolt
with cards.retention, cards unused for longer are expired first.

With the bolt store, stop the gateway first.
`

// codeExportNotAllowed is the audit reason of a refused export.
const codeExportNotAllowed = "export_recipient_not_allowed"

func runCardsExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := commandFlags("cards export", cardsExportUsage+"\nflags:\n", stderr)
	path := fs.String("config", "", "the gateway's configuration `file`")
	to := fs.String("to", "", "the export recipient's `id` in the signed allowlist")
	out := fs.String("out", "", "the encrypted output `file`, or - for stdout")
	armored := fs.Bool("armor", false, "write ASCII-armored age (PEM-like text)")
	if err := parseCommand(fs, args); err != nil {
		return err
	}
	if *path == "" || *to == "" || *out == "" || fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	if *out == "-" && isTerminal(stdout) {
		return errors.New("cards export: stdout is a terminal; give -out FILE or redirect stdout")
	}
	cfg, err := config.Load(*path, os.Getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.Log.Level)
	t, err := openCardsTools(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer t.close()
	al, err := loadVerifiedAllowlist(ctx, cfg, t, log)
	if err != nil {
		return err
	}
	run := newRunID("exp_")
	// Refusals are audited: an attempt to send every card somewhere
	// unreviewed, or while operators have stopped egress, is exactly
	// what an auditor wants to see.
	deny := func(reason string) {
		rec := audit.Record{Kind: audit.KindDenied, RequestID: run, Caller: exportCaller, Decision: audit.DecisionDeny,
			Reason: reason, AllowlistVersion: al.Doc.Version, AllowlistSHA256: al.SHA256}
		if sanitizedID(*to) == *to {
			rec.Destination = *to
		}
		if _, aerr := t.audit.Append(ctx, rec); aerr != nil {
			log.Error("audit of a refused export failed", slog.String("run", run))
		}
	}
	e := al.Doc.ExportTo(*to)
	if e == nil {
		deny(codeExportNotAllowed)
		return fmt.Errorf("cards export: the signed allowlist (version %d) names no export recipient %q; refused (%s)", al.Doc.Version, sanitizedID(*to), codeExportNotAllowed)
	}
	if code := exportKillSwitch(ctx, cfg, t, e.ID); code != "" {
		deny(code)
		return fmt.Errorf("cards export: the kill switch stops exports to %s (cardgate destinations status); refused (%s)", e.ID, code)
	}
	rcpt, err := migrate.ParseRecipient(e.Recipient)
	if err != nil {
		return err // not reached: the allowlist parser checked it
	}
	if err := sweepBeforeExport(ctx, cfg, t, log); err != nil {
		return err
	}
	log.Info("cards export started", slog.String("run", run), slog.String("recipient", e.ID), slog.Uint64("allowlist_version", al.Doc.Version))

	dst, commit, abort, err := exportOutput(*out, stdout)
	if err != nil {
		return err
	}
	c, err := writeExport(ctx, dst, *armored, rcpt, migrate.ExportOptions{
		Store: t.store, Vault: t.vault, Audit: t.audit, RunID: run, Caller: exportCaller, Recipient: e.ID,
		AllowlistVersion: al.Doc.Version, AllowlistSHA256: al.SHA256, Report: stderr,
		Progress: func() io.Writer {
			if isTerminal(stderr) {
				return stderr
			}
			return nil
		}(),
	})
	if err == nil {
		err = commit()
	} else {
		abort()
	}
	attrs := []any{slog.String("run", run), slog.Int("exported", c.Exported), slog.Int("expired", c.Expired), slog.Int("unreadable", c.Failed)}
	if err != nil {
		log.Error("cards export stopped", attrs...)
		return fmt.Errorf("cards export %s: %w", run, err)
	}
	log.Info("cards export finished", attrs...)
	fmt.Fprintf(stderr, "export %s to %s: %d exported, %d expired (not exported), %d unreadable\n", run, e.ID, c.Exported, c.Expired, c.Failed)
	return nil
}

// writeExport runs the export through an age writer (armored or not) on
// dst and closes the writers, which writes age's last chunk.
func writeExport(ctx context.Context, dst io.Writer, armored bool, rcpt age.Recipient, o migrate.ExportOptions) (migrate.ExportCounts, error) {
	var aw io.WriteCloser
	if armored {
		aw = armor.NewWriter(dst)
		dst = aw
	}
	w, err := age.Encrypt(dst, rcpt)
	if err != nil {
		return migrate.ExportCounts{}, fmt.Errorf("age: %w", err)
	}
	c, err := migrate.Export(ctx, w, o)
	if err != nil {
		return c, err
	}
	if err := w.Close(); err != nil {
		return c, fmt.Errorf("write: %w", err)
	}
	if aw != nil {
		if err := aw.Close(); err != nil {
			return c, fmt.Errorf("write: %w", err)
		}
	}
	return c, nil
}

// exportOutput opens the destination of the ciphertext: stdout, or a
// temporary file beside path that commit fsyncs and renames into place
// and abort removes, so that a cut-off export leaves no file.
func exportOutput(path string, stdout io.Writer) (w io.Writer, commit func() error, abort func(), err error) {
	if path == "-" {
		return stdout, func() error { return nil }, func() {}, nil
	}
	if _, err := os.Lstat(path); err == nil {
		return nil, nil, nil, fmt.Errorf("cards export: %s exists; it is never overwritten", path)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cards export: %w", err)
	}
	abort = func() {
		f.Close()
		os.Remove(f.Name())
	}
	commit = func() error {
		if err := f.Sync(); err != nil {
			abort()
			return fmt.Errorf("fsync: %w", err)
		}
		if err := f.Close(); err != nil {
			os.Remove(f.Name())
			return err
		}
		if err := os.Link(f.Name(), path); err != nil { // never replaces an existing file
			os.Remove(f.Name())
			return err
		}
		return os.Remove(f.Name())
	}
	return f, commit, abort, nil
}

// sweepBeforeExport runs one bolt retention sweep before an export: the
// gateway, which sweeps every 10 minutes, is stopped for a bolt export, so
// cards unused for longer than cards.retention may still be in the file,
// and they must not leave in an export. Redis expires records itself.
func sweepBeforeExport(ctx context.Context, cfg config.Config, t *cardsTools, log *slog.Logger) error {
	bolt, ok := t.store.(*vaultclient.BoltStore)
	if !ok || cfg.Cards.Retention <= 0 {
		return nil
	}
	sw, err := vaultclient.NewRetentionSweeper(bolt, vaultclient.RetentionOptions{Retention: cfg.Cards.Retention, Logger: log})
	if err != nil {
		return fmt.Errorf("cards export: cards.retention: %w", err)
	}
	n, err := sw.Sweep(ctx)
	if err != nil {
		// bbolt's texts can name keys; the class is enough.
		return errors.New("cards export: the retention sweep failed; nothing was exported")
	}
	if n > 0 {
		log.Info("cards export: expired cards unused for longer than cards.retention", slog.Int("expired", n))
	}
	return nil
}

// exportKillSwitch reads the kill switch where the gateway reads it and
// returns destination_disabled when it stops every destination or this
// export's id, killswitch_unavailable when it cannot be read (fail
// closed), or "" when the export may go. An export sends every card at
// once: the operators' emergency stop stops it too.
func exportKillSwitch(ctx context.Context, cfg config.Config, t *cardsTools, id string) string {
	store := killSwitchStore(cfg, t.rdb)
	if store == nil {
		return "" // dev mode with bolt and no killswitch.file: there is no switch
	}
	ctx, cancel := context.WithTimeout(ctx, keyOpTimeout)
	defer cancel()
	st, err := store.Load(ctx)
	if err != nil {
		return killswitch.CodeUnavailable
	}
	if _, all := st[killswitch.All]; all {
		return killswitch.CodeDisabled
	}
	if _, off := st[id]; off {
		return killswitch.CodeDisabled
	}
	return ""
}

// loadVerifiedAllowlist verifies the configured allowlist exactly as the
// gateway does at start (signatures, threshold, environment, expiry,
// rollback), and returns it.
func loadVerifiedAllowlist(ctx context.Context, cfg config.Config, t *cardsTools, log *slog.Logger) (*allowlist.Allowlist, error) {
	signers, err := allowlist.ReadAllowedSigners(ctx, cfg.Allowlist.AllowedSigners)
	if err != nil {
		return nil, fmt.Errorf("allowlist.allowed_signers: %w", err)
	}
	var state allowlist.StateStore
	if cfg.Allowlist.StateFile != "" {
		state = allowlist.NewFileStateStore(cfg.Allowlist.StateFile)
	} else {
		state = allowlist.NewRedisStateStore(t.rdb, cfg.Store.Redis.Prefix+"allowlist:state:"+cfg.Environment)
	}
	h := allowlist.NewHolder(allowlist.HolderOptions{
		Path:          cfg.Allowlist.Path,
		SignaturesDir: cfg.Allowlist.SignaturesDir,
		Policy: allowlist.Policy{
			AllowedSigners: signers,
			Threshold:      cfg.Allowlist.Threshold,
			Environment:    cfg.Environment,
			MaxValidity:    cfg.Allowlist.MaxValidity,
		},
		State:  state,
		Logger: log,
	})
	if err := h.LoadContext(ctx); err != nil {
		return nil, fmt.Errorf("cards export: refusing: %w", err)
	}
	return h.Current()
}

// sanitizedID returns id for messages and audit records if it is spelled
// like an entry id and holds no card-like digit run, else a placeholder:
// the flag is operator input and could be anything, a card number
// included.
func sanitizedID(id string) string {
	if allowlist.ValidID(id) && !cardscan.ContainsAnyWindow(id) {
		return id
	}
	return "(not an id)"
}
