package integration

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
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

// TestServeReportsEveryConfigProblem: serve reports every problem of its
// configuration at once (keys, values, cross-key checks and unreadable
// files), each naming its key, and connects to nothing before it does.
func TestServeReportsEveryConfigProblem(t *testing.T) {
	dir := t.TempDir()
	// A Redis stand-in that only counts connections: none may come.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	cfg := fmt.Sprintf(`mode: production
environment: test
listen:
  addr: 127.0.0.1:0
  read_timeout: 15
  tls:
    cert_file: %[1]s/gateway.crt
    key_file: %[1]s/gateway.key
    client_ca_file: %[1]s/callers-ca.pem
allowlist:
  path: %[1]s/allowlist.yaml
  signatures_dir: %[1]s/allowlist.sigs
  allowed_signers: %[1]s/allowed_signers
  threshold: two
store:
  backend: redis
  redis:
    adress: x
    addrs: [%[2]s]
keys:
  backend: local
  local:
    path: %[1]s/keyring.json
audit:
  file: %[1]s/audit.log
`, dir, ln.Addr())
	path := filepath.Join(dir, "cardgate.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := runCLI(t, dir, "serve", "-config", path)
	if code != 1 {
		t.Fatalf("serve with a broken configuration exited %d, want 1:\n%s", code, out)
	}
	for _, want := range []string{
		"listen.read_timeout (line 5): 15 has no unit: write a duration with a unit, e.g. 15s",
		`allowlist.threshold (line 14): "two" is not a whole number`,
		"store.redis.adress (line 18): unknown key; did you mean store.redis.addrs?",
		"keys.backend (line 21): the local keyring is for development only",
		`listen.tls.cert_file (line 7): "` + dir + `/gateway.crt" does not exist`,
		`listen.tls.client_ca_file (line 9): "` + dir + `/callers-ca.pem" does not exist`,
		`allowlist.path (line 11): "` + dir + `/allowlist.yaml" does not exist`,
		`allowlist.signatures_dir (line 12): "` + dir + `/allowlist.sigs" does not exist`,
		`keys.local.path (line 23): "` + dir + `/keyring.json" does not exist`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("serve's output lacks %q:\n%s", want, out)
		}
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("serve connected to Redis %d times before reporting its configuration", n)
	}
}
