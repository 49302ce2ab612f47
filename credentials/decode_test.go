package credentials

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	ed := mustRead(t, "testdata/ed25519.pem")
	edBlock, _ := pem.Decode(ed)
	p256 := mustRead(t, "testdata/ecdsa-p256.pem")
	p256Block, _ := pem.Decode(p256)
	sec1 := mustRead(t, "testdata/ecdsa-p256-sec1.pem")
	sec1Block, _ := pem.Decode(sec1)
	seed := make([]byte, ed25519.SeedSize)
	rand.Read(seed)
	hmacKey := make([]byte, 32)
	rand.Read(hmacKey)
	tests := []struct {
		name     string
		encoding Encoding
		kind     Kind
		raw      []byte
		want     []byte // the decoded value; nil means raw
		wantErr  error
	}{
		{"raw secret", "", "", []byte("sk_test_4eC39HqLyjWDarjtT1zdp7dc"), nil, nil},
		{"raw secret with inner space", EncodingRaw, KindSecret, []byte("user name:pass word"), nil, nil},
		{"raw secret with tab", "", "", []byte("a\tb"), nil, nil},
		{"secret with CRLF", "", "", []byte("key\r\nX-Injected: 1"), nil, ErrInvalid},
		{"secret with LF", "", "", []byte("key\nmore"), nil, ErrInvalid},
		{"secret with NUL", "", "", []byte("key\x00"), nil, ErrInvalid},
		{"secret with DEL", "", "", []byte("key\x7f"), nil, ErrInvalid},
		{"secret with leading space", "", "", []byte(" key"), nil, ErrInvalid},
		{"secret with trailing tab", "", "", []byte("key\t"), nil, ErrInvalid},
		{"empty", "", "", []byte{}, nil, ErrEmpty},
		{"base64 hmac key", EncodingBase64, KindHMACKey, []byte(base64.StdEncoding.EncodeToString(hmacKey) + "\n"), hmacKey, nil},
		{"base64 without padding", EncodingBase64, KindHMACKey, []byte(base64.RawStdEncoding.EncodeToString(hmacKey[:31])), nil, ErrEncoding},
		{"base64 url alphabet", EncodingBase64, KindHMACKey, []byte("-_-_-_-_-_-_-_-_-_-_-_-_"), nil, ErrEncoding},
		{"base64 of nothing", EncodingBase64, KindHMACKey, []byte("  "), nil, ErrEmpty},
		{"hex hmac key", EncodingHex, KindHMACKey, []byte(strings.ToUpper(hex.EncodeToString(hmacKey))), hmacKey, nil},
		{"hex odd length", EncodingHex, KindHMACKey, []byte("abc"), nil, ErrEncoding},
		{"hex not hex", EncodingHex, KindHMACKey, []byte("zz" + strings.Repeat("00", 16)), nil, ErrEncoding},
		{"hmac key too short", EncodingRaw, KindHMACKey, []byte("short-key"), nil, ErrInvalid},
		{"hmac key binary", EncodingRaw, KindHMACKey, append([]byte{0, '\r', '\n'}, hmacKey...), nil, nil},
		{"secret from base64", EncodingBase64, KindSecret, []byte(base64.StdEncoding.EncodeToString([]byte("api-key"))), []byte("api-key"), nil},
		{"secret from base64 binary", EncodingBase64, KindSecret, []byte(base64.StdEncoding.EncodeToString([]byte{1, 2, 3})), nil, ErrInvalid},
		{"ed25519 pkcs8 pem", "", KindEd25519PrivateKey, ed, nil, nil},
		{"ed25519 pkcs8 der as base64", EncodingBase64, KindEd25519PrivateKey, []byte(base64.StdEncoding.EncodeToString(edBlock.Bytes)), edBlock.Bytes, nil},
		{"ed25519 seed as hex", EncodingHex, KindEd25519PrivateKey, []byte(hex.EncodeToString(seed)), seed, nil},
		{"ed25519 given an ecdsa key", "", KindEd25519PrivateKey, p256, nil, ErrInvalid},
		{"ed25519 given an rsa key", "", KindEd25519PrivateKey, mustRead(t, "testdata/rsa.pem"), nil, ErrInvalid},
		{"ed25519 encrypted pkcs8", "", KindEd25519PrivateKey, mustRead(t, "testdata/ed25519-encrypted.pem"), nil, ErrInvalid},
		{"ed25519 two blocks", "", KindEd25519PrivateKey, append(append([]byte{}, ed...), ed...), nil, ErrInvalid},
		{"ed25519 broken pem", "", KindEd25519PrivateKey, []byte("-----BEGIN PRIVATE KEY-----\nnot base64\n"), nil, ErrInvalid},
		{"ed25519 31-byte seed", EncodingHex, KindEd25519PrivateKey, []byte(hex.EncodeToString(seed[:31])), nil, ErrInvalid},
		{"ecdsa p256 pkcs8 pem", "", KindECDSAP256PrivateKey, p256, nil, nil},
		{"ecdsa p256 sec1 pem", "", KindECDSAP256PrivateKey, sec1, nil, nil},
		{"ecdsa p256 pkcs8 der", EncodingBase64, KindECDSAP256PrivateKey, []byte(base64.StdEncoding.EncodeToString(p256Block.Bytes)), p256Block.Bytes, nil},
		{"ecdsa p256 sec1 der", EncodingBase64, KindECDSAP256PrivateKey, []byte(base64.StdEncoding.EncodeToString(sec1Block.Bytes)), sec1Block.Bytes, nil},
		{"ecdsa p384", "", KindECDSAP256PrivateKey, mustRead(t, "testdata/ecdsa-p384.pem"), nil, ErrInvalid},
		{"ecdsa given ed25519", "", KindECDSAP256PrivateKey, ed, nil, ErrInvalid},
		{"ecdsa given rsa", "", KindECDSAP256PrivateKey, mustRead(t, "testdata/rsa.pem"), nil, ErrInvalid},
		{"ecdsa legacy encrypted pem", "", KindECDSAP256PrivateKey, mustRead(t, "testdata/ecdsa-p256-sec1-encrypted.pem"), nil, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp := &Spec{Name: "x", Encoding: tt.encoding, Kind: tt.kind, Source: Env{Var: "X"}}
			b, key, _, err := decode(sp, tt.raw)
			if tt.wantErr != nil {
				if err == nil || !errors.Is(err, tt.wantErr) {
					t.Fatalf("decode() = %v, want %v", err, tt.wantErr)
				}
				if err.Err != nil {
					t.Errorf("decode() error carries a cause %q; decoders' causes may quote the value", err.Err)
				}
				return
			}
			if err != nil {
				t.Fatalf("decode() = %v", err)
			}
			want := tt.want
			if want == nil {
				want = tt.raw
			}
			if string(b) != string(want) {
				t.Errorf("decode() = %d bytes, want %d", len(b), len(want))
			}
			isKey := tt.kind == KindEd25519PrivateKey || tt.kind == KindECDSAP256PrivateKey
			if (key != nil) != isKey {
				t.Fatalf("decode() key = %T, want a key: %v", key, isKey)
			}
			if isKey {
				checkSigns(t, key)
			}
		})
	}
}

