package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The recipes of AUDITING.md, run as an auditor would: in one POSIX shell
// (dash on Debian), with stock ssh-keygen, sha256sum, diff, grep, sed, awk
// and date, and the built cardgate on PATH. Each block is found by what
// it runs; a block this test cannot find, or finds twice, fails it, so the
// document and the test move together.

// recipe names a shell block of AUDITING.md by a string only it contains.
var recipes = []struct{ name, marker string }{
	{"next", "cardgate allowlist next"},
	{"review", "diff -u old/allowlist.yaml new/allowlist.yaml"},
	{"header", "grep -E '^(format|namespace"},
	{"validity", "v() {"},
	{"chain", "sha256sum old/allowlist.yaml"},
	{"create key", "ssh-keygen -t ed25519-sk"},
	{"sign", "ssh-keygen -Y sign -f ~/.ssh/id_ed25519_sk"},
	{"check signers", "uniq -d"},
	{"count", "find-principals"},
	{"verify-time", "-O verify-time="},
	{"cardgate verify", "cardgate allowlist verify"},
}

// auditingRecipes returns the sh blocks of AUDITING.md by recipe name.
func auditingRecipes(t *testing.T) map[string]string {
	t.Helper()
	doc, err := os.ReadFile("../AUDITING.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?ms)^```sh\n(.*?)^```$").FindAllStringSubmatch(string(doc), -1)
	out := map[string]string{}
	for _, r := range recipes {
		for _, b := range blocks {
			if strings.Contains(b[1], r.marker) {
				if _, dup := out[r.name]; dup {
					t.Fatalf("AUDITING.md: two sh blocks contain %q", r.marker)
				}
				out[r.name] = b[1]
			}
		}
		if out[r.name] == "" {
			t.Fatalf("AUDITING.md: no sh block contains %q (recipe %q)", r.marker, r.name)
		}
	}
	// A fixed path in a shared directory lets a leftover from an earlier
	// run (or another user) change the result.
	for _, b := range blocks {
		if strings.Contains(b[1], "/tmp/") {
			t.Errorf("AUDITING.md: a recipe uses a fixed path under /tmp:\n%s", b[1])
		}
	}
	return out
}

// auditor is a workspace laid out as AUDITING.md describes.
type auditor struct {
	t    *testing.T
	dir  string
	path string // PATH with the built cardgate first
	rec  map[string]string
}

