package signing

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rfcNow is the created time of every RFC 9421 Appendix B example.
var rfcNow = time.Unix(1618884473, 0)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rfcSecret is test-shared-secret of RFC 9421 Appendix B.1.5, decoded.
func rfcSecret(t *testing.T) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(readTestdata(t, "rfc9421-b15-shared-secret.b64"))))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func privateKey(t testing.TB, name string) crypto.Signer {
	t.Helper()
	blk, _ := pem.Decode(readTestdata(t, name))
	if blk == nil {
		t.Fatalf("%s: no PEM block", name)
	}
	var k any
	var err error
	if blk.Type == "EC PRIVATE KEY" {
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	} else {
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k.(crypto.Signer)
}

func publicKey(t *testing.T, name string) crypto.PublicKey {
	t.Helper()
	blk, _ := pem.Decode(readTestdata(t, name))
	if blk == nil {
		t.Fatalf("%s: no PEM block", name)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// readRequest parses a raw HTTP/1.1 request as a server receives it.
func readRequest(t *testing.T, raw []byte) (*http.Request, []byte) {
	t.Helper()
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	return req, body
}

// rfcTestRequest is the RFC 9421 B.2 test-request as the gateway would
// send it: an outgoing request with its headers and body.
func rfcTestRequest(t *testing.T) (*http.Request, []byte) {
	t.Helper()
	in, body := readRequest(t, readTestdata(t, "rfc9421-test-request.http"))
	out, err := http.NewRequest(in.Method, "https://"+in.Host+in.RequestURI, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	out.Header = in.Header.Clone()
	return out, body
}

// wire sends req through a real HTTP/1.1 serialization and parses it back
// as a server would, so verifiers see what the wire carried.
func wire(t *testing.T, req *http.Request, body []byte) (*http.Request, []byte) {
	t.Helper()
	req.Body = io.NopCloser(bytes.NewReader(body))
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return readRequest(t, buf.Bytes())
}

// openssl runs the real openssl binary, an implementation independent of
// this package, and returns its standard output.
func openssl(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("openssl %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes()
}

// opensslHMAC computes a base64 HMAC of msg with openssl.
func opensslHMAC(t *testing.T, digest string, key, msg []byte) string {
	t.Helper()
	mac := openssl(t, msg, "dgst", "-"+digest, "-mac", "HMAC", "-macopt", "hexkey:"+hex.EncodeToString(key), "-binary")
	return base64.StdEncoding.EncodeToString(mac)
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustSigner(t testing.TB, spec Spec, key Key) *Signer {
	t.Helper()
	s, err := New(spec, key)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func mustVerifier(t testing.TB, spec Spec, key Key) *Verifier {
	t.Helper()
	v, err := NewVerifier(spec, key)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// code returns the stable code of a signing error, or "" for nil.
func code(err error) string {
	switch e := err.(type) {
	case nil:
		return ""
	case *Error:
		return e.Code
	case *SpecError:
		return CodeSpecInvalid
	}
	return "untyped: " + err.Error()
}
