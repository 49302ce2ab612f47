package allowlist

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
)

func TestParseAllowedSigners(t *testing.T) {
	a := newSigner(t, "a", "ed25519")
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(a.PublicKey())))
	tests := []struct {
		name    string
		line    string
		wantErr string // "" means it parses
		// lookups at testNow in Namespace, when it parses
		wantPrincipals string
	}{
		{"plain", "alice " + key, "", "alice"},
		{"comment after key", "alice " + key + " alice@laptop", "", "alice"},
		{"two principals", "alice,alice@hw " + key, "", "alice,alice@hw"},
		{"quoted principals", `"alice smith" ` + key, "", "alice smith"},
		{"namespace exact", `alice namespaces="cardgate-allowlist@v1" ` + key, "", "alice"},
		{"namespace glob", `alice namespaces="cardgate-*" ` + key, "", "alice"},
		{"namespace list", `alice namespaces="git,file,cardgate-allowlist@v1" ` + key, "", "alice"},
		{"namespace negated", `alice namespaces="cardgate-*,!cardgate-allowlist@v1" ` + key, "", ""},
		{"namespace other", `alice namespaces="git" ` + key, "", ""},
		{"options case-insensitive", `alice NAMESPACES="cardgate-allowlist@v1" ` + key, "", "alice"},
		{"valid window", `alice valid-after="20260101Z",valid-before="20270101000000Z" ` + key, "", "alice"},
		{"not yet valid", `alice valid-after="202701011200Z" ` + key, "", ""},
		{"expired", `alice valid-before="20261201Z" ` + key, "", ""},
		{"leading whitespace", "   alice " + key, "", "alice"},
		{"cert authority", "alice cert-authority " + key, "cert-authority is not supported", ""},
		{"unquoted value", "alice namespaces=git " + key, "missing start quote", ""},
		{"unterminated quote", `alice namespaces="git ` + key, "missing end quote", ""},
		{"local time", `alice valid-before="20270101" ` + key, "must end in Z", ""},
		{"bad time", `alice valid-before="2027Z" ` + key, "YYYYMMDD", ""},
		{"before after", `alice valid-after="20270101Z",valid-before="20260101Z" ` + key, "before", ""},
		{"unknown option", `alice no-touch-required ` + key, "unsupported option", ""},
		{"duplicate namespaces", `alice namespaces="a",namespaces="b" ` + key, "multiple", ""},
		{"trailing comma", `alice namespaces="a", ` + key, "end-of-options", ""},
		{"pattern principal", "*@audit.example " + key, "pattern", ""},
		{"empty principal", "alice,,bob " + key, "empty principal", ""},
		{"no key", "alice", "missing key", ""},
		{"bad key", "alice ssh-ed25519 AAAA", "invalid key", ""},
		{"dsa", "alice ssh-dss AAAAB3NzaC1kc3MAAACBAP1/", "invalid key", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as, err := ParseAllowedSigners([]byte("# comment\n\n" + tt.line + "\n"))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseAllowedSigners(%q) = %v, want an error containing %q", tt.line, err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), "line 3") {
					t.Errorf("error %q does not name line 3", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAllowedSigners(%q) = %v", tt.line, err)
			}
			p, found, why := as.lookup(a.PublicKey(), Namespace, testNow)
			if !found {
				t.Fatalf("lookup: key not found")
			}
			if got := strings.Join(p, ","); got != tt.wantPrincipals {
				t.Errorf("lookup(%q) = %q (%s), want %q", tt.line, got, why, tt.wantPrincipals)
			}
		})
	}
}

