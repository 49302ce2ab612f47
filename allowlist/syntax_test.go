package allowlist

import (
	"errors"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// idRule is the entry id grammar as a regular expression, as AUDITING.md
// and the error messages state it.
var idRule = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

func TestValidID(t *testing.T) {
	tests := []string{"", "a", "0", "acme-charges", "acme.v2_eu", "-a", ".a", "_a", "A", "acme charges",
		"acme/x", "acme*", "é", strings.Repeat("a", 63), strings.Repeat("a", 64), "a\n", "*"}
	// Random strings over the grammar's alphabet and a few bytes outside it.
	r := rand.New(rand.NewPCG(3, 4))
	const alphabet = "az09._-A/ *"
	for range 2000 {
		b := make([]byte, r.IntN(66))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		tests = append(tests, string(b))
	}
	for _, in := range tests {
		if got, want := ValidID(in), idRule.MatchString(in); got != want {
			t.Errorf("ValidID(%q) = %v, want %v (regexp %s)", in, got, want, idRule)
		}
	}
}

func TestCheckPath(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" for clean, else a word of the reason
	}{
		{"/", ""},
		{"/v1/charges", ""},
		{"/v1/charges/", ""},
		{"/v1/a%41b", ""},
		{"v1", "start with /"},
		{"", "start with /"},
		{`/v1\x`, "backslash"},
		{"/v1;x", "';'"},
		{"/v1/..;/admin", "';'"},
		{"/v1%2fx", "encoded"},
		{"/v1%2Ex", "encoded"},
		{"/v1%5Cx", "encoded"},
		{"/v1%00", "encoded"},
		{"/v1%3b", "encoded"},
		{"/v1 x", "space"},
		{"/v1\tx", "space"},
		{"/bücher", "non-ASCII"},
		{"/v1%zz", "malformed"},
		{"/v1%4", "malformed"},
		{"/v1%+4x", "malformed"},
		{"/v1%_4x", "malformed"},
		{"/v1%x4", "malformed"},
		{"/v1%20x", "escapes"},
		{"/v1%c0%ae", "escapes"},
		{"/v1//x", "empty segment"},
		{"//", "empty segment"},
		{"/v1/../x", "dot segment"},
		{"/v1/.", "dot segment"},
		{"/./", "dot segment"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			err := CheckPath(tt.in)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckPath(%q) = %v, want nil", tt.in, err)
				}
				return
			}
			var pe *PathError
			if !errors.As(err, &pe) || !strings.Contains(pe.Reason, tt.want) {
				t.Fatalf("CheckPath(%q) = %v, want a *PathError about %q", tt.in, err, tt.want)
			}
			if len(tt.in) > 2 && strings.Contains(err.Error(), tt.in) {
				t.Errorf("CheckPath(%q) = %q repeats the path", tt.in, err)
			}
			// The document's check refuses the same paths, naming them.
			if perr := checkPath(tt.in, false); perr == nil || !strings.Contains(perr.Error(), pe.Reason) {
				t.Errorf("checkPath(%q) = %v, want the same refusal", tt.in, perr)
			}
		})
	}
}
