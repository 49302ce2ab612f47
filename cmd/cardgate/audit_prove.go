package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/mod/sumdb/note"

	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/audit/checkpoint"
	"github.com/cardgate/cardgate/config"
	"github.com/cardgate/cardgate/internal/fileread"
	"github.com/cardgate/cardgate/vaultclient"
)

const auditProveUsage = `usage: cardgate audit prove [flags] FORWARD_ID
       cardgate audit consistency [flags] OLD NEW
       cardgate audit checkpoint-key --origin ORIGIN --out FILE
       cardgate audit checkpoint-key --hsm -config FILE

prove prints, for each audit record of the forward FORWARD_ID (its
intent, result and tokenized records), a C2SP tlog-proof: the record's
line, its leaf index, and the Merkle inclusion proof against the signed
checkpoint, which follows verbatim. The checkpoint is audit.checkpoint.file
unless --checkpoint names another; the audit file is audit.file unless
--log names another. It fails if the file's first SIZE lines do not give
the checkpoint's root (the file was changed since it was signed).

consistency prints the proof that the log at checkpoint NEW extends the
one at checkpoint OLD (two checkpoint files), after checking that the audit
file gives both roots.

checkpoint-key writes a new Ed25519 note signing key for the local signer
(development) to FILE (mode 0600; it must not exist) and prints the
verifier key auditors pin. With --hsm it creates the key pair on the token
of -config's keys.hsm instead, labelled audit.checkpoint.hsm_key_label
(sensitive, not extractable), and prints its verifier key for
audit.checkpoint.origin.

Check what these print with cardgate-verify, which shares no code with the
gateway beyond the note and tlog libraries.

flags:
`

// runAuditProve runs "cardgate audit prove|consistency|checkpoint-key".
func runAuditProve(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	fs := commandFlags("audit "+cmd, auditProveUsage, stderr)
	cfgPath := fs.String("config", "", "take audit.file and audit.checkpoint.file from the gateway configuration in FILE")
	logPath := fs.String("log", "", "the audit file (default: audit.file of -config)")
	cpPath := fs.String("checkpoint", "", "the signed checkpoint to prove against (default: audit.checkpoint.file of -config)")
	origin := fs.String("origin", "", "checkpoint-key: the log's origin, which names the key")
	out := fs.String("out", "", "checkpoint-key: the key file to create")
	hsm := fs.Bool("hsm", false, "checkpoint-key: create the key pair on the HSM of -config")
	if err := parseCommand(fs, args); err != nil {
		return err
	}
	if cmd == "checkpoint-key" && *hsm {
		if *cfgPath == "" || *out != "" || fs.NArg() != 0 {
			fs.Usage()
			return errUsage
		}
		return checkpointKeyHSM(ctx, *cfgPath, stdout)
	}
	if cmd == "checkpoint-key" {
		if *origin == "" || *out == "" || fs.NArg() != 0 {
			fs.Usage()
			return errUsage
		}
		return checkpointKey(*origin, *out, stdout)
	}
	if *cfgPath != "" {
		cfg, err := config.Load(*cfgPath, os.Getenv)
		if err != nil {
			return err
		}
		if *logPath == "" {
			*logPath = cfg.Audit.File
		}
		if *cpPath == "" {
			*cpPath = cfg.Audit.Checkpoint.File
		}
	}
	if *logPath == "" {
		fmt.Fprintln(stderr, "cardgate audit "+cmd+": name the audit file with --log FILE or -config FILE")
		return errUsage
	}
	switch {
	case cmd == "prove" && fs.NArg() == 1 && *cpPath != "":
		return proveForward(ctx, *logPath, *cpPath, fs.Arg(0), stdout)
	case cmd == "consistency" && fs.NArg() == 2:
		return proveConsistency(ctx, *logPath, fs.Arg(0), fs.Arg(1), stdout)
	}
	fs.Usage()
	return errUsage
}

// errNoRecords is wrapped when the forward has no record under the checkpoint.
var errNoRecords = errors.New("no audit record of this forward in the checkpointed log")

