package signing

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"
)

// cybsSecret is a shared secret as Cybersource's Business Center hands it
// out: base64 text, which its SDKs decode before the HMAC.
const cybsSecret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

const cybsKeyID = "08c94330-f618-42a3-b09d-e1e43be5efda"

func cybsSpec() Spec {
	return Spec{Scheme: SchemeCavage, Credential: "cybs-shared-secret", SecretEncoding: "base64", Cavage: &CavageSpec{
		KeyID: cybsKeyID, Algorithm: "HmacSHA256",
		Headers: []string{"host", "date", "request-target", "digest", "v-c-merchant-id"},
	}}
}

func cybsRequest(t testing.TB, method, url string, body []byte) *http.Request {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(body) == 0 {
		req.Body, req.ContentLength = nil, 0
	}
	req.Header.Set("v-c-merchant-id", "testrest")
	req.Header.Set("Content-Type", "application/json")
	return req
}

var cybsBody = []byte(`{"paymentInformation":{"card":{"number":"4111111111111111","expirationMonth":"12","expirationYear":"2031"}}}`)

// The Signature header Cybersource documents, computed independently: the
// signing string is written out here by hand, the key is decoded and the
// HMAC taken by the openssl binary.
func TestCavageSign(t *testing.T) {
	digest := "SHA-256=" + base64.StdEncoding.EncodeToString(openssl(t, cybsBody, "dgst", "-sha256", "-binary"))
	decoded := openssl(t, []byte(cybsSecret), "base64", "-d", "-A")
	tests := []struct {
		name       string
		spec       func(*Spec)
		secret     string
		method     string
		url        string
		body       []byte
		hmacKey    []byte
		str        string
		header     string
		wantPrefix string
		wantDigest string
	}{
		{
			name: "cybersource 2024: request-target, base64 secret", secret: cybsSecret,
			method: http.MethodPost, url: "https://apitest.cybersource.com/pts/v2/payments", body: cybsBody, hmacKey: decoded,
			str: "host: apitest.cybersource.com\ndate: Tue, 20 Apr 2021 02:07:53 GMT\nrequest-target: post /pts/v2/payments\n" +
				"digest: " + digest + "\nv-c-merchant-id: testrest",
			header:     "Signature",
			wantPrefix: `keyid="` + cybsKeyID + `", algorithm="HmacSHA256", headers="host date request-target digest v-c-merchant-id", signature="`,
			wantDigest: digest,
		},
		{
			name: "draft spelling: (request-target), keyId, Authorization, secret with a newline",
			spec: func(s *Spec) {
				s.Cavage.Headers[2] = "(request-target)"
				s.Cavage.KeyIDParam, s.Cavage.Header, s.Cavage.Algorithm = "keyId", "authorization", "hmac-sha256"
			},
			secret: cybsSecret + "\n",
			method: http.MethodPost, url: "https://apitest.cybersource.com/pts/v2/payments", body: cybsBody, hmacKey: decoded,
			str: "host: apitest.cybersource.com\ndate: Tue, 20 Apr 2021 02:07:53 GMT\n(request-target): post /pts/v2/payments\n" +
				"digest: " + digest + "\nv-c-merchant-id: testrest",
			header:     "Authorization",
			wantPrefix: `Signature keyId="` + cybsKeyID + `", algorithm="hmac-sha256", headers="host date (request-target) digest v-c-merchant-id", signature="`,
			wantDigest: digest,
		},
		{
			name: "GET: no body, no digest, query signed", secret: cybsSecret,
			method: http.MethodGet, url: "https://apitest.cybersource.com/reporting/v3/reports?startTime=2021-04-01T00:00:00Z&organizationId=testrest",
			hmacKey: decoded,
			str: "host: apitest.cybersource.com\ndate: Tue, 20 Apr 2021 02:07:53 GMT\n" +
				"request-target: get /reporting/v3/reports?startTime=2021-04-01T00:00:00Z&organizationId=testrest\nv-c-merchant-id: testrest",
			header:     "Signature",
			wantPrefix: `keyid="` + cybsKeyID + `", algorithm="HmacSHA256", headers="host date request-target v-c-merchant-id", signature="`,
		},
		{
			name: "raw secret, sha-512 digest, port kept in host", spec: func(s *Spec) { s.SecretEncoding, s.Cavage.DigestAlgorithm = "raw", "sha-512" },
			secret: "a raw secret", method: http.MethodPost, url: "https://api.processor.example:8443/v1/pay", body: cybsBody,
			hmacKey: []byte("a raw secret"),
			str: "host: api.processor.example:8443\ndate: Tue, 20 Apr 2021 02:07:53 GMT\nrequest-target: post /v1/pay\n" +
				"digest: SHA-512=" + base64.StdEncoding.EncodeToString(openssl(t, cybsBody, "dgst", "-sha512", "-binary")) + "\nv-c-merchant-id: testrest",
			header:     "Signature",
			wantPrefix: `keyid="` + cybsKeyID + `", algorithm="HmacSHA256", headers="host date request-target digest v-c-merchant-id", signature="`,
			wantDigest: "SHA-512=" + base64.StdEncoding.EncodeToString(openssl(t, cybsBody, "dgst", "-sha512", "-binary")),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := cybsSpec()
			if tt.spec != nil {
				tt.spec(&spec)
			}
			req := cybsRequest(t, tt.method, tt.url, tt.body)
			if err := mustSigner(t, spec, SecretKey([]byte(tt.secret))).Sign(req, tt.body, rfcNow); err != nil {
				t.Fatalf("Sign: %v", err)
			}
			want := tt.wantPrefix + opensslHMAC(t, "sha256", tt.hmacKey, []byte(tt.str)) + `"`
			if got := req.Header.Get(tt.header); got != want {
				t.Errorf("%s =\n %q\nwant\n %q", tt.header, got, want)
			}
			if got := req.Header.Get("Digest"); got != tt.wantDigest {
				t.Errorf("Digest = %q, want %q", got, tt.wantDigest)
			}
			if got := req.Header.Get("Date"); got != "Tue, 20 Apr 2021 02:07:53 GMT" {
				t.Errorf("Date = %q, want the signing time", got)
			}
			in, body := wire(t, req, tt.body)
			if err := mustVerifier(t, spec, SecretKey([]byte(tt.secret))).Verify(in, body, rfcNow.Add(time.Minute)); err != nil {
				t.Errorf("Verify = %v", err)
			}
		})
	}
}

