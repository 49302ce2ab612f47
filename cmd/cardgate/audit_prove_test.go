package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/audit/checkpoint"
)

// proveFixture writes forwards fwd_a and fwd_b to an audit file kept with
// its tree, publishes a checkpoint with a key made by `audit
// checkpoint-key`, and returns the paths and the verifier key.
func proveFixture(t *testing.T) (dir, logPath, cpPath, vkey string, pub *checkpoint.Publisher, l *audit.Log) {
	t.Helper()
	ctx := context.Background()
	dir = t.TempDir()
	keyPath := filepath.Join(dir, "checkpoint.key")
	var out bytes.Buffer
	if err := run(ctx, []string{"audit", "checkpoint-key", "--origin", "cardgate.test/audit/dev-1", "--out", keyPath}, &out, &out); err != nil {
		t.Fatalf("checkpoint-key: %v\n%s", err, out.String())
	}
	vkey = strings.TrimSpace(out.String())
	if err := run(ctx, []string{"audit", "checkpoint-key", "--origin", "cardgate.test/audit/dev-1", "--out", keyPath}, &out, &out); err == nil {
		t.Error("checkpoint-key over an existing file succeeded")
	}
	signer, err := checkpoint.OpenLocalSigner(ctx, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if signer.VerifierKey() != vkey {
		t.Fatalf("verifier key printed %q, signer's %q", vkey, signer.VerifierKey())
	}
	logPath, cpPath = filepath.Join(dir, "audit.log"), filepath.Join(dir, "checkpoint")
	fs, tree, err := audit.OpenFileSinkTree(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	if l, err = audit.New(audit.Options{Sinks: []audit.Sink{fs}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"fwd_a", "fwd_b", "fwd_a"} {
		if _, err := l.Append(ctx, audit.Record{Kind: audit.KindIntent, RequestID: "req_" + id, ForwardID: id, Caller: "billing",
			Token: "tok_abc", Destination: "acme", Decision: audit.DecisionAllow}); err != nil {
			t.Fatal(err)
		}
	}
	pub, err = checkpoint.New(ctx, checkpoint.Options{Origin: "cardgate.test/audit/dev-1", Path: cpPath, Signer: signer, Interval: time.Second, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Attach(tree); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	return dir, logPath, cpPath, vkey, pub, l
}

func TestRunAuditProve(t *testing.T) {
	ctx := context.Background()
	dir, logPath, cpPath, vkey, _, _ := proveFixture(t)
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"audit", "prove", "--log", logPath, "--checkpoint", cpPath, "fwd_a"}, &out, &errOut); err != nil {
		t.Fatalf("prove = %v\n%s", err, errOut.String())
	}
	// Two tlog-proofs, each followed by the checkpoint, which the note
	// package verifies; each line is leaf 0 and 2 of a tree of 3.
	parts := strings.Split(out.String(), checkpoint.ProofHeader+"\n")
	if len(parts) != 3 || !strings.Contains(parts[1], "\nindex 0\n") || !strings.Contains(parts[2], "\nindex 2\n") {
		t.Fatalf("prove output:\n%s", out.String())
	}
	v, _ := note.NewVerifier(vkey)
	_, cpText, _ := strings.Cut(parts[2], "\n\n")
	if _, err := note.Open([]byte(cpText), note.VerifierList(v)); err != nil {
		t.Errorf("the checkpoint in the proof does not verify: %v", err)
	}

	for _, tc := range []struct {
		name string
		args []string
		want error
	}{
		{"unknown forward", []string{"fwd_z"}, errNoRecords},
		{"no log", []string{"--log", filepath.Join(dir, "nothing"), "fwd_a"}, os.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"audit", "prove", "--log", logPath, "--checkpoint", cpPath}, tc.args...)
			if err := run(ctx, args, &out, &errOut); !errors.Is(err, tc.want) {
				t.Errorf("prove = %v, want %v", err, tc.want)
			}
		})
	}

	// A file changed after the checkpoint is refused, not proven.
	raw, _ := os.ReadFile(logPath)
	changed := filepath.Join(dir, "changed.log")
	os.WriteFile(changed, bytes.Replace(raw, []byte("req_fwd_b"), []byte("req_fwd_c"), 1), 0o600)
	if err := run(ctx, []string{"audit", "prove", "--log", changed, "--checkpoint", cpPath, "fwd_a"}, &out, &errOut); !errors.Is(err, checkpoint.ErrRootMismatch) {
		t.Errorf("prove on a changed file = %v, want ErrRootMismatch", err)
	}
	// So is one cut short.
	short := filepath.Join(dir, "short.log")
	os.WriteFile(short, raw[:bytes.IndexByte(raw, '\n')+1], 0o600)
	if err := run(ctx, []string{"audit", "prove", "--log", short, "--checkpoint", cpPath, "fwd_a"}, &out, &errOut); !errors.Is(err, audit.ErrShortLog) {
		t.Errorf("prove on a truncated file = %v, want ErrShortLog", err)
	}
}

func TestRunAuditConsistency(t *testing.T) {
	ctx := context.Background()
	dir, logPath, cpPath, _, pub, l := proveFixture(t)
	old := filepath.Join(dir, "checkpoint.old")
	b, _ := os.ReadFile(cpPath)
	os.WriteFile(old, b, 0o644)
	if _, err := l.Append(ctx, audit.Record{Kind: audit.KindDenied, RequestID: "req_x", Caller: "billing", Decision: audit.DecisionDeny, Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"audit", "consistency", "--log", logPath, old, cpPath}, &out, &errOut); err != nil {
		t.Fatalf("consistency = %v\n%s", err, errOut.String())
	}
	ls := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(ls) < 4 || ls[0] != checkpoint.ConsistencyHeader || ls[1] != "old 3" || ls[2] != "new 4" {
		t.Fatalf("consistency output:\n%s", out.String())
	}
	// The proof checks out with tlog, independently of the prover's library.
	o, _ := checkpoint.ParseUnverified(b)
	nb, _ := os.ReadFile(cpPath)
	n, _ := checkpoint.ParseUnverified(nb)
	var p tlog.TreeProof
	for _, l := range ls[3:] {
		h, err := tlog.ParseHash(l)
		if err != nil {
			t.Fatal(err)
		}
		p = append(p, h)
	}
	if err := tlog.CheckTree(p, int64(n.Size), n.Root, int64(o.Size), o.Root); err != nil {
		t.Errorf("tlog.CheckTree: %v", err)
	}
	if err := run(ctx, []string{"audit", "consistency", "--log", logPath, cpPath, old}, &out, &errOut); err == nil {
		t.Error("consistency with OLD and NEW swapped succeeded")
	}
}
