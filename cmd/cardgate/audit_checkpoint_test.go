package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/audit/checkpoint"
	"github.com/cardgate/cardgate/config"
)

// The gateway refuses to start on an audit file that no longer extends
// the checkpoint it published: cut short, or changed.
func TestOpenAuditFileChecksLastCheckpoint(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Mode = config.ModeDev
	cfg.Audit.File = filepath.Join(dir, "audit.log")
	cfg.Audit.Checkpoint = config.Checkpoint{
		Origin: "cardgate.test/audit/dev-1", File: filepath.Join(dir, "checkpoint"),
		Interval: time.Minute, Timeout: time.Second, Signer: config.CheckpointSignerLocal,
		KeyFile: filepath.Join(dir, "checkpoint.key"),
	}
	if err := checkpointKey(cfg.Audit.Checkpoint.Origin, cfg.Audit.Checkpoint.KeyFile, &strings.Builder{}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	var closers []io.Closer

	f, pub, err := openAuditFile(ctx, cfg, nil, log, &closers)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.New(audit.Options{Sinks: []audit.Sink{f}})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"req_1", "req_2", "req_3"} {
		if _, err := l.Append(ctx, audit.Record{Kind: audit.KindDenied, RequestID: id, Caller: "billing", Decision: audit.DecisionDeny, Reason: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	f.Close()
	raw, _ := os.ReadFile(cfg.Audit.File)

	// Reopened as it is, and with a line more: fine.
	f, _, err = openAuditFile(ctx, cfg, nil, log, &closers)
	if err != nil {
		t.Fatalf("reopen = %v", err)
	}
	f.Close()

	for _, tc := range []struct {
		name string
		body string
	}{
		{"truncated", string(raw[:strings.LastIndexByte(string(raw[:len(raw)-1]), '\n')+1])},
		{"rewritten", strings.Replace(string(raw), "req_2", "req_9", 1)},
		{"emptied", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(cfg.Audit.File, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := openAuditFile(ctx, cfg, nil, log, &closers)
			if !errors.Is(err, checkpoint.ErrNotExtended) || !strings.Contains(err.Error(), "refusing to start") {
				t.Errorf("openAuditFile(%s) = %v, want a refusal wrapping ErrNotExtended", tc.name, err)
			}
		})
	}
}
