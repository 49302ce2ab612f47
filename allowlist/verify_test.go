package allowlist

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// attackSetup is a two-of-three signer set and a good version 1.
type attackSetup struct {
	alice, bob, carol signer
	policy            Policy
}

func newAttackSetup(t *testing.T) attackSetup {
	a := attackSetup{
		alice: newSigner(t, "alice@audit.example", "ed25519"),
		bob:   newSigner(t, "bob@audit.example", "ecdsa"),
		carol: newSigner(t, "carol@audit.example", "ed25519"),
	}
	a.policy = Policy{AllowedSigners: allowedSigners(a.alice, a.bob, a.carol), Threshold: 2, Environment: "test", Now: fixedNow}
	return a
}

func (a attackSetup) signBoth(t *testing.T, raw []byte) []Signature {
	return []Signature{mustSign(t, raw, a.alice, "alice.sig"), mustSign(t, raw, a.bob, "bob.sig")}
}

func TestVerifyGood(t *testing.T) {
	s := newAttackSetup(t)
	raw := docSpec{}.yaml()
	al, err := Verify(raw, s.signBoth(t, raw), s.policy)
	if err != nil {
		t.Fatalf("Verify(good) = %v", err)
	}
	if al.SHA256 != SHA256Hex(raw) || !bytes.Equal(al.Raw, raw) || al.Doc.Version != 1 {
		t.Errorf("Verify(good) = %+v", al)
	}
	for _, r := range al.Signatures {
		if r.Status != StatusValid {
			t.Errorf("signature %s = %s (%s), want valid", r.File, r.Status, r.Detail)
		}
	}
}

