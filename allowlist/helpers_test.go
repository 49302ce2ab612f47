package allowlist

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// testNow is inside the fixture's validity window.
var testNow = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return testNow }

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signer is a test key with the principal it is listed under.
type signer struct {
	principal string
	ssh.Signer
}

func newSigner(t testing.TB, principal, kind string) signer {
	t.Helper()
	var key any
	var err error
	switch kind {
	case "ed25519":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	case "ecdsa":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ecdsa384":
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "rsa3072":
		key, err = rsa.GenerateKey(rand.Reader, 3072)
	case "rsa2048":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		t.Fatalf("unknown key kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return signer{principal: principal, Signer: s}
}

// allowedSigners renders an allowed_signers file listing each signer.
func allowedSigners(signers ...signer) []byte {
	var b bytes.Buffer
	b.WriteString("# test allowed_signers\n")
	for _, s := range signers {
		fmt.Fprintf(&b, "%s %s", s.principal, ssh.MarshalAuthorizedKey(s.PublicKey()))
	}
	return b.Bytes()
}

func mustSign(t testing.TB, raw []byte, s ssh.Signer, name string) Signature {
	t.Helper()
	if w, ok := s.(signer); ok {
		s = w.Signer // the wrapper would hide ssh.AlgorithmSigner
	}
	armored, err := Sign(raw, s)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return Signature{Name: name, Armor: armored}
}

// sshKeygen runs the real OpenSSH ssh-keygen. The interoperability tests
// are the point of these helpers, so a missing binary is a failure, not a
// skip: .ci/run installs openssh-client.
func sshKeygen(t *testing.T, stdin []byte, args ...string) ([]byte, error) {
	t.Helper()
	path, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Fatalf("ssh-keygen not found (install openssh-client): %v", err)
	}
	cmd := exec.Command(path, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if err != nil {
		return out.Bytes(), fmt.Errorf("ssh-keygen %s: %w: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes(), nil
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func asVerifyError(t *testing.T, err error) *VerifyError {
	t.Helper()
	var ve *VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *VerifyError", err, err)
	}
	return ve
}