// checkSigns signs with key and verifies with its public half.
func checkSigns(t *testing.T, key crypto.Signer) {
	t.Helper()
	msg := []byte("POST /v1/charges")
	switch pub := key.Public().(type) {
	case ed25519.PublicKey:
		sig, err := key.Sign(rand.Reader, msg, crypto.Hash(0))
		if err != nil || !ed25519.Verify(pub, msg, sig) {
			t.Errorf("ed25519 signature does not verify (%v)", err)
		}
	case *ecdsa.PublicKey:
		d := sha256.Sum256(msg)
		sig, err := key.Sign(rand.Reader, d[:], crypto.SHA256)
		if err != nil || !ecdsa.VerifyASN1(pub, d[:], sig) {
			t.Errorf("ecdsa signature does not verify (%v)", err)
		}
	default:
		t.Errorf("public key %T", pub)
	}
}

// TestDecodeErrorsNeverQuoteValue feeds values whose bytes would show up
// in a decoder's error text.
func TestDecodeErrorsNeverQuoteValue(t *testing.T) {
	for _, tt := range []struct {
		enc  Encoding
		kind Kind
		raw  string
	}{
		{EncodingHex, KindHMACKey, "0011LEAKCANARY"},
		{EncodingBase64, KindHMACKey, "LEAK*CANARY"},
		{"", KindEd25519PrivateKey, "LEAKCANARY-not-a-key"},
		{"", KindECDSAP256PrivateKey, "-----BEGIN PRIVATE KEY-----\nTEVBS0NBTkFSWQ==\n-----END PRIVATE KEY-----\n"},
		{"", KindSecret, "LEAKCANARY\r\n"},
	} {
		_, _, _, err := decode(&Spec{Name: "x", Encoding: tt.enc, Kind: tt.kind, Source: Env{Var: "X"}}, []byte(tt.raw))
		if err == nil {
			t.Fatalf("decode(%s, %s) accepted a bad value", tt.enc, tt.kind)
		}
		if msg := err.Error(); strings.Contains(msg, "LEAK") || strings.Contains(msg, "CANARY") || strings.Contains(msg, "TEVBS0") {
			t.Errorf("decode(%s, %s) = %q: quotes the value", tt.enc, tt.kind, msg)
		}
	}
}
