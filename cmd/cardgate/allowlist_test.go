package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cardgate/cardgate/allowlist"
)

// allowlistDoc is a valid version 1 around now.
func allowlistDoc(now time.Time) []byte {
	return fmt.Appendf(nil, `# reviewers' comment that must survive "next"
format: cardgate.allowlist/v1
namespace: cardgate-allowlist@v1
environment: test
version: 1  # first approved version
issued_at: %s
expires: %s
prev_sha256: ""
destinations:
  - id: acme-charges
    purpose: card payments
    owner: billing@example.com
    url: https://api.acme.example/v1/charges
    methods: [POST]
    callers: [billing]
    fields: [number, cvc]
`, now.Add(-time.Hour).UTC().Format(time.RFC3339), now.Add(30*24*time.Hour).UTC().Format(time.RFC3339))
}

func keygen(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ssh-keygen", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
	}
}

func runAL(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := runAllowlist(context.Background(), args, &out, &errb)
	return out.String() + errb.String(), err
}

// TestAllowlistCLI walks an auditor's cycle: sign v1 with cardgate and
// ssh-keygen, verify, start v2 with next, diff, sign, verify the chain,
// then see a tampered file refused by cardgate and by ssh-keygen.
func TestAllowlistCLI(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	keygen(t, "-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f", p("alice"))
	keygen(t, "-q", "-t", "ecdsa", "-N", "", "-C", "bob", "-f", p("bob"))
	var signers bytes.Buffer
	for _, who := range []string{"alice", "bob"} {
		pub, err := os.ReadFile(p(who + ".pub"))
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(pub))
		signers.WriteString(who + "@audit.example " + f[0] + " " + f[1] + "\n")
	}
	if err := os.WriteFile(p("allowed_signers"), signers.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	v1 := allowlistDoc(time.Now())
	if err := os.WriteFile(p("v1.yaml"), v1, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(p("v1.sigs"), 0o700)
	if out, err := runAL(t, "sign", "--key", p("alice"), "--out", p("v1.sigs/alice.sig"), p("v1.yaml")); err != nil {
		t.Fatalf("sign = %v\n%s", err, out)
	}
	if out, err := runAL(t, "sign", "--key", p("alice"), "--out", p("v1.sigs/alice.sig"), p("v1.yaml")); err == nil {
		t.Fatalf("sign over an existing signature = nil error\n%s", out)
	}
	keygen(t, "-Y", "sign", "-f", p("bob"), "-n", allowlist.Namespace, p("v1.yaml"))
	if err := os.Rename(p("v1.yaml.sig"), p("v1.sigs/bob.sig")); err != nil {
		t.Fatal(err)
	}
	verify := []string{"verify", "--allowed-signers", p("allowed_signers"), "--threshold", "2", "--environment", "test"}
	out, err := runAL(t, append(verify, p("v1.yaml"))...)
	if err != nil || !strings.Contains(out, "threshold: 2 of 2 distinct signers: met") || !strings.Contains(out, "result: ACCEPTED") {
		t.Fatalf("verify v1 = %v\n%s", err, out)
	}
	if out, err := runAL(t, append([]string{"verify", "--allowed-signers", p("allowed_signers"), "--threshold", "2", "--environment", "prod"}, p("v1.yaml"))...); err == nil {
		t.Errorf("verify in the wrong environment = nil error\n%s", out)
	}

	// next: version+1, prev_sha256, comments kept.
	if out, err := runAL(t, "next", "--out", p("v2.yaml"), p("v1.yaml")); err != nil {
		t.Fatalf("next = %v\n%s", err, out)
	}
	v2, _ := os.ReadFile(p("v2.yaml"))
	if !bytes.Contains(v2, []byte("version: 2  # first approved version")) || !bytes.Contains(v2, []byte("# reviewers' comment")) ||
		!bytes.Contains(v2, []byte(`prev_sha256: "`+allowlist.SHA256Hex(v1)+`"`)) {
		t.Fatalf("next wrote:\n%s", v2)
	}
	v2 = bytes.Replace(v2, []byte("callers: [billing]"), []byte("callers: [billing, payouts]"), 1)
	os.WriteFile(p("v2.yaml"), v2, 0o600)
	out, err = runAL(t, "diff", "--fail-on-widen", p("v1.yaml"), p("v2.yaml"))
	if err == nil || !strings.Contains(out, "WIDENS ~ acme-charges: + caller payouts") {
		t.Errorf("diff = %v\n%s", err, out)
	}
	if out, err := runAL(t, "show", p("v2.yaml")); err != nil || !strings.Contains(out, "billing,payouts") {
		t.Errorf("show = %v\n%s", err, out)
	}
	os.Mkdir(p("v2.sigs"), 0o700)
	for _, who := range []string{"alice", "bob"} {
		if out, err := runAL(t, "sign", "--key", p(who), "--out", p("v2.sigs/"+who+".sig"), p("v2.yaml")); err != nil {
			t.Fatalf("sign v2 = %v\n%s", err, out)
		}
		// Stock ssh-keygen accepts what cardgate signed.
		cmd := exec.Command("ssh-keygen", "-Y", "verify", "-f", p("allowed_signers"), "-I", who+"@audit.example", "-n", allowlist.Namespace, "-s", p("v2.sigs/"+who+".sig"))
		cmd.Stdin = bytes.NewReader(v2)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("ssh-keygen -Y verify of cardgate's signature: %v\n%s", err, b)
		}
	}
	if out, err := runAL(t, append(verify, "--prev", p("v1.yaml"), p("v2.yaml"))...); err != nil {
		t.Fatalf("verify v2 --prev v1 = %v\n%s", err, out)
	}
	// v1 presented as the successor of v2 is a rollback.
	if out, err := runAL(t, append(verify, "--prev", p("v2.yaml"), "--sigs", p("v1.sigs"), p("v1.yaml"))...); err == nil {
		t.Errorf("verify v1 --prev v2 = nil error\n%s", out)
	}

	// Tampered: refused, non-zero exit, each signature reported invalid.
	os.WriteFile(p("v2.yaml"), append(v2, "  # sneaky\n"...), 0o600)
	out, err = runAL(t, append(verify, p("v2.yaml"))...)
	if err == nil || strings.Count(out, " invalid ") != 2 || !strings.Contains(out, "NOT met") {
		t.Errorf("verify tampered = %v\n%s", err, out)
	}
}

func TestAllowlistCLIUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"nope"}, {"verify"}, {"sign", "x"}, {"diff", "a"}} {
		if _, err := runAL(t, args...); err == nil {
			t.Errorf("runAllowlist(%q) = nil error, want a usage error", args)
		}
	}
	if out, err := runAL(t, "verify", "-h"); !errors.Is(err, errHelp) || !strings.Contains(out, "--allowed-signers") {
		t.Errorf("verify -h = %v, want errHelp\n%s", err, out)
	}
}

// startAgent runs a real ssh-agent in the foreground on a fresh socket,
// kills it when the test ends, and returns the socket's path.
func startAgent(t *testing.T) string {
	t.Helper()
	// A Unix socket path must fit in 108 bytes; t.TempDir's can be longer.
	dir, err := os.MkdirTemp("", "cg-agent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "agent.sock")
	cmd := exec.Command("ssh-agent", "-D", "-a", sock)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("ssh-agent: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			t.Errorf("ssh-agent (pid %d) did not exit within 5s of SIGKILL", cmd.Process.Pid)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			return sock
		}
		select {
		case err := <-exited:
			t.Fatalf("ssh-agent exited before listening: %v\n%s", err, out.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("ssh-agent did not create %s within 5s\n%s", sock, out.String())
		}
	}
}

// runBounded runs a command with SSH_AUTH_SOCK set, killed after 10s.
func runBounded(t *testing.T, sock string, stdin []byte, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// TestAllowlistSignAgent signs through a real ssh-agent holding keys made
// by ssh-keygen, and checks the signature with ssh-keygen -Y verify and
// with allowlist.Verify. RSA is in the table because an agent signs with
// SHA-1 unless asked for rsa-sha2-512, which the gateway requires.
func TestAllowlistSignAgent(t *testing.T) {
	tests := []struct {
		name    string
		keygen  []string
		wantAlg string
	}{
		{"ed25519", []string{"-t", "ed25519"}, "ssh-ed25519"},
		{"ecdsa-p256", []string{"-t", "ecdsa", "-b", "256"}, "ecdsa-sha2-nistp256"},
		{"rsa-3072", []string{"-t", "rsa", "-b", "3072"}, "ssh-rsa"},
	}
	sock := startAgent(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := func(n string) string { return filepath.Join(dir, n) }
			keygen(t, append([]string{"-q", "-N", "", "-C", "carol", "-f", p("carol")}, tt.keygen...)...)
			runBounded(t, sock, nil, "ssh-add", "-q", p("carol"))
			fp := strings.Fields(runBounded(t, sock, nil, "ssh-keygen", "-l", "-E", "sha256", "-f", p("carol.pub")))[1]
			// The private key must not be what signs: only the agent.
			if err := os.Remove(p("carol")); err != nil {
				t.Fatal(err)
			}
			pub, err := os.ReadFile(p("carol.pub"))
			if err != nil {
				t.Fatal(err)
			}
			f := strings.Fields(string(pub))
			if f[0] != tt.wantAlg {
				t.Fatalf("ssh-keygen made a %s key, want %s", f[0], tt.wantAlg)
			}
			signers := []byte("carol@audit.example " + f[0] + " " + f[1] + "\n")
			if err := os.WriteFile(p("allowed_signers"), signers, 0o600); err != nil {
				t.Fatal(err)
			}
			doc := allowlistDoc(time.Now())
			if err := os.WriteFile(p("v1.yaml"), doc, 0o600); err != nil {
				t.Fatal(err)
			}

			t.Setenv("SSH_AUTH_SOCK", sock)
			out, err := runAL(t, "sign", "--agent", fp, "--out", p("v1.sig"), p("v1.yaml"))
			if err != nil {
				t.Fatalf("sign --agent %s = %v\n%s", fp, err, out)
			}
			if !strings.Contains(out, fp) {
				t.Errorf("sign --agent output does not name the key %s:\n%s", fp, out)
			}
			armor, err := os.ReadFile(p("v1.sig"))
			if err != nil {
				t.Fatal(err)
			}

			// Stock OpenSSH accepts it.
			runBounded(t, sock, doc, "ssh-keygen", "-Y", "verify", "-f", p("allowed_signers"),
				"-I", "carol@audit.example", "-n", allowlist.Namespace, "-s", p("v1.sig"))

			// And so does the gateway's own check.
			al, err := allowlist.Verify(doc, []allowlist.Signature{{Name: "v1.sig", Armor: armor}},
				allowlist.Policy{AllowedSigners: signers, Threshold: 1, Environment: "test"})
			if err != nil {
				t.Fatalf("allowlist.Verify of the agent's signature = %v", err)
			}
			if len(al.Signatures) != 1 || al.Signatures[0].Status != allowlist.StatusValid || al.Signatures[0].Fingerprint != fp {
				t.Errorf("allowlist.Verify signatures = %+v, want one valid by %s", al.Signatures, fp)
			}
		})
	}

	// The size check must still hold for keys that only an agent holds.
	t.Run("rsa-2048 refused", func(t *testing.T) {
		dir := t.TempDir()
		p := func(n string) string { return filepath.Join(dir, n) }
		keygen(t, "-q", "-N", "", "-C", "weak", "-t", "rsa", "-b", "2048", "-f", p("weak"))
		runBounded(t, sock, nil, "ssh-add", "-q", p("weak"))
		fp := strings.Fields(runBounded(t, sock, nil, "ssh-keygen", "-l", "-E", "sha256", "-f", p("weak.pub")))[1]
		if err := os.WriteFile(p("v1.yaml"), allowlistDoc(time.Now()), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("SSH_AUTH_SOCK", sock)
		out, err := runAL(t, "sign", "--agent", fp, p("v1.yaml"))
		if err == nil || !strings.Contains(err.Error(), "shorter than") {
			t.Errorf("sign --agent with RSA-2048 = %v, want a refusal for its size\n%s", err, out)
		}
		if _, serr := os.Stat(p("v1.yaml.sig")); serr == nil {
			t.Errorf("sign --agent with RSA-2048 wrote a signature")
		}
	})

	t.Run("unknown fingerprint", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "v1.yaml"), allowlistDoc(time.Now()), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("SSH_AUTH_SOCK", sock)
		const fp = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		out, err := runAL(t, "sign", "--agent", fp, filepath.Join(dir, "v1.yaml"))
		if err == nil || !strings.Contains(err.Error(), "no key with fingerprint") {
			t.Errorf("sign --agent %s = %v, want no key with fingerprint\n%s", fp, err, out)
		}
		if _, serr := os.Stat(filepath.Join(dir, "v1.yaml.sig")); serr == nil {
			t.Errorf("sign --agent with an unknown key wrote a signature")
		}
	})
}