func TestSignerGroups(t *testing.T) {
	k1, k2, k3, k4 := newSigner(t, "", "ed25519"), newSigner(t, "", "ed25519"), newSigner(t, "", "ed25519"), newSigner(t, "", "ed25519")
	line := func(p string, s signer) string { return p + " " + string(ssh.MarshalAuthorizedKey(s.PublicKey())) }
	file := line("alice", k1) + line("alice", k2) + // one person, two keys
		line("bob,robert", k3) + // one key, two names
		line("robert", k4) + // chained to bob through robert
		line("carol", newSigner(t, "", "ed25519"))
	as, err := ParseAllowedSigners([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if got := as.Groups(); got != 3 {
		t.Errorf("Groups() = %d, want 3 (alice, bob/robert, carol)", got)
	}
	if as.groupOf(k1.PublicKey()) != as.groupOf(k2.PublicKey()) || as.groupOf(k3.PublicKey()) != as.groupOf(k4.PublicKey()) {
		t.Error("keys sharing a principal are in different groups")
	}
	if as.groupOf(k1.PublicKey()) == as.groupOf(k3.PublicKey()) {
		t.Error("alice and bob share a group")
	}
}

// TestAllowedSignersMatchesKeygen checks our reading of options against
// the real ssh-keygen for the same file.
func TestAllowedSignersMatchesKeygen(t *testing.T) {
	raw := []byte("message\n")
	dir := t.TempDir()
	s := newSigner(t, "alice", "ed25519")
	sigPath := dir + "/m.sig"
	writeFile(t, sigPath, mustSign(t, raw, s, "m.sig").Armor)
	key := string(ssh.MarshalAuthorizedKey(s.PublicKey()))
	for _, opts := range []string{
		``,
		`namespaces="cardgate-*" `,
		`namespaces="git" `,
		`namespaces="cardgate-*,!cardgate-allowlist@v1" `,
		`valid-before="20200101Z" `,
		`valid-after="20990101Z" `,
	} {
		t.Run(opts, func(t *testing.T) {
			file := []byte("alice " + opts + key)
			writeFile(t, dir+"/as", file)
			_, keygenErr := sshKeygen(t, raw, "-Y", "verify", "-f", dir+"/as", "-I", "alice", "-n", Namespace, "-s", sigPath)
			as, err := ParseAllowedSigners(file)
			if err != nil {
				t.Fatal(err)
			}
			p, _, _ := as.lookup(s.PublicKey(), Namespace, time.Now())
			if (len(p) > 0) != (keygenErr == nil) {
				t.Errorf("allowed_signers %q: cardgate permits=%v, ssh-keygen err=%v", opts, len(p) > 0, keygenErr)
			}
		})
	}
}

func TestDuplicateKeys(t *testing.T) {
	k1, k2, k3 := newSigner(t, "", "ed25519"), newSigner(t, "", "ecdsa"), newSigner(t, "", "ed25519")
	line := func(p string, s signer) string { return p + " " + string(ssh.MarshalAuthorizedKey(s.PublicKey())) }
	fp := func(s signer) string { return ssh.FingerprintSHA256(s.PublicKey()) }
	tests := []struct {
		name string
		file string
		want []DuplicateKey
	}{
		{"each key once", line("alice", k1) + line("bob", k2), nil},
		{"one line, two names", line("alice,alice@hw", k1) + line("bob", k2), nil},
		{"one principal, two keys", line("alice", k1) + line("alice", k2), nil},
		{"a key under two names", "# pinned\n" + line("alice", k1) + line("bob", k2) + line("dan", k1),
			[]DuplicateKey{{Fingerprint: fp(k1), Lines: []int{2, 4}, Principals: []string{"alice", "dan"}}}},
		{"two keys each twice", line("alice", k1) + line("bob", k2) + line("dan,alice", k1) + line("erin", k2) + line("carol", k3),
			[]DuplicateKey{
				{Fingerprint: fp(k1), Lines: []int{1, 3}, Principals: []string{"alice", "dan"}},
				{Fingerprint: fp(k2), Lines: []int{2, 4}, Principals: []string{"bob", "erin"}},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as, err := ParseAllowedSigners([]byte(tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, as.DuplicateKeys()); diff != "" {
				t.Errorf("DuplicateKeys() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
