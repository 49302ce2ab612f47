package allowlist

import (
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// Found by mutation testing (docs/mutation.md): allowed_signers lines at
// the edges of the option and principal grammar. A mutant there panicked
// or named the wrong fault; every such line must be refused with the
// error that says what is wrong, never a panic.
func TestParseAllowedSignersGrammarEdges(t *testing.T) {
	a := newSigner(t, "a", "ed25519")
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(a.PublicKey())))
	for _, tt := range []struct {
		name    string
		line    string
		wantErr string
	}{
		{"empty quoted principals", `"" ` + key, "empty principal"},
		{"namespaces without a value", "alice namespaces " + key, "namespaces needs a quoted value"},
		{"valid-after without a value", "alice valid-after " + key, "valid-after needs a quoted value"},
		{"options end in an escape", `alice namespaces="git\`, "missing end quote"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseAllowedSigners([]byte(tt.line + "\n"))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseAllowedSigners(%q) = %v, want an error containing %q", tt.line, err, tt.wantErr)
			}
		})
	}
}

// namespaces= patterns with a star before other characters, and with '?',
// match as OpenSSH's match_pattern does. Only a trailing star was tested
// before: a mutant that let "*x" match every namespace lived.
func TestNamespacePatterns(t *testing.T) {
	a := newSigner(t, "a", "ed25519")
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(a.PublicKey())))
	for _, tt := range []struct {
		pattern string
		match   bool
	}{
		{"*", true},
		{"*@v1", true},
		{"*@v2", false},
		{"*allowlist*", true},
		{"c*d*@v1", true},
		{"c*x*@v1", false},
		{"**@v1", true},
		{"cardgate-allowlist@v?", true},
		{"cardgate-allowlist@?", false},
		{"cardgate-allowlist@v1?", false},
		{"?", false},
		{"git,*@v1", true},
		{"*@v1,!cardgate-*", false},
	} {
		t.Run(tt.pattern, func(t *testing.T) {
			if got := matchPatternList(Namespace, tt.pattern); got != tt.match {
				t.Errorf("matchPatternList(%q, %q) = %v, want %v", Namespace, tt.pattern, got, tt.match)
			}
			as, err := ParseAllowedSigners([]byte(`alice namespaces="` + tt.pattern + `" ` + key + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			p, found, _ := as.lookup(a.PublicKey(), Namespace, testNow)
			if !found || (len(p) == 1) != tt.match {
				t.Errorf("lookup under namespaces=%q = %v (found %v), want a match %v", tt.pattern, p, found, tt.match)
			}
		})
	}
}

// Option values follow opt_dequote: a blank inside quotes belongs to the
// value, \" is a quote in it, and a tab ends the options like a space.
func TestOptionQuoting(t *testing.T) {
	a := newSigner(t, "a", "ed25519")
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(a.PublicKey())))
	for _, tt := range []struct {
		name  string
		line  string
		match bool
	}{
		{"blank inside quotes", `alice namespaces="a b,cardgate-*" ` + key, true},
		{"escaped quote", `alice namespaces="a\"b,cardgate-*" ` + key, true},
		{"escaped quote only", `alice namespaces="a\"b" ` + key, false},
		{"escaped quote then blank", `alice namespaces="a\" b,cardgate-*" ` + key, true},
		{"tab after the options", "alice namespaces=\"cardgate-*\"\t" + key, true},
		{"tab after a refusing option", "alice namespaces=\"git\"\t" + key, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			as, err := ParseAllowedSigners([]byte(tt.line + "\n"))
			if err != nil {
				t.Fatalf("ParseAllowedSigners(%q) = %v", tt.line, err)
			}
			p, found, _ := as.lookup(a.PublicKey(), Namespace, testNow)
			if !found || (len(p) == 1) != tt.match {
				t.Errorf("lookup under %q = %v (found %v), want a match %v", tt.line, p, found, tt.match)
			}
		})
	}
	// The value itself, as dequote reads it.
	for in, want := range map[string]string{`"a\"b",x`: `a"b`, `"a b"`: "a b", `"a\b"`: `a\b`, `"\"\""`: `""`} {
		if got, _, err := dequote(in); err != nil || got != want {
			t.Errorf("dequote(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
}
