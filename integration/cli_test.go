package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs the built binary in dir and returns its exit code and
// combined output.
func runCLI(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		t.Fatalf("cardgate %s: %v", strings.Join(args, " "), err)
	}
	return 0, string(out)
}

// TestCLIHelp: -h on every command and subcommand prints its usage and
// exits 0, and creates nothing (keys init -h once made a keyring file
// named "-h"). A bad flag still exits 1.
func TestCLIHelp(t *testing.T) {
	tests := [][]string{
		{"-h"}, {"help"},
		{"serve", "-h"}, {"demo", "-h"}, {"probe", "-h"},
		{"keys", "-h"}, {"keys", "init", "-h"}, {"keys", "status", "-h"}, {"keys", "rotate", "-h"},
		{"keys", "rewrap", "-h"}, {"keys", "retire", "-h"},
		{"audit", "-h"}, {"audit", "verify", "-h"},
		{"canary", "-h"}, {"canary", "add", "tok_x", "-h"},
		{"destinations", "-h"}, {"destinations", "status", "-h"},
		{"allowlist", "-h"}, {"allowlist", "verify", "-h"}, {"allowlist", "sign", "-h"},
		{"allowlist", "diff", "-h"}, {"allowlist", "show", "-h"}, {"allowlist", "next", "-h"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			dir := t.TempDir()
			code, out := runCLI(t, dir, args...)
			if code != 0 {
				t.Errorf("cardgate %s exited %d, want 0:\n%s", strings.Join(args, " "), code, out)
			}
			if !strings.Contains(out, "usage: cardgate") {
				t.Errorf("cardgate %s printed no usage:\n%s", strings.Join(args, " "), out)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("cardgate %s created %s", strings.Join(args, " "), left[0].Name())
			}
		})
	}
	for _, args := range [][]string{{"serve", "-nope"}, {"keys", "init", "-nope"}, {"allowlist", "next", "x", "-nope"}} {
		if code, out := runCLI(t, t.TempDir(), args...); code != 1 {
			t.Errorf("cardgate %s exited %d, want 1:\n%s", strings.Join(args, " "), code, out)
		}
	}
}

// TestCLIFlagsAfterOperands: flags are accepted after the operands, as
// AUDITING.md writes "allowlist next OLD --out NEW".
func TestCLIFlagsAfterOperands(t *testing.T) {
	dir := t.TempDir()
	doc, err := os.ReadFile("../allowlist/testdata/allowlist.yaml")
	if err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, "allowlist.yaml")
	if err := os.WriteFile(old, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	next := filepath.Join(dir, "next.yaml")
	if code, out := runCLI(t, dir, "allowlist", "next", old, "--out", next, "--validity", "720h"); code != 0 {
		t.Fatalf("allowlist next OLD --out NEW exited %d:\n%s", code, out)
	}
	raw, err := os.ReadFile(next)
	if err != nil {
		t.Fatalf("allowlist next OLD --out NEW wrote nothing: %v", err)
	}
	if !strings.Contains(string(raw), "\nversion: 2\n") {
		t.Errorf("NEW does not hold version 2:\n%s", raw)
	}

	// "keys init FILE" still creates a development keyring, with a flag
	// after the file too.
	if code, out := runCLI(t, dir, "keys", "init", "keyring.json"); code != 0 {
		t.Fatalf("keys init FILE exited %d:\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "keyring.json")); err != nil {
		t.Errorf("keys init FILE: %v", err)
	}

	// audit verify with its flag after the file: an empty log passes only
	// with --allow-empty.
	empty := filepath.Join(dir, "audit.log")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := runCLI(t, dir, "audit", "verify", empty); code != 1 || !strings.Contains(out, "holds no records") {
		t.Errorf("audit verify EMPTY exited %d, want 1 saying it holds no records:\n%s", code, out)
	}
	if code, out := runCLI(t, dir, "audit", "verify", empty, "--allow-empty"); code != 0 {
		t.Errorf("audit verify EMPTY --allow-empty exited %d, want 0:\n%s", code, out)
	}
}