func readCheckpoint(ctx context.Context, path string) ([]byte, checkpoint.Checkpoint, error) {
	msg, err := fileread.Read(ctx, path, checkpoint.MaxFile)
	if err != nil {
		return nil, checkpoint.Checkpoint{}, fmt.Errorf("checkpoint: %w", err)
	}
	c, err := checkpoint.ParseUnverified(msg)
	if err != nil {
		return nil, c, fmt.Errorf("%s: %w", path, err)
	}
	return msg, c, nil
}

func proveForward(ctx context.Context, logPath, cpPath, id string, stdout io.Writer) error {
	msg, cp, err := readCheckpoint(ctx, cpPath)
	if err != nil {
		return err
	}
	root, proofs, err := audit.ProveLines(logPath, cp.Size, audit.MatchForward(id))
	if err != nil {
		return err
	}
	if root != cp.Root {
		return fmt.Errorf("audit prove: %s: %w: the file was changed after the checkpoint was signed", logPath, checkpoint.ErrRootMismatch)
	}
	if len(proofs) == 0 {
		return fmt.Errorf("audit prove: forward %s: %w (size %d); it may be in a later checkpoint", id, errNoRecords, cp.Size)
	}
	var b []byte
	for _, p := range proofs {
		b = checkpoint.AppendInclusion(b, p.Index, p.Line, p.Proof, msg)
	}
	_, err = stdout.Write(b)
	return err
}

func proveConsistency(ctx context.Context, logPath, oldPath, newPath string, stdout io.Writer) error {
	_, old, err := readCheckpoint(ctx, oldPath)
	if err != nil {
		return err
	}
	_, cur, err := readCheckpoint(ctx, newPath)
	if err != nil {
		return err
	}
	if old.Origin != cur.Origin {
		return fmt.Errorf("audit consistency: the checkpoints name different logs (%s, %s)", old.Origin, cur.Origin)
	}
	if old.Size > cur.Size {
		return fmt.Errorf("audit consistency: OLD has size %d, larger than NEW's %d: swap them", old.Size, cur.Size)
	}
	r1, r2, p, err := audit.ProveConsistency(logPath, old.Size, cur.Size)
	if err != nil {
		return err
	}
	if r1 != old.Root || r2 != cur.Root {
		return fmt.Errorf("audit consistency: %s: %w (OLD: %t, NEW: %t)", logPath, checkpoint.ErrRootMismatch, r1 == old.Root, r2 == cur.Root)
	}
	_, err = stdout.Write(checkpoint.AppendConsistency(nil, old.Size, cur.Size, p))
	return err
}

// checkpointKey creates a local signer's key file and prints its
// verifier key.
func checkpointKey(origin, out string, stdout io.Writer) error {
	if !checkpoint.ValidOrigin(origin) {
		return errors.New("audit checkpoint-key: --origin must be printable ASCII without spaces or '+'")
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("audit checkpoint-key: %w", err)
	}
	if _, err := f.WriteString(skey + "\n"); err != nil {
		_ = f.Close()
		return fmt.Errorf("audit checkpoint-key: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("audit checkpoint-key: %w", err)
	}
	_, err = fmt.Fprintln(stdout, vkey)
	return err
}

// checkpointKeyHSM creates the checkpoint key pair on the configured
// token and prints its verifier key.
func checkpointKeyHSM(ctx context.Context, cfgPath string, stdout io.Writer) error {
	cfg, err := config.Load(cfgPath, os.Getenv)
	if err != nil {
		return err
	}
	cc := cfg.Audit.Checkpoint
	if cc.Signer != config.CheckpointSignerHSM {
		return errors.New("audit checkpoint-key --hsm: audit.checkpoint.signer is not hsm in " + cfgPath)
	}
	hsm := pkcs11Config(cfg.Keys.HSM)
	if err := vaultclient.GeneratePKCS11NoteKey(ctx, hsm, cc.HSMKeyLabel); err != nil {
		return err
	}
	s, err := vaultclient.OpenPKCS11NoteSigner(ctx, hsm, cc.Origin, cc.HSMKeyLabel)
	if err != nil {
		return err
	}
	defer s.Close()
	_, err = fmt.Fprintln(stdout, s.VerifierKey())
	return err
}
