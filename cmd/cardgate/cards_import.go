package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"filippo.io/age"

	"github.com/cardgate/cardgate/config"
	"github.com/cardgate/cardgate/migrate"
	"github.com/cardgate/cardgate/vaultclient"
)

const cardsImportUsage = `usage: cardgate cards import -config FILE -identity FILE -in FILE.age -mapping FILE

The identity is a file from "cardgate cards import-key" (sealed under the
key backend), or an age-keygen file (mode 0600; development).

Tokenizes the cards of a migration file (JSON lines, docs/migration.md)
encrypted with age to the recipient of the import identity, and appends
"sender id -> token" lines to the mapping file. Run it again with the
same file and mapping file to resume an interrupted import: no card is
stored twice. Refused lines are listed by number and reason, never
quoted. The plaintext is never written to disk.

With the bolt store, stop the gateway first.
`

// Audit caller names of the migration commands.
const (
	importCaller = "cardgate-cli/cards-import"
	exportCaller = "cardgate-cli/cards-export"
)

func runCardsImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := commandFlags("cards import", cardsImportUsage+"\nflags:\n", stderr)
	path := fs.String("config", "", "the gateway's configuration `file`")
	identity := fs.String("identity", "", "the import identity: an age-keygen `file`, mode 0600")
	inPath := fs.String("in", "", "the age-encrypted migration `file`")
	mapPath := fs.String("mapping", "", "the mapping `file`: created, or resumed from")
	workers := fs.Int("workers", migrate.DefaultWorkers, "cards tokenized at once")
	batch := fs.Int("batch", migrate.DefaultBatch, "lines between two fsyncs of the mapping file")
	if err := parseCommand(fs, args); err != nil {
		return err
	}
	if *path == "" || *identity == "" || *inPath == "" || *mapPath == "" || fs.NArg() != 0 || *workers < 1 || *batch < 1 {
		fs.Usage()
		return errUsage
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
	id, err := loadImportIdentity(ctx, cfg, t, *identity, log)
	if err != nil {
		return err
	}
	in, err := migrate.OpenInput(*inPath, id)
	if err != nil {
		return err
	}
	defer in.Close()
	key, err := migrate.TokenKey([]byte(id.String()), in.SHA256())
	if err != nil {
		return err
	}
	m, err := migrate.OpenMapping(*mapPath)
	if err != nil {
		return err
	}
	defer m.Close()

	run := newRunID("imp_")
	resumeAfter, _ := m.Last()
	log.Info("cards import started", slog.String("run", run), slog.Int("resume_after_line", resumeAfter))
	o := migrate.ImportOptions{
		Vault: t.vault, Audit: t.audit, Mapping: m, TokenKey: key,
		RunID: run, Caller: importCaller, Report: stderr, Workers: *workers, Batch: *batch,
	}
	if isTerminal(stderr) {
		o.Progress = stderr
	}
	c, err := migrate.Import(ctx, in, o)
	if err == nil {
		err = in.Check()
	}
	logCounts(log, run, c, err)
	fmt.Fprintf(stdout, "import %s: %d lines: %d imported, %d recovered, %d skipped, %d refused%s, %d deleted before\n",
		run, c.Lines, c.Imported, c.Recovered, c.Skipped, c.Refused, refusedText(c.RefusedBy), c.DeletedBefore)
	if err != nil {
		return fmt.Errorf("import %s stopped; run it again with the same -in and -mapping to resume: %w", run, err)
	}
	fmt.Fprintf(stdout, "mapping: %s (%d lines)\n", *mapPath, m.Lines())
	return nil
}

// logCounts logs a run's outcome: counts and the error code, never a
// cause that could quote input.
func logCounts(log *slog.Logger, run string, c migrate.Counts, err error) {
	attrs := []any{slog.String("run", run), slog.Int("lines", c.Lines), slog.Int("imported", c.Imported),
		slog.Int("recovered", c.Recovered), slog.Int("skipped", c.Skipped), slog.Int("refused", c.Refused),
		slog.Int("deleted_before", c.DeletedBefore)}
	if err != nil {
		log.Error("cards import stopped", attrs...)
		return
	}
	log.Info("cards import finished", attrs...)
}

// refusedText renders refusals by code: " (invalid_cvc 2, card_expired 1)".
func refusedText(by map[string]int) string {
	if len(by) == 0 {
		return ""
	}
	codes := make([]string, 0, len(by))
	for c := range by {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	var b strings.Builder
	for i, c := range codes {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", c, by[c])
	}
	return " (" + b.String() + ")"
}

// loadImportIdentity opens the import identity: sealed under the key
// backend (cards import-key), or an age-keygen file, which is logged as a
// weaker custody outside dev mode.
func loadImportIdentity(ctx context.Context, cfg config.Config, t *cardsTools, path string, log *slog.Logger) (*age.X25519Identity, error) {
	sealed, err := migrate.IsSealedIdentity(ctx, path)
	if err != nil {
		return nil, err
	}
	if !sealed {
		if cfg.Mode != config.ModeDev {
			log.Warn("the import identity is a plain age-keygen file: whoever copies it can decrypt the import; use cardgate cards import-key", slog.String("identity", path))
		}
		return migrate.LoadIdentity(ctx, path)
	}
	kw, err := vaultclient.NewDataKeys(t.keys, migrate.IdentityPurpose, keyTimeout(cfg))
	if err != nil {
		return nil, err
	}
	return migrate.OpenSealedIdentity(ctx, path, kw)
}

const cardsImportKeyUsage = `usage: cardgate cards import-key -config FILE -out FILE

Makes a new age identity for "cards import", sealed under the gateway's
key backend (with the HSM or Vault backend, the file opens only where that
backend answers), writes it to FILE (mode 0600, never overwritten) and
prints its recipient, the age1… key a sender encrypts the migration file
to. Make one per migration and delete it when the migration is done.
`

func runCardsImportKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := commandFlags("cards import-key", cardsImportKeyUsage+"\nflags:\n", stderr)
	path := fs.String("config", "", "the gateway's configuration `file`")
	out := fs.String("out", "", "the sealed identity `file` to create")
	if err := parseCommand(fs, args); err != nil {
		return err
	}
	if *path == "" || *out == "" || fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	cfg, err := config.Load(*path, os.Getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.Log.Level)
	octx, cancel := context.WithTimeout(ctx, keyOpTimeout)
	defer cancel()
	keys, err := openKeys(octx, cfg, log)
	if err != nil {
		return err
	}
	defer keys.Close()
	kw, err := vaultclient.NewDataKeys(keys, migrate.IdentityPurpose, keyTimeout(cfg))
	if err != nil {
		return err
	}
	file, recipient, err := migrate.NewSealedIdentity(octx, kw)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("cards import-key: %w", err)
	}
	if _, err := f.Write(file); err != nil {
		f.Close()
		os.Remove(*out)
		return fmt.Errorf("cards import-key: %w", err)
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		os.Remove(*out)
		return fmt.Errorf("cards import-key: %w", err)
	}
	fmt.Fprintf(stdout, "sealed import identity written to %s\nrecipient: %s\n", *out, recipient)
	return nil
}
