package allowlist

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"

	"golang.org/x/crypto/ssh"
)

// This file implements OpenSSH's SSHSIG format (PROTOCOL.sshsig in
// openssh-portable), as made by `ssh-keygen -Y sign` and checked by
// `ssh-keygen -Y verify`. It is written out here rather than imported so
// that an auditor can read every check in one place.

const (
	sigMagic     = "SSHSIG"
	sigVersion   = 1
	armorBegin   = "-----BEGIN SSH SIGNATURE-----"
	armorEnd     = "-----END SSH SIGNATURE-----"
	armorColumns = 70 // sshbuf_dtob64 wraps at 70, as ssh-keygen writes
	// MaxSignatureBytes caps one armored signature file. An RSA-16384
	// signature is under 5 KiB.
	MaxSignatureBytes = 64 << 10
	// MinRSABits is the smallest RSA modulus accepted.
	MinRSABits = 3072
	// skFlagUserPresence is the FIDO "user present" bit (PROTOCOL.u2f).
	skFlagUserPresence = 0x01
)

// sigFormatFor maps each accepted key type to the signature formats it may
// use. Anything absent (DSA, ssh-rsa with SHA-1, P-384/521, certificates)
// is refused.
var sigFormatFor = map[string][]string{
	ssh.KeyAlgoED25519:    {ssh.KeyAlgoED25519},
	ssh.KeyAlgoSKED25519:  {ssh.KeyAlgoSKED25519},
	ssh.KeyAlgoECDSA256:   {ssh.KeyAlgoECDSA256},
	ssh.KeyAlgoSKECDSA256: {ssh.KeyAlgoSKECDSA256},
	ssh.KeyAlgoRSA:        {ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA512},
}

// sshSignature is a decoded SSHSIG blob.
type sshSignature struct {
	Key       ssh.PublicKey
	Namespace string
	HashAlg   string
	Sig       *ssh.Signature
}

// wireSSHSIG is the blob after the 6-byte magic.
type wireSSHSIG struct {
	Version   uint32
	PublicKey []byte
	Namespace string
	Reserved  []byte
	HashAlg   string
	Signature []byte
	Rest      []byte `ssh:"rest"`
}

// dearmor returns the blob inside an armored signature. It accepts what
// ssh-keygen writes: the begin line, base64 lines, the end line, with LF
// or CRLF line ends and nothing but whitespace after the end line.
func dearmor(armored []byte) ([]byte, error) {
	if len(armored) > MaxSignatureBytes {
		return nil, fmt.Errorf("signature is %d bytes, more than %d", len(armored), MaxSignatureBytes)
	}
	s := string(bytes.ReplaceAll(armored, []byte("\r\n"), []byte("\n")))
	body, ok := cutPrefix(s, armorBegin+"\n")
	if !ok {
		return nil, errors.New("missing " + armorBegin)
	}
	end := bytes.Index([]byte(body), []byte(armorEnd))
	if end < 0 {
		return nil, errors.New("missing " + armorEnd)
	}
	if tail := body[end+len(armorEnd):]; len(bytes.TrimSpace([]byte(tail))) != 0 {
		return nil, errors.New("data after " + armorEnd)
	}
	var b64 []byte
	for _, line := range bytes.Split([]byte(body[:end]), []byte("\n")) {
		b64 = append(b64, bytes.TrimRight(line, " \t")...)
	}
	blob, err := base64.StdEncoding.Strict().DecodeString(string(b64))
	if err != nil {
		return nil, fmt.Errorf("bad base64: %w", err)
	}
	return blob, nil
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return s, false
}

// parseSSHSIG decodes a blob and applies every check that does not need
// the message or the signer list: version, namespace, hash, key type,
// signature format and sk user presence.
func parseSSHSIG(blob []byte) (*sshSignature, error) {
	rest, ok := bytes.CutPrefix(blob, []byte(sigMagic))
	if !ok {
		return nil, errors.New("not an SSHSIG blob")
	}
	var w wireSSHSIG
	if err := ssh.Unmarshal(rest, &w); err != nil {
		return nil, fmt.Errorf("bad SSHSIG blob: %w", err)
	}
	if len(w.Rest) != 0 {
		return nil, errors.New("trailing bytes after the SSHSIG blob")
	}
	if w.Version != sigVersion {
		return nil, fmt.Errorf("SSHSIG version %d, want %d", w.Version, sigVersion)
	}
	key, err := ssh.ParsePublicKey(w.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("bad public key: %w", err)
	}
	var sig ssh.Signature
	if err := ssh.Unmarshal(w.Signature, &sig); err != nil {
		return nil, fmt.Errorf("bad signature encoding: %w", err)
	}
	s := &sshSignature{Key: key, Namespace: w.Namespace, HashAlg: w.HashAlg, Sig: &sig}
	if w.HashAlg != "sha256" && w.HashAlg != "sha512" {
		return s, fmt.Errorf("hash %q is not sha256 or sha512", w.HashAlg)
	}
	if len(w.Reserved) != 0 {
		return s, errors.New("reserved field is not empty")
	}
	if err := checkKeyType(key); err != nil {
		return s, err
	}
	formatOK := false
	for _, f := range sigFormatFor[key.Type()] {
		formatOK = formatOK || sig.Format == f
	}
	if !formatOK {
		return s, fmt.Errorf("signature format %q is not allowed for a %s key", sig.Format, key.Type())
	}
	switch key.Type() {
	case ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256:
		// flags (1 byte) and counter (uint32) follow the signature. The
		// x/crypto verifier checks user presence too; checking it here
		// keeps the rule visible and independent of the library.
		if len(sig.Rest) != 5 {
			return s, errors.New("security-key signature without flags and counter")
		}
		if sig.Rest[0]&skFlagUserPresence == 0 {
			return s, errUserPresence
		}
	default:
		if len(sig.Rest) != 0 {
			return s, errors.New("trailing bytes after the signature")
		}
	}
	return s, nil
}