func TestCavageVerifyRejects(t *testing.T) {
	paren := cybsSpec()
	paren.Cavage.Headers[2] = "(request-target)"
	short := cybsSpec()
	short.Cavage.Headers = []string{"host", "date", "request-target", "digest"}
	tests := []struct {
		name   string
		signer Spec
		change func(r *http.Request, b []byte) []byte
		secret string
		now    time.Time
		want   string
	}{
		{name: "valid", want: ""},
		{name: "body changed", want: CodeDigestMismatch, change: func(r *http.Request, b []byte) []byte {
			return bytes.Replace(b, []byte("4111111111111111"), []byte("4242424242424242"), 1)
		}},
		{name: "merchant id changed", want: CodeSignatureInvalid, change: func(r *http.Request, b []byte) []byte {
			r.Header.Set("V-C-Merchant-Id", "other")
			return b
		}},
		{name: "path changed", want: CodeSignatureInvalid, change: func(r *http.Request, b []byte) []byte {
			r.RequestURI = "/pts/v2/refunds"
			return b
		}},
		{name: "method changed", want: CodeSignatureInvalid, change: func(r *http.Request, b []byte) []byte {
			r.Method = http.MethodPut
			return b
		}},
		{name: "host changed", want: CodeSignatureInvalid, change: func(r *http.Request, b []byte) []byte {
			r.Host = "api.cybersource.com"
			return b
		}},
		{name: "digest header dropped", want: CodeSignatureInvalid, change: func(r *http.Request, b []byte) []byte {
			r.Header.Del("Digest")
			return b
		}},
		{name: "signature dropped", want: CodeSignatureMissing, change: func(r *http.Request, b []byte) []byte {
			r.Header.Del("Signature")
			return b
		}},
		{name: "signature mangled", want: CodeSignatureMalformed, change: func(r *http.Request, b []byte) []byte {
			r.Header.Set("Signature", `keyid="x", signature="%%%"`)
			return b
		}},
		{name: "other key", want: CodeSignatureInvalid, secret: base64.StdEncoding.EncodeToString([]byte("another secret of 32 bytes......"))},
		{name: "raw instead of decoded secret", want: CodeSignatureInvalid, secret: "RAW:" + cybsSecret},
		{name: "old spelling where the new is required", signer: paren, want: CodeSignaturePolicy},
		{name: "merchant id not signed", signer: short, want: CodeSignaturePolicy},
		{name: "stale date", now: rfcNow.Add(10 * time.Minute), want: CodeSignatureStale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			signer := cybsSpec()
			if tt.signer.Scheme != "" {
				signer = tt.signer
			}
			secret := SecretKey([]byte(cybsSecret))
			if tt.secret != "" {
				secret = SecretKey([]byte(tt.secret))
				if raw, ok := strings.CutPrefix(tt.secret, "RAW:"); ok {
					signer.SecretEncoding, secret = "raw", SecretKey([]byte(raw))
				}
			}
			req := cybsRequest(t, http.MethodPost, "https://apitest.cybersource.com/pts/v2/payments", cybsBody)
			if err := mustSigner(t, signer, secret).Sign(req, cybsBody, rfcNow); err != nil {
				t.Fatal(err)
			}
			in, body := wire(t, req, cybsBody)
			if tt.change != nil {
				body = tt.change(in, body)
			}
			now := rfcNow.Add(time.Minute)
			if !tt.now.IsZero() {
				now = tt.now
			}
			if err := mustVerifier(t, cybsSpec(), SecretKey([]byte(cybsSecret))).Verify(in, body, now); code(err) != tt.want {
				t.Errorf("Verify = %v, want code %q", err, tt.want)
			}
		})
	}
}

func TestCavageParams(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
		ok   bool
	}{
		{`keyid="a", algorithm="HmacSHA256", headers="host date", signature="c2ln"`,
			map[string]string{"keyid": "a", "algorithm": "HmacSHA256", "headers": "host date", "signature": "c2ln"}, true},
		{`keyId="a",algorithm="hs2019",created=1402170695,signature="c2ln"`,
			map[string]string{"keyid": "a", "algorithm": "hs2019", "created": "1402170695", "signature": "c2ln"}, true},
		{`keyid="a", keyid="b"`, nil, false},
		{`keyid="a`, nil, false},
		{`keyid`, nil, false},
		{`keyid="a" algorithm="b"`, nil, false},
	}
	for _, tt := range tests {
		got, ok := cavageParams(tt.in)
		if ok != tt.ok || tt.ok && !equalMaps(got, tt.want) {
			t.Errorf("cavageParams(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