// TestAttacks is the table the issue asks for: each attack is refused,
// and with its own reason. Attacks that need state (rollback, replay,
// chain) go through a Holder with a persistent FileStateStore.
func TestAttacks(t *testing.T) {
	s := newAttackSetup(t)
	v1 := docSpec{version: 1}.yaml()
	v2 := docSpec{version: 2, prev: SHA256Hex(v1)}.yaml()
	v3 := docSpec{version: 3, prev: SHA256Hex(v2)}.yaml()
	mallory := newSigner(t, "mallory", "ed25519")

	type result struct {
		problem  Problem
		statuses []string // expected per-signature statuses, when relevant
	}
	tests := []struct {
		name string
		// history is loaded first through the same Holder and state.
		history [][]byte
		// restart makes a new Holder over the same persisted state
		// before the attack, as a process restart would.
		restart bool
		policy  func(Policy) Policy
		raw     []byte
		sigs    func(raw []byte) []Signature
		want    result
	}{
		{
			name: "flipped byte",
			raw:  v1,
			sigs: func(raw []byte) []Signature {
				flipped := bytes.Clone(raw)
				i := bytes.Index(flipped, []byte("acme.example"))
				flipped[i] ^= 0x01
				copy(raw, flipped) // the attacker serves the flipped bytes
				return s.signBoth(t, v1)
			},
			want: result{ProblemThreshold, []string{StatusInvalid, StatusInvalid}},
		},
		{
			name: "entry added after signing",
			raw: docSpec{version: 1, extraDst: `  - id: evil
    purpose: exfiltration
    owner: mallory
    url: https://evil.example/
    methods: [POST]
    callers: [billing]
    fields: [number, cvc]
`}.yaml(),
			sigs: func([]byte) []Signature { return s.signBoth(t, v1) },
			want: result{ProblemThreshold, []string{StatusInvalid, StatusInvalid}},
		},
		{
			name: "unknown key",
			raw:  v1,
			sigs: func(raw []byte) []Signature {
				return []Signature{mustSign(t, raw, s.alice, "alice.sig"), mustSign(t, raw, mallory, "mallory.sig")}
			},
			want: result{ProblemThreshold, []string{StatusValid, StatusUnknownKey}},
		},
		{
			name: "wrong namespace",
			raw:  v1,
			sigs: func(raw []byte) []Signature {
				return []Signature{mustSign(t, raw, s.alice, "alice.sig"), signWithNamespace(t, raw, s.bob, "git")}
			},
			want: result{ProblemThreshold, []string{StatusValid, StatusWrongNS}},
		},
		{
			name: "same key twice toward threshold",
			raw:  v1,
			sigs: func(raw []byte) []Signature {
				return []Signature{mustSign(t, raw, s.bob, "bob.sig"), mustSign(t, raw, s.bob, "bob-again.sig")}
			},
			want: result{ProblemThreshold, []string{StatusValid, StatusDuplicate}},
		},
		{
			name: "two principals sharing one key",
			policy: func(p Policy) Policy {
				// alice's key is also listed as "dan": still one signer.
				dan := signer{principal: "dan@audit.example", Signer: s.alice.Signer}
				p.AllowedSigners = allowedSigners(s.alice, dan, s.bob)
				return p
			},
			raw: v1,
			sigs: func(raw []byte) []Signature {
				return []Signature{mustSign(t, raw, s.alice, "alice.sig"), mustSign(t, raw, s.alice, "dan.sig")}
			},
			want: result{ProblemThreshold, []string{StatusValid, StatusDuplicate}},
		},
		{
			// The case: alice's key is listed again as "dan", and
			// dan has a second key. find-principals names the first key
			// "alice" and the second "dan", so a count by principal sees
			// two signers; the key links them into one.
			name: "a key listed twice links two names and another key",
			policy: func(p Policy) Policy {
				dan := signer{principal: "dan@audit.example", Signer: s.alice.Signer}
				dan2 := newSigner(t, "dan@audit.example", "ed25519")
				p.AllowedSigners = allowedSigners(s.alice, dan, dan2, s.bob)
				s.carol = dan2 // reuse the slot for dan's second key
				return p
			},
			raw: v1,
			sigs: func(raw []byte) []Signature {
				return []Signature{mustSign(t, raw, s.alice, "alice.sig"), mustSign(t, raw, s.carol, "dan.sig")}
			},
			want: result{ProblemThreshold, []string{StatusValid, StatusSameSigner}},
		},
		{
			name: "one principal with two keys",
			policy: func(p Policy) Policy {
				alice2 := newSigner(t, "alice@audit.example", "ed25519")
				p.AllowedSigners = append(allowedSigners(s.alice, s.bob), allowedSigners(alice2)...)
				p.Threshold = 2
				s.carol = alice2 // reuse the slot for the second key
				return p
			},
			raw: v1,
			sigs: func(raw []byte) []Signature {
				return []Signature{mustSign(t, raw, s.alice, "alice.sig"), mustSign(t, raw, s.carol, "alice-laptop.sig")}
			},
			want: result{ProblemThreshold, []string{StatusValid, StatusSameSigner}},
		},
		{
			name:    "rollback to an older version",
			history: [][]byte{v1, v2, v3},
			raw:     v2,
			sigs:    func(raw []byte) []Signature { return s.signBoth(t, raw) },
			want:    result{problem: ProblemRollback},
		},
		{
			name:    "replay of an older signed file after restart",
			history: [][]byte{v1, v2},
			restart: true,
			raw:     v1,
			sigs:    func(raw []byte) []Signature { return s.signBoth(t, raw) },
			want:    result{problem: ProblemRollback},
		},
		{
			name:    "same version with other bytes",
			history: [][]byte{v1, v2},
			raw:     docSpec{version: 2, prev: SHA256Hex(v1), env: "test", extraDst: "# reworded\n"}.yaml(),
			sigs:    func(raw []byte) []Signature { return s.signBoth(t, raw) },
			want:    result{problem: ProblemVersionReused},
		},
		{
			name:    "prev_sha256 mismatch",
			history: [][]byte{v1},
			raw:     docSpec{version: 2, prev: strings.Repeat("0", 64)}.yaml(),
			sigs:    func(raw []byte) []Signature { return s.signBoth(t, raw) },
			want:    result{problem: ProblemChainBroken},
		},
		{
			name: "expired",
			raw:  docSpec{issued: testNow.Add(-40 * 24 * time.Hour), expires: testNow.Add(-time.Second)}.yaml(),
			sigs: func(raw []byte) []Signature { return s.signBoth(t, raw) },
			want: result{problem: ProblemExpired},
		},
		{
			name: "not yet valid",
			raw:  docSpec{issued: testNow.Add(time.Hour), expires: testNow.Add(40 * 24 * time.Hour)}.yaml(),
			sigs: func(raw []byte) []Signature { return s.signBoth(t, raw) },
			want: result{problem: ProblemNotYetValid},
		},
		{
			name: "validity too long",
			raw:  docSpec{expires: testNow.Add(365 * 24 * time.Hour)}.yaml(),
			sigs: func(raw []byte) []Signature { return s.signBoth(t, raw) },
			want: result{problem: ProblemValidityTooLong},
		},
		{
			name: "wrong environment",
			raw:  docSpec{env: "staging"}.yaml(),
			sigs: func(raw []byte) []Signature { return s.signBoth(t, raw) },
			want: result{problem: ProblemEnvironment},
		},
		{
			name: "key outside its namespaces option",
			policy: func(p Policy) Policy {
				p.AllowedSigners = append(allowedSigners(s.alice, s.carol),
					[]byte(`bob@audit.example namespaces="git" `+string(ssh.MarshalAuthorizedKey(s.bob.PublicKey())))...)
				return p
			},
			raw:  v1,
			sigs: func(raw []byte) []Signature { return s.signBoth(t, raw) },
			want: result{ProblemThreshold, []string{StatusValid, StatusNotPermitted}},
		},
		{
			name: "key past its valid-before",
			policy: func(p Policy) Policy {
				p.AllowedSigners = append(allowedSigners(s.alice, s.carol),
					[]byte(`bob@audit.example valid-before="20261130Z" `+string(ssh.MarshalAuthorizedKey(s.bob.PublicKey())))...)
				return p
			},
			raw:  v1,
			sigs: func(raw []byte) []Signature { return s.signBoth(t, raw) },
			want: result{ProblemThreshold, []string{StatusValid, StatusNotPermitted}},
		},
		{
			name: "garbage signature",
			raw:  v1,
			sigs: func(raw []byte) []Signature {
				return []Signature{mustSign(t, raw, s.alice, "alice.sig"), {Name: "junk.sig", Armor: []byte("-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n")}}
			},
			want: result{ProblemThreshold, []string{StatusValid, StatusMalformed}},
		},
		{
			name:   "threshold above the signer count",
			policy: func(p Policy) Policy { p.Threshold = 4; return p },
			raw:    v1,
			sigs:   func(raw []byte) []Signature { return s.signBoth(t, raw) },
			want:   result{problem: ProblemBadPolicy},
		},
		{
			name:   "zero policy",
			policy: func(Policy) Policy { return Policy{} },
			raw:    v1,
			sigs:   func(raw []byte) []Signature { return s.signBoth(t, raw) },
			want:   result{problem: ProblemBadPolicy},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := s.policy
			if tt.policy != nil {
				p = tt.policy(p)
			}
			dir := t.TempDir()
			state := NewFileStateStore(filepath.Join(dir, "state.json"))
			h := NewHolder(HolderOptions{Path: filepath.Join(dir, "allowlist.yaml"), SignaturesDir: filepath.Join(dir, "sigs"), Policy: p, State: state})
			for i, prev := range tt.history {
				writeSet(t, dir, prev, s.signBoth(t, prev)...)
				if err := h.Load(); err != nil {
					t.Fatalf("history[%d]: Load = %v", i, err)
				}
			}
			if tt.restart {
				h = NewHolder(HolderOptions{Path: filepath.Join(dir, "allowlist.yaml"), SignaturesDir: filepath.Join(dir, "sigs"), Policy: p, State: state})
			}
			raw := bytes.Clone(tt.raw)
			sigs := tt.sigs(raw)
			writeSet(t, dir, raw, sigs...)
			err := h.Load()
			ve := asVerifyError(t, err)
			if ve.Problem != tt.want.problem {
				t.Fatalf("Load(%s) = %v, want %s", tt.name, err, tt.want.problem)
			}
			if !errors.Is(err, &VerifyError{Problem: tt.want.problem}) {
				t.Errorf("errors.Is(%v, %s) = false", err, tt.want.problem)
			}
			if tt.want.statuses != nil {
				var got []string
				for _, r := range ve.Signatures {
					got = append(got, r.Status)
				}
				if fmt.Sprint(got) != fmt.Sprint(tt.want.statuses) {
					t.Errorf("Load(%s) signature statuses = %v, want %v (%+v)", tt.name, got, tt.want.statuses, ve.Signatures)
				}
			}
			// A refused load keeps what was live before.
			if len(tt.history) > 0 && !tt.restart {
				cur, err := h.Current()
				if err != nil || !bytes.Equal(cur.Raw, tt.history[len(tt.history)-1]) {
					t.Errorf("after a refused load Current() = %v, want the last good version", err)
				}
			}
		})
	}
}

