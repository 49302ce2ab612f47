package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/audit"
)

// A load heard before the audit log opens is written when it does; later
// loads are written as they come; both verify.
func TestAllowlistRecorder(t *testing.T) {
	ctx := context.Background()
	r := newAllowlistRecorder(slog.New(slog.DiscardHandler), time.Second)
	sha := strings.Repeat("0a", 32)
	r.onLoad(ctx, allowlist.LoadEvent{Accepted: true, Version: 3, SHA256: sha, Signers: []string{"alice@audit.example", "alice@audit.example"}})

	path := filepath.Join(t.TempDir(), "audit.log")
	fs, err := audit.OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	l, err := audit.New(audit.Options{Sinks: []audit.Sink{fs}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.attach(ctx, l); err != nil {
		t.Fatalf("attach: %v", err)
	}
	r.onLoad(ctx, allowlist.LoadEvent{Problem: allowlist.ProblemRollback, SHA256: sha})

	b, _ := os.ReadFile(path)
	got := string(b)
	for _, want := range []string{
		`"kind":"allowlist"`, `"allowlist_version":3,"allowlist_sha256":"` + sha + `","signers":["alice@audit.example"],"decision":"allow"`,
		`"decision":"deny","reason":"rollback"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("audit log lacks %s:\n%s", want, got)
		}
	}
	if rep, err := audit.Verify(strings.NewReader(got)); err != nil || rep.Records != 2 {
		t.Errorf("Verify = %v, %d records", err, rep.Records)
	}
}
