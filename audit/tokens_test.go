package audit

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const testToken2 = "tok_bcdefghijklmnopqrstuvwxyz234567a"

// multi is an intent record of a forward that sent two named cards.
func multi(n int) Record {
	r := intent(n)
	r.Token = ""
	r.Tokens = []string{testToken, testToken2}
	return r
}

func TestTokensRefused(t *testing.T) {
	nine := make([]string, 9)
	for i := range nine {
		nine[i] = "tok_" + strings.Repeat(string(rune('a'+i)), 32)
	}
	tests := []struct {
		name string
		edit func(*Record)
	}{
		{"token and tokens", func(r *Record) { r.Token = testToken }},
		{"empty list", func(r *Record) { r.Tokens = []string{} }},
		{"too many", func(r *Record) { r.Tokens = nine }},
		{"twice", func(r *Record) { r.Tokens = []string{testToken, testToken} }},
		{"card as a token", func(r *Record) { r.Tokens = []string{testToken, "4242424242424242"} }},
		{"token with card digits", func(r *Record) { r.Tokens = []string{"tok_4242424242424242"} }},
		{"empty token", func(r *Record) { r.Tokens = []string{testToken, ""} }},
		{"token with a quote", func(r *Record) { r.Tokens = []string{`tok_a"b`} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &memSink{}
			l := newTestLog(t, sink)
			r := multi(1)
			tt.edit(&r)
			_, err := l.Append(context.Background(), r)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "field tokens:") {
				t.Fatalf("Append = %v, want ErrInvalid naming field tokens", err)
			}
			if strings.Contains(err.Error(), "4242") {
				t.Errorf("Append error %q repeats the value", err)
			}
			if len(sink.lines) != 0 {
				t.Errorf("a refused record was written")
			}
		})
	}
}

// TestTokensStoredAndVerified: a record of several cards carries them in
// tokens, right after an empty token; its bytes are the canonical ones, the
// verifier and the stock-tools recipe accept the log, and records without
// tokens keep the old form (no tokens member).
func TestTokensStoredAndVerified(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	fs, err := OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	l := newTestLog(t, fs)
	mustAppend(t, l, intent(1))
	got := mustAppend(t, l, multi(2))
	if !got.plain() {
		t.Errorf("Append wrote a record with tokens that is not plain: %#v", got)
	}
	canary := Record{Kind: KindCanary, RequestID: "req_1", Caller: "billing", Tokens: []string{testToken2}, Decision: DecisionDeny, Reason: "canary_token"}
	mustAppend(t, l, canary)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 3 {
		t.Fatalf("log has %d lines, want 3", len(lines))
	}
	if strings.Contains(lines[0], `"tokens"`) {
		t.Errorf("a single-card record has a tokens member: %s", lines[0])
	}
	if want := `"token":"","tokens":["` + testToken + `","` + testToken2 + `"],"destination":"acme-charges"`; !strings.Contains(lines[1], want) {
		t.Errorf("record with tokens:\n%s\nwant it to contain %s", lines[1], want)
	}
	rep, err := Verify(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	if rep == nil {
		t.Fatal("Verify returned no report")
	}
	if _, err := exec.LookPath("jq"); err != nil {
		t.Fatalf("jq not installed: %v", err)
	}
	if out, err := exec.Command("sh", filepath.Join("testdata", "verify-with-jq.sh"), path).CombinedOutput(); err != nil {
		t.Fatalf("stock-tools recipe: %v\n%s", err, out)
	}

	// Editing the list is detected.
	tampered := strings.Replace(string(raw), `"`+testToken+`","`+testToken2+`"`, `"`+testToken2+`","`+testToken+`"`, 1)
	if _, err := Verify(strings.NewReader(tampered)); err == nil {
		t.Error("Verify accepted a log whose tokens were reordered")
	}
}

func TestTokensCanonicalMatchesJSON(t *testing.T) {
	recs := []Record{multi(1), {Tokens: []string{"a"}}, {Tokens: []string{}}, {Tokens: []string{`"`, "\\", "<&>", "\u2028", "\xff"}}}
	r := fullRecord()
	r.Tokens = []string{testToken, testToken2}
	recs = append(recs, r)
	for _, r := range recs {
		checkCanonical(t, r)
		if r.plain() && r.storedLenBound() < len(mustCanonical(t, r))+len(`,"hash":""`)+64 {
			t.Errorf("storedLenBound(%#v) = %d, below the stored length", r, r.storedLenBound())
		}
	}
}

func mustCanonical(t *testing.T, r Record) []byte {
	t.Helper()
	b, err := r.canonical()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
