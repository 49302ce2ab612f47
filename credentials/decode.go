package credentials

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
)

// MinHMACKeyBytes is the shortest HMAC key accepted: 128 bits. A shorter
// one is almost always a mistake, such as a base64 secret loaded raw or a
// truncated paste.
const MinHMACKeyBytes = 16

// decode turns a source's raw bytes into the value of sp's encoding and
// kind. It never returns a cause from a decoder: hex's errors quote the
// offending byte, and asn1's quote tags. The returned wipe, if not nil,
// clears a parsed key when the value is dropped.
func decode(sp *Spec, raw []byte) (b []byte, key crypto.Signer, wipe func(), err *Error) {
	if len(raw) == 0 {
		return nil, nil, nil, fail(CodeEmpty, nil, "the value is empty")
	}
	switch sp.Encoding {
	case "", EncodingRaw:
		b = append([]byte(nil), raw...)
	case EncodingBase64:
		s := bytes.TrimSpace(raw)
		b = make([]byte, base64.StdEncoding.DecodedLen(len(s)))
		n, derr := base64.StdEncoding.Decode(b, s)
		if derr != nil {
			clear(b)
			return nil, nil, nil, fail(CodeEncoding, nil, "the value is not standard base64 with padding")
		}
		b = b[:n]
	case EncodingHex:
		s := bytes.TrimSpace(raw)
		b = make([]byte, hex.DecodedLen(len(s)))
		if _, derr := hex.Decode(b, s); derr != nil {
			clear(b)
			return nil, nil, nil, fail(CodeEncoding, nil, "the value is not hexadecimal")
		}
	}
	if len(b) == 0 {
		return nil, nil, nil, fail(CodeEmpty, nil, "the value decodes to nothing")
	}
	switch sp.Kind {
	case "", KindSecret:
		err = checkHeaderSafe(b)
	case KindHMACKey:
		if len(b) < MinHMACKeyBytes {
			err = fail(CodeInvalid, nil, "an HMAC key must be at least %d bytes, this one is %d (is its encoding set?)", MinHMACKeyBytes, len(b))
		}
	case KindEd25519PrivateKey:
		key, wipe, err = parseEd25519(b)
	case KindECDSAP256PrivateKey:
		key, wipe, err = parseECDSAP256(b)
	}
	if err != nil {
		clear(b)
		return nil, nil, nil, err
	}
	return b, key, wipe, nil
}

// checkHeaderSafe refuses what would break the header a secret is written
// into: control characters (CR and LF would end it and start another)
// and whitespace at either end (HTTP strips it, so the processor would
// see a different value).
func checkHeaderSafe(b []byte) *Error {
	for i, c := range b {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return fail(CodeInvalid, nil, "a secret must not contain control characters (one at byte %d); use kind hmac-key for binary values", i)
		}
	}
	if b[0] == ' ' || b[0] == '\t' || b[len(b)-1] == ' ' || b[len(b)-1] == '\t' {
		return fail(CodeInvalid, nil, "a secret must not start or end with whitespace")
	}
	return nil
}

// pemBlock returns the DER of b's one PEM block of one of the wanted
// types, or b itself when b is not PEM. Encrypted PEM, several blocks and
// trailing text are refused: a key file should hold exactly one key.
func pemBlock(b []byte, types ...string) ([]byte, string, *Error) {
	if !bytes.HasPrefix(bytes.TrimSpace(b), []byte("-----BEGIN ")) {
		return b, "", nil
	}
	block, rest := pem.Decode(b)
	if block == nil {
		return nil, "", fail(CodeInvalid, nil, "the value starts like PEM but does not decode as PEM")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, "", fail(CodeInvalid, nil, "the PEM value holds more than one block")
	}
	if len(block.Headers) != 0 {
		return nil, "", fail(CodeInvalid, nil, "the PEM block has headers (an encrypted key?); store the key unencrypted, protected by its source")
	}
	for _, t := range types {
		if block.Type == t {
			return block.Bytes, block.Type, nil
		}
	}
	return nil, "", fail(CodeInvalid, nil, "the PEM block is %q, not %q", block.Type, types)
}

func parseEd25519(b []byte) (crypto.Signer, func(), *Error) {
	der, typ, err := pemBlock(b, "PRIVATE KEY")
	if err != nil {
		return nil, nil, err
	}
	defer clearIfCopy(der, b)
	if typ == "" && len(der) == ed25519.SeedSize {
		k := ed25519.NewKeyFromSeed(der)
		return k, func() { clear(k) }, nil
	}
	parsed, perr := x509.ParsePKCS8PrivateKey(der)
	if perr != nil {
		return nil, nil, fail(CodeInvalid, nil, "not an Ed25519 key: expected PEM \"PRIVATE KEY\" (PKCS#8), PKCS#8 DER or a 32-byte seed")
	}
	k, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, nil, fail(CodeInvalid, nil, "the PKCS#8 key is not Ed25519")
	}
	return k, func() { clear(k) }, nil
}

func parseECDSAP256(b []byte) (crypto.Signer, func(), *Error) {
	der, typ, err := pemBlock(b, "PRIVATE KEY", "EC PRIVATE KEY")
	if err != nil {
		return nil, nil, err
	}
	defer clearIfCopy(der, b)
	var k *ecdsa.PrivateKey
	if typ == "EC PRIVATE KEY" {
		k, _ = x509.ParseECPrivateKey(der)
	} else if parsed, perr := x509.ParsePKCS8PrivateKey(der); perr == nil {
		k, _ = parsed.(*ecdsa.PrivateKey)
	} else if typ == "" {
		k, _ = x509.ParseECPrivateKey(der) // SEC 1 DER
	}
	if k == nil {
		return nil, nil, fail(CodeInvalid, nil, "not an ECDSA key: expected PEM \"PRIVATE KEY\" (PKCS#8) or \"EC PRIVATE KEY\" (SEC 1), or their DER")
	}
	if k.Curve != elliptic.P256() {
		return nil, nil, fail(CodeInvalid, nil, "the ECDSA key is on %s, not P-256", k.Curve.Params().Name)
	}
	// Best effort: D's words are zeroed when the value is dropped; copies
	// inside Go's crypto cannot be reached.
	return k, func() { clear(k.D.Bits()) }, nil
}

// clearIfCopy clears der when it is not b itself (a PEM block's bytes
// are a copy).
func clearIfCopy(der, b []byte) {
	if len(der) > 0 && len(b) > 0 && &der[0] != &b[0] {
		clear(der)
	}
}