// sh runs script in dir with sh and returns its stdout and stderr.
func (a *auditor) sh(script string, env ...string) (stdout, stderr string, err error) {
	a.t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = a.dir
	cmd.Env = append([]string{"PATH=" + a.path, "HOME=" + filepath.Join(a.dir, "home-nobody"), "LC_ALL=C"}, env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// mustSh is sh that fails the test on a non-zero exit.
func (a *auditor) mustSh(name, script string, env ...string) string {
	a.t.Helper()
	out, errOut, err := a.sh(script, env...)
	if err != nil {
		a.t.Fatalf("recipe %s: %v\nscript:\n%s\nstdout:\n%s\nstderr:\n%s", name, err, script, out, errOut)
	}
	return out
}

// signAs runs the sign recipe as who, whose key sits where the recipe
// expects it (~/.ssh/id_ed25519_sk; a plain ed25519 key here, since a
// security key needs a device).
func (a *auditor) signAs(who string) {
	a.t.Helper()
	home := filepath.Join(a.dir, "home-"+who)
	script := strings.ReplaceAll(a.rec["sign"], "you@audit.example", who+"@audit.example")
	a.mustSh("sign as "+who, script, "HOME="+home)
}

func (a *auditor) write(name, content string) {
	a.t.Helper()
	p := filepath.Join(a.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		a.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		a.t.Fatal(err)
	}
}

// newAuditor makes keys for alice and bob in their homes, the pinned
// trust/allowed_signers, and old/ as version 1 signed by both.
func newAuditor(t *testing.T) *auditor {
	a := &auditor{t: t, dir: t.TempDir(), rec: auditingRecipes(t)}
	a.path = filepath.Dir(binary) + string(os.PathListSeparator) + os.Getenv("PATH")
	var signers strings.Builder
	for _, who := range []string{"alice", "bob"} {
		key := filepath.Join(a.dir, "home-"+who, ".ssh", "id_ed25519_sk")
		if err := os.MkdirAll(filepath.Dir(key), 0o700); err != nil {
			t.Fatal(err)
		}
		run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", who, "-f", key)
		pub, err := os.ReadFile(key + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(pub))
		fmt.Fprintf(&signers, "%s@audit.example %s %s\n", who, f[0], f[1])
	}
	a.write("trust/allowed_signers", signers.String())
	now := time.Now().UTC()
	a.write("old/allowlist.yaml", fmt.Sprintf(`# the production allowlist
format: cardgate.allowlist/v1
namespace: cardgate-allowlist@v1
environment: production
version: 1
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
    fields: [number, exp_month, exp_year]
`, now.Add(-24*time.Hour).Format(time.RFC3339), now.Add(29*24*time.Hour).Format(time.RFC3339)))
	for _, who := range []string{"alice", "bob"} {
		key := filepath.Join(a.dir, "home-"+who, ".ssh", "id_ed25519_sk")
		run(t, "ssh-keygen", "-q", "-Y", "sign", "-f", key, "-n", namespace, filepath.Join(a.dir, "old", "allowlist.yaml"))
		if err := os.MkdirAll(filepath.Join(a.dir, "old", "allowlist.sigs"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(a.dir, "old", "allowlist.yaml.sig"), filepath.Join(a.dir, "old", "allowlist.sigs", who+"@audit.example.sig")); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

// TestAuditingRecipes runs AUDITING.md step by step: start version 2,
// review it, check the header and the chain, sign it as two auditors,
// count the signers, and verify with cardgate.
func TestAuditingRecipes(t *testing.T) {
	a := newAuditor(t)

	a.mustSh("next", a.rec["next"])
	// The proposer's edit: a new destination.
	b, err := os.ReadFile(filepath.Join(a.dir, "new", "allowlist.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	a.write("new/allowlist.yaml", string(b)+`  - id: acme-refunds
    purpose: refunds
    owner: billing@example.com
    url: https://api.acme.example/v1/refunds
    methods: [POST]
    callers: [billing]
    fields: [number]
`)

	// diff exits 1 when the files differ: that is its answer, not a failure.
	out, _, _ := a.sh(a.rec["review"])
	if !strings.Contains(out, "+  - id: acme-refunds") || !strings.Contains(out, "-version: 1") || !strings.Contains(out, "+version: 2") {
		t.Errorf("recipe review printed:\n%s", out)
	}

	out = a.mustSh("header", a.rec["header"]+"\n")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 7 || !strings.Contains(out, "\nversion: 2\n") || !strings.Contains(out, "environment: production") {
		t.Errorf("recipe header printed %d lines, want the 7 header fields with version 2:\n%s", len(lines), out)
	}
	// The validity and chain recipes share the shell function v().
	if out := a.mustSh("validity", a.rec["validity"]); strings.TrimSpace(out) != "30 days" {
		t.Errorf("recipe validity printed %q, want 30 days", out)
	}
	out = a.mustSh("chain", a.rec["validity"]+"\n"+a.rec["chain"])
	lines := strings.Split(strings.TrimSpace(out), "\n")
	oldSum := strings.Fields(lines[len(lines)-3])[0]
	if len(lines) < 3 || lines[len(lines)-2] != oldSum || lines[len(lines)-1] != "1" {
		t.Errorf("recipe chain printed:\n%s\nwant old's sha256, the same prev_sha256, and 1", out)
	}

	// new/allowlist.sigs does not exist yet: the recipe must make it.
	if _, err := os.Stat(filepath.Join(a.dir, "new", "allowlist.sigs")); !os.IsNotExist(err) {
		t.Fatalf("new/allowlist.sigs exists before signing: %v", err)
	}
	a.signAs("alice")
	a.signAs("bob")

	out = a.mustSh("check signers", a.rec["check signers"])
	if strings.TrimSpace(out) != "" {
		t.Errorf("recipe check signers printed %q for a clean allowed_signers, want nothing", out)
	}
	count := a.rec["count"]
	out = a.mustSh("count", count)
	if got := countLine(out); got != "2" {
		t.Errorf("recipe count = %q, want 2 signers:\n%s", got, out)
	}
	// Run twice: nothing of the first run may change the second.
	if again := a.mustSh("count", count); again != out {
		t.Errorf("recipe count differs on a second run:\n%s\nthen:\n%s", out, again)
	}
	// The same signature under a second name counts once.
	sig, err := os.ReadFile(filepath.Join(a.dir, "new", "allowlist.sigs", "alice@audit.example.sig"))
	if err != nil {
		t.Fatal(err)
	}
	a.write("new/allowlist.sigs/alice-again.sig", string(sig))
	if got := countLine(a.mustSh("count", count)); got != "2" {
		t.Errorf("recipe count with alice's signature copied = %q, want 2", got)
	}

	a.mustSh("verify-time", "NS=cardgate-allowlist@v1\n"+a.rec["verify-time"])

	verify := strings.Replace(a.rec["cardgate verify"], "--threshold M", "--threshold 2", 1)
	if out := a.mustSh("cardgate verify", verify); !strings.Contains(out, "result: ACCEPTED (version 2") {
		t.Errorf("recipe cardgate verify printed:\n%s", out)
	}
}

// countLine returns the last line the count recipe prints: the number of
// distinct signers.
func countLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// TestAuditingRecipesKeyListedTwice: alice's key is listed again as dan,
// and dan has a key of his own. find-principals calls the first key
// "alice" and the second "dan", so a count by name finds two signers where
// there is one. The allowed_signers check must print the duplicate key, and
// cardgate must count one signer and warn.
func TestAuditingRecipesKeyListedTwice(t *testing.T) {
	a := newAuditor(t)
	a.mustSh("next", a.rec["next"])
	danKey := filepath.Join(a.dir, "home-dan", ".ssh", "id_ed25519_sk")
	if err := os.MkdirAll(filepath.Dir(danKey), 0o700); err != nil {
		t.Fatal(err)
	}
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "dan", "-f", danKey)
	signers, err := os.ReadFile(filepath.Join(a.dir, "trust", "allowed_signers"))
	if err != nil {
		t.Fatal(err)
	}
	alice := strings.Fields(strings.Split(string(signers), "\n")[0])
	danPub, err := os.ReadFile(danKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	dan := strings.Fields(string(danPub))
	a.write("trust/allowed_signers", string(signers)+
		"dan@audit.example "+alice[1]+" "+alice[2]+"\n"+
		"dan@audit.example "+dan[0]+" "+dan[1]+"\n")
	a.signAs("alice")
	a.signAs("dan")

	out := a.mustSh("check signers", a.rec["check signers"])
	if !strings.Contains(out, alice[2]) {
		t.Errorf("recipe check signers printed %q, want alice's key (listed twice)", out)
	}
	// The count by name says 2; the check above is what tells the
	// auditor not to trust it. cardgate counts one signer and warns.
	verify := strings.Replace(a.rec["cardgate verify"], "--threshold M", "--threshold 2", 1)
	out, _, err = a.sh(verify)
	if err == nil || !strings.Contains(out, "threshold: 1 of 2 distinct signers: NOT met") {
		t.Errorf("cardgate verify with alice's key listed as dan = %v, want 1 of 2:\n%s", err, out)
	}
	if !strings.Contains(out, "warning: trust/allowed_signers lists key") || !strings.Contains(out, "counts as ONE signer") {
		t.Errorf("cardgate verify does not warn about the key listed twice:\n%s", out)
	}
}