// signWithNamespace makes an otherwise valid signature for another
// namespace, as `ssh-keygen -Y sign -n git` would.
func signWithNamespace(t *testing.T, raw []byte, s signer, ns string) Signature {
	t.Helper()
	data := signedData(ns, "sha512", raw)
	sig, err := s.Signer.Sign(nil, data)
	if err != nil {
		t.Fatal(err)
	}
	blob := append([]byte(sigMagic), ssh.Marshal(wireSSHSIG{Version: 1, PublicKey: s.PublicKey().Marshal(),
		Namespace: ns, HashAlg: "sha512", Signature: ssh.Marshal(sig)})...)
	return Signature{Name: s.principal + "-" + ns + ".sig", Armor: armor(blob)}
}

func TestVerifyLimits(t *testing.T) {
	s := newAttackSetup(t)
	raw := docSpec{}.yaml()
	many := make([]Signature, MaxSignatures+1)
	for i := range many {
		many[i] = Signature{Name: fmt.Sprint(i), Armor: []byte("x")}
	}
	if _, err := Verify(raw, many, s.policy); err == nil {
		t.Errorf("Verify with %d signatures = nil error", len(many))
	}
	big := append(bytes.Clone(raw), bytes.Repeat([]byte("#"), MaxDocumentBytes)...)
	if _, err := Verify(big, s.signBoth(t, raw), s.policy); err == nil {
		t.Errorf("Verify of a %d-byte document = nil error", len(big))
	}
}