// TestAllowlistDiffNewDestination: the command prints what review.Diff
// returns, each widening line marked, and --fail-on-widen fails on them.
func TestAllowlistDiffNewDestination(t *testing.T) {
	dir := t.TempDir()
	v1 := allowlistDoc(time.Now())
	v2, err := nextVersion(v1, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	v2 = append(v2, `  - id: local
    purpose: a processor on a private link
    owner: billing@example.com
    url: https://10.20.0.5/pay
    methods: [POST]
    callers: [billing]
    fields: [number]
    card_headers: [X-Card-Token]
    unsafe_allow_ranges: [10.20.0.0/16]
    tls:
      ca_bundle: private-link
`...)
	for name, b := range map[string][]byte{"v1.yaml": v1, "v2.yaml": v2} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, err := runAL(t, "diff", "--fail-on-widen", filepath.Join(dir, "v1.yaml"), filepath.Join(dir, "v2.yaml"))
	if err == nil {
		t.Errorf("diff --fail-on-widen with a new destination = nil error\n%s", out)
	}
	for _, want := range []string{
		"WIDENS + local: unsafe range 10.20.0.0/16\n",
		"WIDENS + local: card header X-Card-Token\n",
		"WIDENS + local: CA bundle private-link (replaces the system roots)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("diff output lacks %q:\n%s", want, out)
		}
	}
}

