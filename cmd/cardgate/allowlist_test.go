package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	if out, err := runAL(t, "verify", "-h"); err != nil || !strings.Contains(out, "--allowed-signers") {
		t.Errorf("verify -h = %v\n%s", err, out)
	}
}