var errUserPresence = errors.New("security-key signature was made without user presence (touch)")

// checkKeyType refuses every key type outside sigFormatFor, and RSA keys
// below MinRSABits.
func checkKeyType(key ssh.PublicKey) error {
	if _, ok := sigFormatFor[key.Type()]; !ok {
		return fmt.Errorf("key type %s is not allowed (use ed25519, ecdsa-p256, their sk forms, or RSA ≥ %d)", key.Type(), MinRSABits)
	}
	if key.Type() == ssh.KeyAlgoRSA {
		ck, ok := key.(ssh.CryptoPublicKey)
		if !ok {
			// An ssh-agent's keys (*agent.Key) carry only the wire
			// form, so read the size from that.
			parsed, err := ssh.ParsePublicKey(key.Marshal())
			if err != nil {
				return fmt.Errorf("cannot read the RSA key size: %w", err)
			}
			if ck, ok = parsed.(ssh.CryptoPublicKey); !ok {
				return errors.New("cannot read the RSA key size")
			}
		}
		rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey)
		if !ok || rk.N.BitLen() < MinRSABits {
			return fmt.Errorf("RSA key is shorter than %d bits", MinRSABits)
		}
	}
	return nil
}

// signedData is what the key actually signs (PROTOCOL.sshsig §2).
func signedData(namespace, hashAlg string, msg []byte) []byte {
	var digest []byte
	switch hashAlg {
	case "sha256":
		d := sha256.Sum256(msg)
		digest = d[:]
	case "sha512":
		d := sha512.Sum512(msg)
		digest = d[:]
	}
	return append([]byte(sigMagic), ssh.Marshal(struct {
		Namespace string
		Reserved  string
		HashAlg   string
		Digest    []byte
	}{namespace, "", hashAlg, digest})...)
}

// Sign makes a detached signature over raw in the allowlist namespace. The
// output is byte-for-byte what `ssh-keygen -Y sign -n cardgate-allowlist@v1`
// writes for the same key (sha512; for deterministic key types such as
// ed25519 the bytes are identical). signer may be an ssh-agent signer.
func Sign(raw []byte, signer ssh.Signer) ([]byte, error) {
	pub := signer.PublicKey()
	if err := checkKeyType(pub); err != nil {
		return nil, fmt.Errorf("allowlist: sign: %w", err)
	}
	data := signedData(Namespace, "sha512", raw)
	var sig *ssh.Signature
	var err error
	if pub.Type() == ssh.KeyAlgoRSA {
		as, ok := signer.(ssh.AlgorithmSigner)
		if !ok {
			return nil, errors.New("allowlist: sign: this RSA signer cannot make rsa-sha2-512 signatures")
		}
		sig, err = as.SignWithAlgorithm(rand.Reader, data, ssh.KeyAlgoRSASHA512)
	} else {
		sig, err = signer.Sign(rand.Reader, data)
	}
	if err != nil {
		return nil, fmt.Errorf("allowlist: sign: %w", err)
	}
	blob := append([]byte(sigMagic), ssh.Marshal(wireSSHSIG{
		Version:   sigVersion,
		PublicKey: pub.Marshal(),
		Namespace: Namespace,
		HashAlg:   "sha512",
		Signature: ssh.Marshal(sig),
	})...)
	// Check our own output with the same code that checks everyone
	// else's, so a signer that misbehaves (wrong format, no touch) is
	// caught here rather than by the gateway.
	s, err := parseSSHSIG(blob)
	if err != nil {
		return nil, fmt.Errorf("allowlist: sign: produced an unacceptable signature: %w", err)
	}
	if err := s.Key.Verify(data, s.Sig); err != nil {
		return nil, fmt.Errorf("allowlist: sign: produced a signature that does not verify: %w", err)
	}
	return armor(blob), nil
}

func armor(blob []byte) []byte {
	b64 := base64.StdEncoding.EncodeToString(blob)
	var out bytes.Buffer
	out.WriteString(armorBegin + "\n")
	for len(b64) > armorColumns {
		out.WriteString(b64[:armorColumns] + "\n")
		b64 = b64[armorColumns:]
	}
	out.WriteString(b64 + "\n")
	out.WriteString(armorEnd + "\n")
	return out.Bytes()
}
