package signing

import (
	"bytes"
	"net/http"
	"testing"
)

// BenchmarkSign signs a card-bearing request of about 1 KiB, per scheme.
func BenchmarkSign(b *testing.B) {
	body := append([]byte(`{"number":"4242424242424242","cvc":"123","pad":"`), bytes.Repeat([]byte("x"), 960)...)
	body = append(body, `"}`...)
	ecKey := privateKey(b, "rfc9421-b13-ecc-p256.pem")
	edKey := privateKey(b, "rfc9421-b14-ed25519.pem")
	cases := []struct {
		name string
		spec Spec
		key  Key
	}{
		{"content-digest", Spec{Scheme: SchemeContentDigest}, Key{}},
		{"digest", Spec{Scheme: SchemeDigest}, Key{}},
		{"rfc9421-hmac-sha256", chargeSpec(AlgHMACSHA256), SecretKey([]byte("0123456789abcdef0123456789abcdef"))},
		{"rfc9421-ed25519", chargeSpec(AlgEd25519), PrivateKey(edKey)},
		{"rfc9421-ecdsa-p256", chargeSpec(AlgECDSAP256SHA256), PrivateKey(ecKey)},
		{"cavage", cybsSpec(), SecretKey([]byte(cybsSecret))},
		{"hmac-sha512", hmacSpec(HMACSpec{Hash: "sha512", Parts: []string{"timestamp", "method", "path+query", "header:content-type", "body"},
			Separator: "\n", Header: "X-Signature", Encoding: "base64", TimestampHeader: "X-Timestamp", TimestampFormat: "unix"}),
			SecretKey([]byte("0123456789abcdef0123456789abcdef"))},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			s := mustSigner(b, c.spec, c.key)
			req, err := http.NewRequest(http.MethodPost, "https://api.processor.example/v1/charges?capture=true", bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("V-C-Merchant-Id", "testrest")
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				req.Header.Del("Date")
				if err := s.Sign(req, body, rfcNow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
