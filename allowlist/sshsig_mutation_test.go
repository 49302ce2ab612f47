package allowlist

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh/agent"
)

// Found by mutation testing (docs/mutation.md): the armored signature's
// size limit at its edge, and armor's line wrapping at a whole number of
// lines.

// A signature file of exactly MaxSignatureBytes is read; one byte more is
// refused. The padding is whitespace after the end line, which dearmor
// accepts, so only the size decides.
func TestSignatureSizeAtTheLimit(t *testing.T) {
	s := newAttackSetup(t)
	raw := docSpec{}.yaml()
	pad := func(sig []byte, n int) []byte {
		return append(bytes.Clone(sig), bytes.Repeat([]byte("\n"), n-len(sig))...)
	}
	for _, tt := range []struct {
		name string
		size int
		ok   bool
	}{
		{"at the limit", MaxSignatureBytes, true},
		{"one byte over", MaxSignatureBytes + 1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sigs := s.signBoth(t, raw)
			sigs[0].Armor = pad(sigs[0].Armor, tt.size)
			if _, err := dearmor(sigs[0].Armor); (err == nil) != tt.ok {
				t.Errorf("dearmor(%d bytes) = %v, want ok %v", tt.size, err, tt.ok)
			}
			_, err := Verify(raw, sigs, s.policy)
			if (err == nil) != tt.ok {
				t.Errorf("Verify with a %d-byte signature = %v, want ok %v", tt.size, err, tt.ok)
			}
		})
	}
}

// armor wraps base64 as sshbuf_dtob64 does: a newline after every 70th
// character and one at the end, never an empty line, also when the base64
// fills its last line exactly.
func TestArmorWrapsLikeSSHKeygen(t *testing.T) {
	for _, n := range []int{1, 51, 52, 53, 105, 106, 210} { // base64 lengths 4, 68, 72, 72, 140, 144, 280
		b64 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xa5}, n))
		// sshbuf_dtob64(…, wrap=1) from OpenSSH, transcribed.
		var want strings.Builder
		want.WriteString(armorBegin + "\n")
		i := 0
		for ; i < len(b64); i++ {
			want.WriteByte(b64[i])
			if i%70 == 69 {
				want.WriteByte('\n')
			}
		}
		if (i-1)%70 != 69 {
			want.WriteByte('\n')
		}
		want.WriteString(armorEnd + "\n")
		got := armor(bytes.Repeat([]byte{0xa5}, n))
		if string(got) != want.String() {
			t.Errorf("armor(%d bytes) =\n%s\nwant\n%s", n, got, want.String())
		}
		if blob, err := dearmor(got); err != nil || !bytes.Equal(blob, bytes.Repeat([]byte{0xa5}, n)) {
			t.Errorf("dearmor(armor(%d bytes)) = %d bytes, %v", n, len(blob), err)
		}
	}
}

// A signature file cut short is refused as malformed with a Detail that
// names what is missing, which `cardgate allowlist verify` prints: the end
// line when only the begin line is there, the blob when the lines are
// there but nothing between them.
func TestTruncatedSignatureSaysWhatIsMissing(t *testing.T) {
	s := newAttackSetup(t)
	raw := docSpec{}.yaml()
	for _, tt := range []struct {
		name, armor, wantDetail string
	}{
		{"begin line only", armorBegin + "\n", "missing " + armorEnd},
		{"no blob", armorBegin + "\n" + armorEnd + "\n", "not an SSHSIG blob"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sigs := append(s.signBoth(t, raw), Signature{Name: "cut.sig", Armor: []byte(tt.armor)})
			res, err := Verify(raw, sigs, s.policy)
			if err != nil {
				t.Fatalf("Verify = %v, want accepted on the two good signatures", err)
			}
			r := res.Signatures[2]
			if r.Status != StatusMalformed || r.Detail != tt.wantDetail {
				t.Errorf("cut.sig: %s %q, want %s %q", r.Status, r.Detail, StatusMalformed, tt.wantDetail)
			}
		})
	}
}

// An ssh-agent's RSA key (*agent.Key) carries only the wire form, so
// checkKeyType reads its size from that: a 3072-bit key signs, a 2048-bit
// one is refused. Sign goes through a real agent over a pipe.
func TestSignWithAgentRSAKey(t *testing.T) {
	raw := docSpec{}.yaml()
	for _, tt := range []struct {
		bits int
		ok   bool
	}{
		{3072, true},
		{2048, false},
	} {
		t.Run(fmt.Sprintf("rsa %d", tt.bits), func(t *testing.T) {
			key, err := rsa.GenerateKey(rand.Reader, tt.bits)
			if err != nil {
				t.Fatal(err)
			}
			keyring := agent.NewKeyring()
			if err := keyring.Add(agent.AddedKey{PrivateKey: key}); err != nil {
				t.Fatal(err)
			}
			client, server := net.Pipe()
			t.Cleanup(func() { client.Close(); server.Close() })
			go func() { _ = agent.ServeAgent(keyring, server) }()
			signers, err := agent.NewClient(client).Signers()
			if err != nil || len(signers) != 1 {
				t.Fatalf("agent signers: %d, %v", len(signers), err)
			}
			if _, isWire := signers[0].PublicKey().(*agent.Key); !isWire {
				t.Fatalf("agent public key is %T, want *agent.Key", signers[0].PublicKey())
			}
			armored, err := Sign(raw, signers[0])
			if (err == nil) != tt.ok {
				t.Fatalf("Sign with an agent RSA-%d key = %v, want ok %v", tt.bits, err, tt.ok)
			}
			if !tt.ok {
				if !strings.Contains(err.Error(), "shorter than 3072 bits") {
					t.Errorf("Sign error %q does not name the size", err)
				}
				return
			}
			pub := signer{principal: "agent@audit.example", Signer: signers[0]}
			p := Policy{AllowedSigners: allowedSigners(pub), Threshold: 1, Environment: "test", Now: fixedNow}
			if _, err := Verify(raw, []Signature{{Name: "agent.sig", Armor: armored}}, p); err != nil {
				t.Errorf("Verify(agent signature) = %v", err)
			}
		})
	}
}
