package main

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardgate/cardgate/audit"
)

// logHeads puts the audit chain's head into the operational log, so that a
// truncated audit log can be caught against it.
func TestLogHeads(t *testing.T) {
	sink, err := audit.OpenFileSink(filepath.Join(t.TempDir(), "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	l, err := audit.New(audit.Options{Sinks: []audit.Sink{sink}})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := l.Append(context.Background(), audit.Record{
		Kind: audit.KindDenied, RequestID: "req_abc", Caller: "billing", Decision: audit.DecisionDeny, Reason: "destination_not_allowed",
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	g := &guards{auditor: l, log: slog.New(slog.NewJSONHandler(&buf, nil))}
	g.logHead(false)
	if !strings.Contains(buf.String(), `"msg":"audit chain head"`) || !strings.Contains(buf.String(), rec.Hash) {
		t.Errorf("log = %s, want the chain head with hash %s", buf.String(), rec.Hash)
	}
	// An unchanged head is not repeated, except as the final line.
	n := strings.Count(buf.String(), "audit chain head")
	g.logHead(false)
	if strings.Count(buf.String(), "audit chain head") != n {
		t.Errorf("an unchanged head was logged again:\n%s", buf.String())
	}
	g.logHead(true)
	if !strings.Contains(buf.String(), `"final":true`) {
		t.Errorf("no final head line:\n%s", buf.String())
	}
}
