package main

// The tests make their fixtures with the gateway's own packages (audit and
// audit/checkpoint) and check them with this command's code, which
// imports neither: the two sides meet only in the file formats.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/cardgate/cardgate/audit"
	gwcheckpoint "github.com/cardgate/cardgate/audit/checkpoint"
)

const origin = "cardgate.test/audit/dev-1"

type fixture struct {
	dir, log string
	vkey     string
	signer   *gwcheckpoint.LocalSigner
	auditor  *audit.Log
	tree     *audit.Tree
	cps      []string // checkpoint files, in order
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gwcheckpoint.NewLocalSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{dir: t.TempDir(), vkey: vkey, signer: s}
	f.log = filepath.Join(f.dir, "audit.log")
	fs, tree, err := audit.OpenFileSinkTree(f.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	f.tree = tree
	if f.auditor, err = audit.New(audit.Options{Sinks: []audit.Sink{fs}}); err != nil {
		t.Fatal(err)
	}
	return f
}

// forward appends an intent and a result of forward id.
func (f *fixture) forward(t *testing.T, id string) {
	t.Helper()
	ctx := context.Background()
	for _, r := range []audit.Record{
		{Kind: audit.KindIntent, RequestID: "req_" + id, ForwardID: id, Caller: "billing", Token: "tok_abc",
			Destination: "acme", Decision: audit.DecisionAllow, AllowlistVersion: 1},
		{Kind: audit.KindResult, RequestID: "req_" + id, ForwardID: id, Caller: "billing", Token: "tok_abc",
			Destination: "acme", Decision: audit.DecisionAllow, AllowlistVersion: 1, Outcome: audit.OutcomeAnswered, UpstreamStatus: 200},
	} {
		if _, err := f.auditor.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
}

// checkpoint signs the tree's head to a new file and returns its path.
func (f *fixture) checkpoint(t *testing.T) string {
	t.Helper()
	size, root, err := f.tree.Head()
	if err != nil {
		t.Fatal(err)
	}
	msg, err := gwcheckpoint.Sign(context.Background(), gwcheckpoint.Checkpoint{Origin: origin, Size: size, Root: root}, f.signer)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(f.dir, fmt.Sprintf("checkpoint.%d", size))
	if err := os.WriteFile(p, msg, 0o644); err != nil {
		t.Fatal(err)
	}
	f.cps = append(f.cps, p)
	return p
}

func verify(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String() + errOut.String(), err
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.SplitAfter(strings.TrimSuffix(string(b), "\n"), "\n")
}

func writeLines(t *testing.T, path string, ls []string) {
	t.Helper()
	s := strings.Join(ls, "")
	if !strings.HasSuffix(s, "\n") && s != "" {
		s += "\n"
	}
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Every form of tampering with the audit file is caught against the last
// published checkpoint, with no anchor given by hand.
func TestLogTampering(t *testing.T) {
	f := newFixture(t)
	for i := range 5 {
		f.forward(t, fmt.Sprintf("fwd_%d", i))
	}
	cp := f.checkpoint(t) // 10 lines
	f.forward(t, "fwd_late")

	if out, err := verify(t, "log", "--key", f.vkey, "--checkpoint", cp, f.log); err != nil {
		t.Fatalf("log on the untouched file = %v\n%s", err, out)
	} else if !strings.Contains(out, "ok: the file's first 10 lines") || !strings.Contains(out, "2 lines after the last checkpoint") {
		t.Errorf("log output:\n%s", out)
	}

	orig := lines(t, f.log)
	other := newFixture(t)
	for i := range 5 {
		other.forward(t, fmt.Sprintf("fwd_%d", i))
	}
	forked := lines(t, other.log) // the same forwards, another history
	rewritten := strings.Replace(orig[3], `"upstream_status":200`, `"upstream_status":500`, 1)
	if rewritten == orig[3] {
		t.Fatal("fixture: nothing to rewrite")
	}
	for _, tc := range []struct {
		name string
		ls   []string
		want string
	}{
		{"dropped", append(append([]string{}, orig[:4]...), orig[5:]...), "MODIFIED"},
		{"reordered", append(append(append([]string{}, orig[:4]...), orig[5], orig[4]), orig[6:]...), "MODIFIED"},
		{"rewritten", append(append(append([]string{}, orig[:3]...), rewritten), orig[4:]...), "MODIFIED"},
		{"inserted", append(append(append([]string{}, orig[:2]...), orig[7]), orig[2:]...), "MODIFIED"},
		{"truncated", orig[:9], "TRUNCATED"},
		{"emptied", nil, "TRUNCATED"},
		{"forked", forked, "MODIFIED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			writeLines(t, path, tc.ls)
			out, err := verify(t, "log", "--key", f.vkey, "--checkpoint", cp, path)
			if !errors.Is(err, errFailed) || !strings.Contains(out, tc.want) {
				t.Errorf("log(%s) = %v, want %s\n%s", tc.name, err, tc.want, out)
			}
		})
	}
}

// A forward's records are proven with the gateway's prover and verified
// here; the verifier refuses a proof against another checkpoint, a changed
// line and another key.
func TestInclusion(t *testing.T) {
	f := newFixture(t)
	for i := range 6 {
		f.forward(t, fmt.Sprintf("fwd_%d", i))
	}
	cpPath := f.checkpoint(t)
	msg, _ := os.ReadFile(cpPath)
	c, err := gwcheckpoint.ParseUnverified(msg)
	if err != nil {
		t.Fatal(err)
	}
	root, proofs, err := audit.ProveLines(f.log, c.Size, audit.MatchForward("fwd_3"))
	if err != nil || root != c.Root || len(proofs) != 2 {
		t.Fatalf("ProveLines = %d proofs, %v (root ok: %v)", len(proofs), err, root == c.Root)
	}
	var b []byte
	for _, p := range proofs {
		b = gwcheckpoint.AppendInclusion(b, p.Index, p.Line, p.Proof, msg)
	}
	path := filepath.Join(f.dir, "fwd_3.tlog-proof")
	os.WriteFile(path, b, 0o644)
	out, err := verify(t, "inclusion", "--key", f.vkey, "--forward", "fwd_3", path)
	if err != nil || strings.Count(out, "ok: line") != 2 {
		t.Fatalf("inclusion = %v\n%s", err, out)
	}

	_, otherKey, _ := note.GenerateKey(rand.Reader, origin)
	for _, tc := range []struct {
		name  string
		input []byte
		args  []string
	}{
		{"changed line", bytes.Replace(b, []byte("extra "), []byte("extra e"), 1), nil},
		{"other forward", b, []string{"--forward", "fwd_2"}},
		{"wrong index", bytes.Replace(b, []byte("index "+fmt.Sprint(proofs[0].Index)), []byte("index 0"), 1), nil},
		{"other key", b, []string{"--key", otherKey}},
		{"changed checkpoint", bytes.Replace(b, []byte("\n12\n"), []byte("\n13\n"), 1), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "proof")
			os.WriteFile(p, tc.input, 0o644)
			args := append([]string{"inclusion", "--key", f.vkey}, tc.args...)
			out, err := verify(t, append(args, p)...)
			if !errors.Is(err, errFailed) {
				t.Errorf("inclusion(%s) = %v, want a failure\n%s", tc.name, err, out)
			}
		})
	}
}

