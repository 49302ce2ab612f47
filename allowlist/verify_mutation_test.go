package allowlist

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// Found by mutation testing (docs/mutation.md): the size and signature
// count limits at their edges, the default clock skew, and what a
// signature's result names.

// A document of exactly MaxDocumentBytes, and exactly MaxSignatures
// signatures, are accepted; one more of either is refused.
func TestVerifyAtTheLimits(t *testing.T) {
	s := newAttackSetup(t)
	raw := docSpec{}.yaml()
	pad := func(n int) []byte {
		b := append(bytes.Clone(raw), "# "...)
		b = append(b, bytes.Repeat([]byte("x"), n-len(b)-1)...)
		return append(b, '\n')
	}
	for _, tt := range []struct {
		name string
		raw  []byte
		sigs int
		ok   bool
	}{
		{"document at the limit", pad(MaxDocumentBytes), 2, true},
		{"document one byte over", pad(MaxDocumentBytes + 1), 2, false},
		{"signatures at the limit", raw, MaxSignatures, true},
		{"one signature over", raw, MaxSignatures + 1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.raw) > MaxDocumentBytes+1 || (tt.ok && len(tt.raw) > MaxDocumentBytes) {
				t.Fatalf("test document is %d bytes", len(tt.raw))
			}
			sigs := s.signBoth(t, tt.raw)
			for len(sigs) < tt.sigs {
				sigs = append(sigs, Signature{Name: fmt.Sprintf("again-%d.sig", len(sigs)), Armor: sigs[0].Armor})
			}
			_, err := Verify(tt.raw, sigs, s.policy)
			if tt.ok && err != nil {
				t.Errorf("Verify(%d bytes, %d signatures) = %v, want accepted", len(tt.raw), len(sigs), err)
			}
			if !tt.ok {
				var ve *VerifyError
				if !errors.As(err, &ve) || ve.Problem != ProblemMalformed {
					t.Errorf("Verify(%d bytes, %d signatures) = %v, want refused as malformed", len(tt.raw), len(sigs), err)
				}
			}
		})
	}
}

// A zero ClockSkew means DefaultClockSkew; any other is used as given.
func TestVerifyClockSkew(t *testing.T) {
	s := newAttackSetup(t)
	for _, tt := range []struct {
		name   string
		skew   time.Duration
		issued time.Duration // after now
		ok     bool
	}{
		{"default skew, inside", 0, DefaultClockSkew - time.Minute, true},
		{"default skew, beyond", 0, DefaultClockSkew + time.Minute, false},
		{"one minute, beyond", time.Minute, 2 * time.Minute, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			raw := docSpec{issued: testNow.Add(tt.issued)}.yaml()
			p := s.policy
			p.ClockSkew = tt.skew
			_, err := Verify(raw, s.signBoth(t, raw), p)
			if tt.ok && err != nil {
				t.Errorf("Verify(issued %v ahead, skew %v) = %v, want accepted", tt.issued, tt.skew, err)
			}
			if !tt.ok && !errors.Is(err, ErrNotYetValid) {
				t.Errorf("Verify(issued %v ahead, skew %v) = %v, want ErrNotYetValid", tt.issued, tt.skew, err)
			}
		})
	}
}

// Each signature's result names its key's fingerprint and every
// principal the key is listed under, comma-separated.
func TestVerifyResultNamesKeyAndPrincipals(t *testing.T) {
	s := newAttackSetup(t)
	p := s.policy
	p.Threshold = 1
	p.AllowedSigners = []byte("alice@audit.example,alice@backup.example " + string(ssh.MarshalAuthorizedKey(s.alice.PublicKey())))
	raw := docSpec{}.yaml()
	al, err := Verify(raw, []Signature{mustSign(t, raw, s.alice, "alice.sig")}, p)
	if err != nil {
		t.Fatal(err)
	}
	r := al.Signatures[0]
	if want := ssh.FingerprintSHA256(s.alice.PublicKey()); r.Fingerprint != want {
		t.Errorf("Fingerprint = %q, want %q", r.Fingerprint, want)
	}
	if want := "alice@audit.example,alice@backup.example"; r.Principal != want {
		t.Errorf("Principal = %q, want %q", r.Principal, want)
	}
}

// A document valid for exactly MaxValidity is accepted; one second more
// is refused.
func TestVerifyMaxValidityEdge(t *testing.T) {
	s := newAttackSetup(t)
	p := s.policy
	p.MaxValidity = 10 * 24 * time.Hour
	issued := testNow.Add(-24 * time.Hour)
	for _, tt := range []struct {
		validity time.Duration
		ok       bool
	}{{p.MaxValidity, true}, {p.MaxValidity + time.Second, false}} {
		raw := docSpec{issued: issued, expires: issued.Add(tt.validity)}.yaml()
		_, err := Verify(raw, s.signBoth(t, raw), p)
		if tt.ok && err != nil {
			t.Errorf("Verify(valid for %v, max %v) = %v, want accepted", tt.validity, p.MaxValidity, err)
		}
		if !tt.ok && !errors.Is(err, ErrValidityTooLong) {
			t.Errorf("Verify(valid for %v, max %v) = %v, want ErrValidityTooLong", tt.validity, p.MaxValidity, err)
		}
	}
}