// TestAllowlistVerifyWarnsDuplicateKey: verify warns when allowed_signers
// lists one key under two names, and counts that key once.
func TestAllowlistVerifyWarnsDuplicateKey(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	keygen(t, "-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f", p("alice"))
	keygen(t, "-q", "-t", "ed25519", "-N", "", "-C", "bob", "-f", p("bob"))
	key := func(who string) string {
		pub, err := os.ReadFile(p(who + ".pub"))
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(pub))
		return f[0] + " " + f[1]
	}
	signers := "alice@audit.example " + key("alice") + "\nbob@audit.example " + key("bob") + "\ndan@audit.example " + key("alice") + "\n"
	if err := os.WriteFile(p("allowed_signers"), []byte(signers), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p("v1.yaml"), allowlistDoc(time.Now()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(p("v1.sigs"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"alice", "dan"} {
		if out, err := runAL(t, "sign", "--key", p("alice"), "--out", p("v1.sigs/"+name+".sig"), p("v1.yaml")); err != nil {
			t.Fatalf("sign = %v\n%s", err, out)
		}
	}
	out, err := runAL(t, "verify", "--allowed-signers", p("allowed_signers"), "--threshold", "2", "--environment", "test", p("v1.yaml"))
	if err == nil || !strings.Contains(out, "threshold: 1 of 2 distinct signers: NOT met") {
		t.Errorf("verify with one key signing as alice and dan = %v, want 1 of 2\n%s", err, out)
	}
	fp, err := exec.Command("ssh-keygen", "-l", "-E", "sha256", "-f", p("alice.pub")).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "lists key " + strings.Fields(string(fp))[1] + " on lines 1, 3 (principals alice@audit.example, dan@audit.example): it counts as ONE signer"
	if !strings.Contains(out, "warning: ") || !strings.Contains(out, want) {
		t.Errorf("verify output lacks the warning %q:\n%s", want, out)
	}
}

// TestAllowlistSignForceOverFIFO: --force over a FIFO named like the
// signature fails at once rather than waiting for a reader.
func TestAllowlistSignForceOverFIFO(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	keygen(t, "-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f", p("alice"))
	if err := os.WriteFile(p("v1.yaml"), allowlistDoc(time.Now()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(p("v1.yaml.sig"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		var out bytes.Buffer
		done <- runAllowlist(ctx, []string{"sign", "--force", "--key", p("alice"), p("v1.yaml")}, &out, &out)
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("sign --force over a FIFO = nil error")
		}
	case <-ctx.Done():
		t.Fatal("sign --force over a FIFO blocked")
	}
}
