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
