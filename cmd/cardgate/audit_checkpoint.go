package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/audit/checkpoint"
	"github.com/cardgate/cardgate/config"
	"github.com/cardgate/cardgate/vaultclient"
)

// openAuditFile opens audit.file. With audit.checkpoint configured it also
// keeps the file's Merkle tree and returns the checkpoint publisher, after
// checking that the file still extends the last checkpoint published: if
// it does not, the start is refused.
// What it opens that needs closing (an HSM session) is appended to
// *closers.
func openAuditFile(ctx context.Context, cfg config.Config, keys vaultclient.Keyer, log *slog.Logger, closers *[]io.Closer) (*audit.FileSink, *checkpoint.Publisher, error) {
	cc := cfg.Audit.Checkpoint
	if cc.Origin == "" {
		f, err := audit.OpenFileSink(cfg.Audit.File)
		if err != nil {
			return nil, nil, fmt.Errorf("audit.file: %w", err)
		}
		return f, nil, nil
	}
	signer, err := checkpointSigner(ctx, cfg, keys)
	if err != nil {
		return nil, nil, err
	}
	if c, ok := signer.(io.Closer); ok {
		*closers = append(*closers, c)
	}
	pub, err := checkpoint.New(ctx, checkpoint.Options{
		Origin: cc.Origin, Path: cc.File, Signer: signer,
		Interval: cc.Interval, Timeout: cc.Timeout, Logger: log,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("audit.checkpoint: %w", err)
	}
	last, _ := pub.Last()
	f, tree, err := audit.OpenFileSinkTree(cfg.Audit.File, last.Size)
	if err != nil {
		return nil, nil, fmt.Errorf("audit.file: %w", err)
	}
	if err := pub.Attach(tree); err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("refusing to start: audit.file: %w (keep both files as evidence; to start a new log, move the audit file and the checkpoint aside)", err)
	}
	log.Info("audit checkpoints on", slog.String("origin", cc.Origin), slog.String("verifier_key", signer.VerifierKey()), slog.String("file", cc.File))
	return f, pub, nil
}

// checkpointSigner builds audit.checkpoint's signer.
func checkpointSigner(ctx context.Context, cfg config.Config, keys vaultclient.Keyer) (checkpoint.Signer, error) {
	cc := cfg.Audit.Checkpoint
	switch cc.Signer {
	case config.CheckpointSignerLocal:
		s, err := checkpoint.OpenLocalSigner(ctx, cc.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("audit.checkpoint.key_file: %w", err)
		}
		return s, nil
	case config.CheckpointSignerVault:
		t, ok := keys.(*vaultclient.Transit)
		if !ok {
			return nil, errors.New("audit.checkpoint.signer: vault needs keys.backend: vault")
		}
		s, err := t.NoteSigner(ctx, cc.Origin, cc.VaultKey, cc.VaultKeyVersion)
		if err != nil {
			return nil, fmt.Errorf("audit.checkpoint.vault_key: %w", err)
		}
		return s, nil
	case config.CheckpointSignerHSM:
		s, err := vaultclient.OpenPKCS11NoteSigner(ctx, pkcs11Config(cfg.Keys.HSM), cc.Origin, cc.HSMKeyLabel)
		if err != nil {
			return nil, fmt.Errorf("audit.checkpoint.hsm_key_label: %w", err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("audit.checkpoint.signer: %q is not supported", cc.Signer)
}

// publishCheckpoint signs the final checkpoint at shutdown, once no
// forward can append any more.
func (g *guards) publishCheckpoint(ctx context.Context) {
	if g == nil || g.checkpoints == nil {
		return
	}
	if err := g.checkpoints.Publish(ctx); err != nil {
		g.log.Error("final audit checkpoint not published", slog.String("error", err.Error()))
	}
}

// routeCheckpoint serves the last published checkpoint on the admin
// listener at GET /audit/checkpoint, when both are configured.
func (g *gateway) routeCheckpoint() {
	if g.admin == nil || g.guards == nil || g.guards.checkpoints == nil {
		return
	}
	if mux, ok := g.admin.Handler.(*http.ServeMux); ok {
		mux.Handle("GET /audit/checkpoint", g.guards.checkpoints)
	}
}
