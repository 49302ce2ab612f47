package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestAllowlistHelpRunsNothing: -h anywhere among an allowlist command's
// flags and operands prints the usage and does nothing else, as for every
// other command (issue 13, item 17). It once went on to run the command:
// "allowlist sign --key K -h FILE" signed FILE, "allowlist next --out NEW
// -h FILE" wrote NEW, and show and diff printed their output after the
// usage.
func TestAllowlistHelpRunsNothing(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	if err := os.WriteFile(p("allowlist.yaml"), allowlistDoc(time.Now()), 0o644); err != nil {
		t.Fatal(err)
	}
	keygen(t, "-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f", p("alice"))
	pub, err := os.ReadFile(p("alice.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p("allowed_signers"), []byte(`alice namespaces="cardgate-allowlist@v1" `+string(pub)), 0o644); err != nil {
		t.Fatal(err)
	}
	files := func() []string {
		var names []string
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	want := files()

	tests := []struct {
		name string
		args []string
	}{
		{"sign, -h before FILE", []string{"sign", "--key", p("alice"), "-h", p("allowlist.yaml")}},
		{"sign, -h after FILE", []string{"sign", "--key", p("alice"), p("allowlist.yaml"), "-h"}},
		{"next, -h before FILE", []string{"next", "--out", p("next.yaml"), "-h", p("allowlist.yaml")}},
		{"next, -h after FILE", []string{"next", p("allowlist.yaml"), "-h", "--out", p("next.yaml")}},
		{"show", []string{"show", "-h", p("allowlist.yaml")}},
		{"diff", []string{"diff", "-h", p("allowlist.yaml"), p("allowlist.yaml")}},
		{"verify", []string{"verify", "--allowed-signers", p("allowed_signers"), "--threshold", "1", "--environment", "test", "-h", p("allowlist.yaml")}},
		{"egress-policy", []string{"egress-policy", "-format", "kubernetes", "-namespace", "cardgate", "-h", p("allowlist.yaml")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			var stdout, stderr bytes.Buffer
			err := runAllowlist(context.Background(), args, &stdout, &stderr)
			if !errors.Is(err, errHelp) {
				t.Errorf("runAllowlist(%q) = %v, want errHelp (exit 0)", args, err)
			}
			if !strings.Contains(stderr.String(), "usage: cardgate allowlist "+args[0]) {
				t.Errorf("runAllowlist(%q) printed no usage:\n%s", args, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("runAllowlist(%q) ran the command, stdout:\n%s", args, stdout.String())
			}
			got := files()
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("runAllowlist(%q) changed the directory (-want +got):\n%s", args, diff)
			}
			for _, n := range got { // undo, so that the next case starts clean
				if !slices.Contains(want, n) {
					os.Remove(p(n))
				}
			}
		})
	}
}
