package allowlist

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// keygenKey makes a key with the real ssh-keygen in dir and returns the
// private key path and the public key.
func keygenKey(t *testing.T, dir, name string, args ...string) (string, ssh.PublicKey) {
	t.Helper()
	path := filepath.Join(dir, name)
	if _, err := sshKeygen(t, nil, append([]string{"-q", "-N", "", "-C", name, "-f", path}, args...)...); err != nil {
		t.Fatal(err)
	}
	pubText, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(pubText)
	if err != nil {
		t.Fatal(err)
	}
	return path, pub
}

// TestInteropKeygenToCardgate: keys and signatures made by ssh-keygen
// -Y sign are accepted by Verify; refused key types stay refused.
func TestInteropKeygenToCardgate(t *testing.T) {
	raw := readFixture(t, "allowlist.yaml")
	tests := []struct {
		name   string
		args   []string
		sign   []string // extra -Y sign options
		wantOK bool
	}{
		{"ed25519", []string{"-t", "ed25519"}, nil, true},
		{"ed25519 sha256", []string{"-t", "ed25519"}, []string{"-O", "hashalg=sha256"}, true},
		{"ecdsa p256", []string{"-t", "ecdsa", "-b", "256"}, nil, true},
		{"rsa 3072", []string{"-t", "rsa", "-b", "3072"}, nil, true},
		{"ecdsa p384 refused", []string{"-t", "ecdsa", "-b", "384"}, nil, false},
		{"rsa 2048 refused", []string{"-t", "rsa", "-b", "2048"}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			key, pub := keygenKey(t, dir, "alice", tt.args...)
			doc := filepath.Join(dir, "allowlist.yaml")
			writeFile(t, doc, raw)
			args := append([]string{"-Y", "sign", "-f", key, "-n", Namespace}, tt.sign...)
			if _, err := sshKeygen(t, nil, append(args, doc)...); err != nil {
				t.Fatal(err)
			}
			armored, err := os.ReadFile(doc + ".sig")
			if err != nil {
				t.Fatal(err)
			}
			signers := []byte("alice " + string(ssh.MarshalAuthorizedKey(pub)))
			p := Policy{AllowedSigners: signers, Threshold: 1, Environment: "test", Now: fixedNow}
			if !tt.wantOK {
				// The key is refused already in allowed_signers.
				if _, err := Verify(raw, []Signature{{Name: "alice.sig", Armor: armored}}, p); err == nil {
					t.Fatalf("Verify(%s) = nil error, want refusal", tt.name)
				}
				return
			}
			a, err := Verify(raw, []Signature{{Name: "alice.sig", Armor: armored}}, p)
			if err != nil {
				t.Fatalf("Verify(ssh-keygen %s signature) = %v, want success", tt.name, err)
			}
			if got := a.Signatures[0]; got.Status != StatusValid || got.Principal != "alice" || got.Fingerprint != ssh.FingerprintSHA256(pub) {
				t.Errorf("Verify(%s) signature = %+v, want valid by alice %s", tt.name, got, ssh.FingerprintSHA256(pub))
			}
		})
	}
}

// TestInteropCardgateToKeygen: signatures made by Sign are accepted by
// ssh-keygen -Y verify, and ssh-keygen -Y find-principals finds the signer.
func TestInteropCardgateToKeygen(t *testing.T) {
	raw := readFixture(t, "allowlist.yaml")
	for _, kind := range []string{"ed25519", "ecdsa", "rsa3072"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			s := newSigner(t, "bob@audit.example", kind)
			as := filepath.Join(dir, "allowed_signers")
			writeFile(t, as, allowedSigners(s))
			sig := filepath.Join(dir, "bob.sig")
			writeFile(t, sig, mustSign(t, raw, s, "bob.sig").Armor)
			out, err := sshKeygen(t, raw, "-Y", "verify", "-f", as, "-I", "bob@audit.example", "-n", Namespace, "-s", sig)
			if err != nil {
				t.Fatalf("ssh-keygen -Y verify of Sign(%s) = %v", kind, err)
			}
			if !bytes.HasPrefix(out, []byte("Good \""+Namespace+"\" signature for bob@audit.example")) {
				t.Errorf("ssh-keygen -Y verify printed %q", out)
			}
			out, err = sshKeygen(t, nil, "-Y", "find-principals", "-f", as, "-s", sig)
			if err != nil || strings.TrimSpace(string(out)) != "bob@audit.example" {
				t.Errorf("ssh-keygen -Y find-principals = %q, %v, want bob@audit.example", out, err)
			}
			// And a tampered file fails in ssh-keygen as well.
			bad := bytes.Replace(raw, []byte("version: 1"), []byte("version: 2"), 1)
			if _, err := sshKeygen(t, bad, "-Y", "verify", "-f", as, "-I", "bob@audit.example", "-n", Namespace, "-s", sig); err == nil {
				t.Errorf("ssh-keygen -Y verify accepted a tampered file")
			}
		})
	}
}

