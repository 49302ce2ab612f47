package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/config"
	"github.com/cardgate/cardgate/internal/redistest"
)

// auditTestLog writes three records to a file and, when stream is set, to
// a Redis stream, and returns the file's path and the last record.
func auditTestLog(t *testing.T, stream *audit.RedisStreamSink) (string, audit.Record) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	fs, err := audit.OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	sinks := []audit.Sink{fs}
	if stream != nil {
		sinks = append(sinks, stream)
	}
	l, err := audit.New(audit.Options{Sinks: sinks})
	if err != nil {
		t.Fatal(err)
	}
	var last audit.Record
	for _, id := range []string{"req_1", "req_2", "req_3"} {
		last, err = l.Append(context.Background(), audit.Record{
			Kind: audit.KindDenied, RequestID: id, Caller: "billing",
			Decision: audit.DecisionDeny, Reason: "destination_not_allowed",
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return path, last
}

func TestRunAuditVerify(t *testing.T) {
	path, last := auditTestLog(t, nil)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tampered := filepath.Join(t.TempDir(), "tampered.log")
	if err := os.WriteFile(tampered, bytes.Replace(raw, []byte("req_2"), []byte("req_9"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	otherHash := strings.Repeat("ab", 32)
	empty := filepath.Join(t.TempDir(), "empty.log")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(t.TempDir(), "garbage.log")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not json\n"), audit.MaxProblems+2), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		args    []string
		wantErr error // nil: success; errUsage; or audit.ErrVerifyFailed
		wantOut []string
	}{
		{"untouched", []string{"verify", path}, nil,
			[]string{"chain " + last.Chain + ": 3 records, seq 1-3, last hash " + last.Hash, "ok: 3 records in 1 chains verified"}},
		{"modified", []string{"verify", tampered}, audit.ErrVerifyFailed,
			[]string{"line 2: modified: chain " + last.Chain + " seq 2: ", "FAILED: 1 problems in 3 records"}},
		{"anchor ok, flag after file", []string{"verify", path, "--expect-last", last.Hash}, nil, []string{"ok: "}},
		{"anchor missing", []string{"verify", "--expect", otherHash, path}, audit.ErrVerifyFailed,
			[]string{"log: anchor: anchor " + otherHash + " is not the hash"}},
		{"not a log", []string{"verify", garbage}, audit.ErrVerifyFailed,
			[]string{"… and 2 more problems, not listed\n", fmt.Sprintf("FAILED: %d problems in %d records", audit.MaxProblems+2, audit.MaxProblems+2)}},
		{"empty file", []string{"verify", empty}, errEmptyLog, []string{"FAILED: no records"}},
		{"empty file allowed", []string{"verify", empty, "--allow-empty"}, nil, []string{"ok: 0 records in 0 chains verified"}},
		{"anchor not hex", []string{"verify", "--expect", "xyz", path}, errUsage, nil},
		{"no file", []string{"verify"}, errUsage, nil},
		{"two files", []string{"verify", path, path}, errUsage, nil},
		{"file and redis", []string{"verify", "--redis", "127.0.0.1:1", "--stream", "k", path}, errUsage, nil},
		{"redis without stream", []string{"verify", "--redis", "127.0.0.1:1"}, errUsage, nil},
		{"unknown subcommand", []string{"append"}, errUsage, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := runAudit(context.Background(), tt.args, &stdout, &stderr)
			if (tt.wantErr == nil) != (err == nil) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("runAudit(%q) = %v, want %v\nstdout:\n%s\nstderr:\n%s", tt.args, err, tt.wantErr, &stdout, &stderr)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("runAudit(%q) stdout lacks %q:\n%s", tt.args, w, &stdout)
				}
			}
		})
	}
	if err := runAudit(context.Background(), []string{"verify", filepath.Join(t.TempDir(), "missing")}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil || errors.Is(err, errUsage) {
		t.Errorf("runAudit on a missing file = %v, want an open error", err)
	}
}

func TestRunAuditVerifyRedis(t *testing.T) {
	srv := redistest.Start(t)
	const key = "cardgate:audit"
	sink, err := audit.NewRedisStreamSink(audit.RedisStreamOptions{Client: srv.Client(), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	_, last := auditTestLog(t, sink)

	var stdout, stderr bytes.Buffer
	if err := runAudit(context.Background(), []string{"verify", "--redis", srv.Addr(), "--stream", key, "--expect-last", last.Hash}, &stdout, &stderr); err != nil {
		t.Fatalf("runAudit verify --redis = %v\n%s%s", err, &stdout, &stderr)
	}
	if !strings.Contains(stdout.String(), "ok: 3 records in 1 chains verified") {
		t.Errorf("stdout:\n%s", &stdout)
	}

	// A stream that does not exist holds no records: that fails, unless
	// the operator says it is expected.
	stdout.Reset()
	err = runAudit(context.Background(), []string{"verify", "--redis", srv.Addr(), "--stream", "cardgate:no-such-stream"}, &stdout, &stderr)
	if !errors.Is(err, errEmptyLog) || !strings.Contains(err.Error(), "stream cardgate:no-such-stream holds no records") {
		t.Errorf("runAudit on a missing stream = %v, want errEmptyLog naming the stream\n%s", err, &stdout)
	}
	if err := runAudit(context.Background(), []string{"verify", "--allow-empty", "--redis", srv.Addr(), "--stream", "cardgate:no-such-stream"}, &stdout, &stderr); err != nil {
		t.Errorf("runAudit --allow-empty on a missing stream = %v, want nil", err)
	}

	// Delete the middle entry: the command names the stream id after it.
	c := srv.Client()
	msgs, err := c.XRange(context.Background(), key, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	c.XDel(context.Background(), key, msgs[1].ID)
	stdout.Reset()
	err = runAudit(context.Background(), []string{"verify", "--redis", srv.Addr(), "--stream", key}, &stdout, &stderr)
	if !errors.Is(err, audit.ErrVerifyFailed) || !strings.Contains(stdout.String(), "stream id "+msgs[2].ID+": deleted") {
		t.Errorf("runAudit after XDEL = %v, stdout:\n%s", err, &stdout)
	}
}

// TestRunAuditVerifyEmptyNeverSaysOK: a script that greps for "ok:" must
// not pass on an empty log.
func TestRunAuditVerifyEmptyNeverSaysOK(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.log")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err := runAudit(context.Background(), []string{"verify", empty}, &stdout, &stderr)
	if !errors.Is(err, errEmptyLog) || strings.Contains(stdout.String(), "ok:") {
		t.Errorf("runAudit(verify empty) = %v, stdout %q; want errEmptyLog and no \"ok:\"", err, &stdout)
	}
}

// TestSpecialFilesRefusedPromptly: a FIFO named as the audit file or the
// configuration is refused at once, never waited on (a reader of a FIFO
// blocks until a writer comes, and ignores SIGTERM while it does).
func TestSpecialFilesRefusedPromptly(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := verifyFile(fifo, nil); err == nil {
			t.Error("verifyFile(fifo) = nil error, want a refusal")
		}
		if _, err := config.Load(fifo, func(string) string { return "" }); err == nil {
			t.Error("config.Load(fifo) = nil error, want a refusal")
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a read of a FIFO blocked")
	}
}