// Consistency: NEW extends OLD is proven by the gateway and verified
// here; a forked NEW is refused.
func TestConsistency(t *testing.T) {
	f := newFixture(t)
	f.forward(t, "fwd_a")
	f.forward(t, "fwd_b")
	oldCP := f.checkpoint(t)
	for i := range 5 {
		f.forward(t, fmt.Sprintf("fwd_%d", i))
	}
	newCP := f.checkpoint(t)
	_, _, p, err := audit.ProveConsistency(f.log, 4, 14)
	if err != nil {
		t.Fatal(err)
	}
	proof := filepath.Join(f.dir, "consistency")
	os.WriteFile(proof, gwcheckpoint.AppendConsistency(nil, 4, 14, p), 0o644)
	if out, err := verify(t, "consistency", "--key", f.vkey, oldCP, newCP, proof); err != nil {
		t.Fatalf("consistency = %v\n%s", err, out)
	}
	if out, err := verify(t, "consistency", "--key", f.vkey, newCP, oldCP, proof); !errors.Is(err, errFailed) {
		t.Errorf("consistency with OLD and NEW swapped = %v\n%s", err, out)
	}

	// A fork: the same key signs another history of the same size.
	g := newFixture(t)
	g.signer = f.signer
	for i := range 7 {
		g.forward(t, fmt.Sprintf("fwd_x%d", i))
	}
	forkCP := g.checkpoint(t)
	if out, err := verify(t, "consistency", "--key", f.vkey, oldCP, forkCP, proof); !errors.Is(err, errFailed) || !strings.Contains(out+err.Error(), "does not extend") {
		t.Errorf("consistency against a fork = %v\n%s", err, out)
	}
	// And the log check names it against the file.
	if out, err := verify(t, "log", "--key", f.vkey, "--checkpoint", oldCP, "--checkpoint", forkCP, f.log); !errors.Is(err, errFailed) || !strings.Contains(out, "MODIFIED") {
		t.Errorf("log against a forked checkpoint = %v\n%s", err, out)
	}
}

// The allowlist loads in the checkpointed lines are listed.
func TestLogListsAllowlistLoads(t *testing.T) {
	f := newFixture(t)
	sha := strings.Repeat("ab", 32)
	ctx := context.Background()
	if _, err := f.auditor.Append(ctx, audit.Record{Kind: audit.KindAllowlist, Decision: audit.DecisionAllow, AllowlistVersion: 4,
		AllowlistSHA256: sha, Signers: []string{"alice@audit.example", "bob@audit.example"}}); err != nil {
		t.Fatal(err)
	}
	f.forward(t, "fwd_1")
	if _, err := f.auditor.Append(ctx, audit.Record{Kind: audit.KindAllowlist, Decision: audit.DecisionDeny, Reason: "rollback", AllowlistSHA256: sha}); err != nil {
		t.Fatal(err)
	}
	cp := f.checkpoint(t)
	out, err := verify(t, "log", "--key", f.vkey, "--checkpoint", cp, f.log)
	if err != nil {
		t.Fatalf("log = %v\n%s", err, out)
	}
	for _, want := range []string{" allow v4 " + sha + " alice@audit.example,bob@audit.example", " deny v0 " + sha + " refused: rollback"} {
		if !strings.Contains(out, want) {
			t.Errorf("log output lacks %q:\n%s", want, out)
		}
	}
}