// TestSignByteCompatible: for ed25519 (deterministic) Sign writes exactly
// the bytes ssh-keygen -Y sign writes.
func TestSignByteCompatible(t *testing.T) {
	dir := t.TempDir()
	key, _ := keygenKey(t, dir, "carol", "-t", "ed25519")
	pemBytes, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.ParsePrivateKey(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{0, 1, 100, 4096} {
		msg := bytes.Repeat([]byte("a"), size)
		doc := filepath.Join(dir, "m")
		writeFile(t, doc, msg)
		os.Remove(doc + ".sig")
		if _, err := sshKeygen(t, nil, "-Y", "sign", "-f", key, "-n", Namespace, doc); err != nil {
			t.Fatal(err)
		}
		want, _ := os.ReadFile(doc + ".sig")
		got, err := Sign(msg, s)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("Sign(%d bytes) =\n%s\nwant (ssh-keygen)\n%s", size, got, want)
		}
	}
}

func TestSignRefusesWeakKeys(t *testing.T) {
	for _, kind := range []string{"rsa2048", "ecdsa384"} {
		s := newSigner(t, "x", kind)
		if _, err := Sign([]byte("x"), s); err == nil {
			t.Errorf("Sign with %s = nil error, want refusal", kind)
		}
	}
}

// skEd25519 is a software stand-in for a FIDO sk-ssh-ed25519 key. It
// produces signatures in the documented format (PROTOCOL.u2f): the key
// signs sha256(application) ‖ flags ‖ counter ‖ sha256(message).
type skEd25519 struct {
	priv  ed25519.PrivateKey
	app   string
	flags byte
}

func (k *skEd25519) PublicKey() ssh.PublicKey {
	blob := ssh.Marshal(struct {
		Type string
		Key  []byte
		App  string
	}{ssh.KeyAlgoSKED25519, k.priv.Public().(ed25519.PublicKey), k.app})
	pub, err := ssh.ParsePublicKey(blob)
	if err != nil {
		panic(err)
	}
	return pub
}

func (k *skEd25519) Sign(_ io.Reader, data []byte) (*ssh.Signature, error) {
	appHash := sha256.Sum256([]byte(k.app))
	msgHash := sha256.Sum256(data)
	rest := []byte{k.flags, 0, 0, 0, 7}
	var signed []byte
	signed = append(signed, appHash[:]...)
	signed = append(signed, rest...)
	signed = append(signed, msgHash[:]...)
	return &ssh.Signature{Format: ssh.KeyAlgoSKED25519, Blob: ed25519.Sign(k.priv, signed), Rest: rest}, nil
}

func TestSecurityKeyUserPresence(t *testing.T) {
	raw := readFixture(t, "allowlist.yaml")
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	touched := &skEd25519{priv: priv, app: "ssh:", flags: 0x01}
	untouched := &skEd25519{priv: priv, app: "ssh:", flags: 0x00}
	signers := []byte("dave " + string(ssh.MarshalAuthorizedKey(touched.PublicKey())))
	p := Policy{AllowedSigners: signers, Threshold: 1, Environment: "test", Now: fixedNow}

	armored, err := Sign(raw, touched)
	if err != nil {
		t.Fatalf("Sign(sk, touched) = %v", err)
	}
	if _, err := Verify(raw, []Signature{{Name: "dave.sig", Armor: armored}}, p); err != nil {
		t.Fatalf("Verify(sk with user presence) = %v, want success", err)
	}
	if _, err := Sign(raw, untouched); err == nil {
		t.Fatal("Sign(sk without user presence) = nil error, want refusal")
	}
	// Build the untouched signature by hand, as a hostile signer would.
	data := signedData(Namespace, "sha512", raw)
	sig, _ := untouched.Sign(nil, data)
	blob := append([]byte(sigMagic), ssh.Marshal(wireSSHSIG{Version: 1, PublicKey: untouched.PublicKey().Marshal(),
		Namespace: Namespace, HashAlg: "sha512", Signature: ssh.Marshal(sig)})...)
	_, err = Verify(raw, []Signature{{Name: "dave.sig", Armor: armor(blob)}}, p)
	ve := asVerifyError(t, err)
	if ve.Problem != ProblemThreshold || ve.Signatures[0].Status != StatusRefusedKey || !strings.Contains(ve.Signatures[0].Detail, "user presence") {
		t.Errorf("Verify(sk without user presence) = %v %+v, want threshold_not_met with a refused signature", err, ve.Signatures)
	}
}
