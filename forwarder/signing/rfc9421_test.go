package signing

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/asn1"
	"encoding/base64"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The RFC 9421 Appendix B.2 examples, byte for byte: B.2.5 (hmac-sha256)
// and B.2.6 (ed25519) are deterministic, so the signature must be exactly
// the RFC's. They are signed through signMessage because they cover a
// body-bearing POST without content-digest, which Sign refuses on purpose.
func TestRFC9421AppendixBSign(t *testing.T) {
	tests := []struct {
		name      string
		spec      RFC9421Spec
		key       Key
		base      string
		wantInput string
		wantSig   string
	}{
		{
			name: "B.2.5 hmac-sha256",
			spec: RFC9421Spec{
				Algorithm: AlgHMACSHA256, KeyID: "test-shared-secret", Label: "sig-b25", Created: true,
				Components: []string{"date", "@authority", "content-type"},
			},
			key:       SecretKey(rfcSecret(t)),
			base:      "rfc9421-b25.base",
			wantInput: `sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"`,
			wantSig:   `sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:`,
		},
		{
			name: "B.2.6 ed25519",
			spec: RFC9421Spec{
				Algorithm: AlgEd25519, KeyID: "test-key-ed25519", Label: "sig-b26", Created: true,
				Components: []string{"date", "@method", "@path", "@authority", "content-type", "content-length"},
			},
			key:       PrivateKey(privateKey(t, "rfc9421-b14-ed25519.pem")),
			base:      "rfc9421-b26.base",
			wantInput: `sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`,
			wantSig:   `sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := tt.spec
			s := mustSigner(t, Spec{Scheme: SchemeRFC9421, Credential: "k", RFC9421: &spec}, tt.key)
			req, body := rfcTestRequest(t)
			m := outgoing(req)
			if err := s.signMessage(m, body, rfcNow); err != nil {
				t.Fatalf("sign: %v", err)
			}
			if got := m.header.Get("Signature-Input"); got != tt.wantInput {
				t.Errorf("Signature-Input = %q, want %q", got, tt.wantInput)
			}
			if got := m.header.Get("Signature"); got != tt.wantSig {
				t.Errorf("Signature = %q, want %q", got, tt.wantSig)
			}
			params := strings.TrimPrefix(tt.wantInput, spec.Label+"=")
			base, err := signatureBase(m, spec.Components, params)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(readTestdata(t, tt.base)), string(base)); diff != "" {
				t.Errorf("signature base (-RFC +ours):\n%s", diff)
			}
			if _, ok := m.header["Date"]; !ok || m.header.Get("Date") != "Tue, 20 Apr 2021 02:07:55 GMT" {
				t.Errorf("Date = %q, want the request's own, untouched", m.header.Get("Date"))
			}
		})
	}
}

// The RFC's own B.2.5 and B.2.6 headers, on the test-request as a server
// reads it, verify with our base; the Verifier then refuses them on
// policy, because they leave the POST body uncovered. A tampered header
// fails the signature itself.
func TestRFC9421AppendixBVerify(t *testing.T) {
	tests := []struct {
		name  string
		spec  RFC9421Spec
		key   Key
		input string
		sig   string
	}{
		{
			name:  "B.2.5 hmac-sha256",
			spec:  RFC9421Spec{Algorithm: AlgHMACSHA256, KeyID: "test-shared-secret", Label: "sig-b25", Components: []string{"date", "@authority", "content-type"}},
			key:   SecretKey(rfcSecret(t)),
			input: `sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"`,
			sig:   `sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:`,
		},
		{
			name:  "B.2.6 ed25519",
			spec:  RFC9421Spec{Algorithm: AlgEd25519, KeyID: "test-key-ed25519", Label: "sig-b26", Components: []string{"date", "@method", "@path", "@authority", "content-type", "content-length"}},
			key:   PublicKey(publicKey(t, "rfc9421-b14-ed25519.pub.pem")),
			input: `sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`,
			sig:   `sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := tt.spec
			v := mustVerifier(t, Spec{Scheme: SchemeRFC9421, Credential: "k", RFC9421: &spec}, tt.key)
			req, body := readRequest(t, readTestdata(t, "rfc9421-test-request.http"))
			req.Header.Set("Signature-Input", tt.input)
			req.Header.Set("Signature", tt.sig)
			err := v.Verify(req, body, rfcNow)
			if code(err) != CodeSignaturePolicy || !strings.Contains(err.Error(), "content-digest") {
				t.Errorf("Verify(RFC example) = %v, want the signature to verify and the uncovered body refused", err)
			}
			req.Header.Set("Content-Type", "text/plain")
			if err := v.Verify(req, body, rfcNow); code(err) != CodeSignatureInvalid {
				t.Errorf("Verify(Content-Type changed) = %v, want %s", err, CodeSignatureInvalid)
			}
		})
	}
}

// B.2.4 signs a response with ECDSA, which is randomized: our signature
// base for it must be the RFC's byte for byte, and the RFC's signature
// must verify over it with the B.1.3 public key.
func TestRFC9421AppendixB24(t *testing.T) {
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(readTestdata(t, "rfc9421-test-response.http"))), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	m := &message{status: resp.StatusCode, header: resp.Header, contentLength: resp.ContentLength}
	input := `sig-b24=("@status" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-ecc-p256"`
	members, err := parseDictionary(input)
	if err != nil || len(members) != 1 {
		t.Fatalf("parseDictionary = %v, %v", members, err)
	}
	var comps []string
	for _, it := range members[0].list {
		comps = append(comps, it.item.str)
	}
	base, err := signatureBase(m, comps, serializeInnerList(members[0].list, members[0].params))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(readTestdata(t, "rfc9421-b24.base")), string(base)); diff != "" {
		t.Fatalf("signature base (-RFC +ours):\n%s", diff)
	}
	sig, _ := base64.StdEncoding.DecodeString("wNmSUAhwb5LxtOtOpNa6W5xj067m5hFrj0XQ4fvpaCLx0NKocgPquLgyahnzDnDAUy5eCdlYUEkLIj+32oiasw==")
	pub := publicKey(t, "rfc9421-b13-ecc-p256.pub.pem")
	if !verifyRaw(AlgECDSAP256SHA256, nil, pub, base, sig) {
		t.Error("the RFC's B.2.4 signature does not verify over our base")
	}
	base[len(base)-2] ^= 1
	if verifyRaw(AlgECDSAP256SHA256, nil, pub, base, sig) {
		t.Error("the RFC's B.2.4 signature verifies over a changed base")
	}
}

// chargeRequest is a card-bearing request as the forwarder builds it.
func chargeRequest(t testing.TB) (*http.Request, []byte) {
	body := []byte(`{"number":"4242424242424242","cvc":"123"}`)
	req, err := http.NewRequest(http.MethodPost, "https://API.processor.example:8443/v1/charges?capture=true", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req, body
}

func chargeSpec(alg string) Spec {
	return Spec{Scheme: SchemeRFC9421, Credential: "proc-signing-key", RFC9421: &RFC9421Spec{
		Algorithm: alg, KeyID: "proc-key-1", Created: true, Expires: 5 * time.Minute, IncludeAlg: true, Tag: "cardgate",
		Components: []string{"@method", "@authority", "@path", "@query", "content-digest", "content-type", "date"},
	}}
}

// Sign, end to end, for each algorithm: the base is checked against one
// written out by hand from RFC 9421 §2, the Content-Digest against
// openssl, and the signature with openssl (a second implementation) and
// with the Verifier over the request as it crossed a real HTTP/1.1
// serialization.
func TestRFC9421Sign(t *testing.T) {
	ecKey := privateKey(t, "rfc9421-b13-ecc-p256.pem")
	edKey := privateKey(t, "rfc9421-b14-ed25519.pem")
	secret := rfcSecret(t)
	tests := []struct {
		alg    string
		key    Key
		verify Key
	}{
		{AlgHMACSHA256, SecretKey(secret), SecretKey(secret)},
		{AlgEd25519, PrivateKey(edKey), PublicKey(edKey.Public())},
		{AlgECDSAP256SHA256, PrivateKey(ecKey), PublicKey(ecKey.Public())},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			req, body := chargeRequest(t)
			s := mustSigner(t, chargeSpec(tt.alg), tt.key)
			if err := s.Sign(req, body, rfcNow); err != nil {
				t.Fatalf("Sign: %v", err)
			}
			digest := base64.StdEncoding.EncodeToString(openssl(t, body, "dgst", "-sha256", "-binary"))
			if got, want := req.Header.Get("Content-Digest"), "sha-256=:"+digest+":"; got != want {
				t.Errorf("Content-Digest = %q, want %q", got, want)
			}
			params := `("@method" "@authority" "@path" "@query" "content-digest" "content-type" "date");created=1618884473;expires=1618884773;keyid="proc-key-1";alg="` + tt.alg + `";tag="cardgate"`
			if got, want := req.Header.Get("Signature-Input"), "sig1="+params; got != want {
				t.Errorf("Signature-Input = %q, want %q", got, want)
			}
			base := []byte(`"@method": POST
"@authority": api.processor.example:8443
"@path": /v1/charges
"@query": ?capture=true
"content-digest": sha-256=:` + digest + `:
"content-type": application/json
"date": Tue, 20 Apr 2021 02:07:53 GMT
"@signature-params": ` + params)
			sigField := req.Header.Get("Signature")
			sig, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(strings.TrimPrefix(sigField, "sig1=:"), ":"))
			if err != nil {
				t.Fatalf("Signature = %q: %v", sigField, err)
			}
			switch tt.alg {
			case AlgHMACSHA256:
				if got, want := base64.StdEncoding.EncodeToString(sig), opensslHMAC(t, "sha256", secret, base); got != want {
					t.Errorf("signature = %s, openssl says %s", got, want)
				}
			case AlgEd25519:
				pub := writeTemp(t, "pub.pem", readTestdata(t, "rfc9421-b14-ed25519.pub.pem"))
				openssl(t, nil, "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin",
					"-in", writeTemp(t, "base", base), "-sigfile", writeTemp(t, "sig", sig))
			case AlgECDSAP256SHA256:
				if len(sig) != 64 {
					t.Fatalf("ecdsa signature is %d bytes, want r||s of 64", len(sig))
				}
				der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])})
				if err != nil {
					t.Fatal(err)
				}
				pub := writeTemp(t, "pub.pem", readTestdata(t, "rfc9421-b13-ecc-p256.pub.pem"))
				openssl(t, nil, "dgst", "-sha256", "-verify", pub, "-signature", writeTemp(t, "sig.der", der), writeTemp(t, "base", base))
			}
			in, inBody := wire(t, req, body)
			if err := mustVerifier(t, chargeSpec(tt.alg), tt.verify).Verify(in, inBody, rfcNow.Add(time.Minute)); err != nil {
				t.Errorf("Verify = %v", err)
			}
		})
	}
}

// A verifier must refuse a request whose body, covered header, path or
// key changed, a stale or expired signature, and one that does not meet
// its policy.
func TestRFC9421VerifyRejects(t *testing.T) {
	edKey := privateKey(t, "rfc9421-b14-ed25519.pem")
	_, otherKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spec := chargeSpec(AlgEd25519)
	tests := []struct {
		name   string
		change func(r *http.Request, body []byte) []byte
		spec   func(*RFC9421Spec)
		key    Key
		now    time.Time
		want   string
	}{
		{name: "valid", want: ""},
		{name: "body changed", want: CodeDigestMismatch, change: func(r *http.Request, b []byte) []byte {
			return bytes.Replace(b, []byte("4242424242424242"), []byte("4111111111111111"), 1)
		}},
		{name: "covered header changed", want: CodeSignatureInvalid, change: func(r *http.Request, b []byte) []byte {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return b
		}},
		{name: "path changed", want: CodeSignatureInvalid, change: func(r *http.Request, b []byte) []byte {
			r.RequestURI = "/v1/refunds?capture=true"
			return b
		}},
		{name: "query changed", want: CodeSignatureInvalid, change: func(r *http.Request, b []byte) []byte {
			r.RequestURI = "/v1/charges?capture=false"
			return b
		}},
		{name: "host changed", want: CodeSignatureInvalid, change: func(r *http.Request, b []byte) []byte {
			r.Host = "evil.example:8443"
			return b
		}},
		{name: "digest and body changed together", want: CodeSignatureInvalid, change: func(r *http.Request, b []byte) []byte {
			nb := bytes.Replace(b, []byte("123"), []byte("999"), 1)
			r.Header.Set("Content-Digest", contentDigest([]string{"sha-256"}, nb))
			return nb
		}},
		{name: "signature removed", want: CodeSignatureMissing, change: func(r *http.Request, b []byte) []byte {
			r.Header.Del("Signature")
			return b
		}},
		{name: "signature garbled", want: CodeSignatureMalformed, change: func(r *http.Request, b []byte) []byte {
			r.Header.Set("Signature", "sig1=:not base64!:")
			return b
		}},
		{name: "other key", want: CodeSignatureInvalid, key: PublicKey(otherKey.Public())},
		{name: "expired", want: CodeSignatureStale, now: rfcNow.Add(5 * time.Minute)},
		{name: "created in the future", want: CodeSignatureStale, now: rfcNow.Add(-time.Hour)},
		{name: "policy wants another key id", want: CodeSignaturePolicy, spec: func(r *RFC9421Spec) { r.KeyID = "proc-key-2" }},
		{name: "policy wants a component not covered", want: CodeSignaturePolicy, spec: func(r *RFC9421Spec) {
			r.Components = append(r.Components, "@target-uri")
		}},
		{name: "policy wants another tag", want: CodeSignaturePolicy, spec: func(r *RFC9421Spec) { r.Tag = "other" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, body := chargeRequest(t)
			if err := mustSigner(t, spec, PrivateKey(edKey)).Sign(req, body, rfcNow); err != nil {
				t.Fatal(err)
			}
			in, inBody := wire(t, req, body)
			if tt.change != nil {
				inBody = tt.change(in, inBody)
			}
			vspec := spec.clone()
			if tt.spec != nil {
				tt.spec(vspec.RFC9421)
			}
			key := PublicKey(edKey.Public())
			if tt.key.pub != nil {
				key = tt.key
			}
			now := rfcNow.Add(30 * time.Second)
			if !tt.now.IsZero() {
				now = tt.now
			}
			if err := mustVerifier(t, vspec, key).Verify(in, inBody, now); code(err) != tt.want {
				t.Errorf("Verify = %v, want code %q", err, tt.want)
			}
		})
	}
}

// Derived components follow RFC 9421 §2.2 for requests as they go on the
// wire.
func TestComponentValue(t *testing.T) {
	tests := []struct {
		url, host, comp, want, wantCode string
	}{
		{url: "https://Example.COM:443/a%2Fb?x=1", comp: "@authority", want: "example.com"},
		{url: "https://example.com:8443/", comp: "@authority", want: "example.com:8443"},
		{url: "https://[2001:db8::1]:443/", comp: "@authority", want: "[2001:db8::1]"},
		{url: "https://[2001:db8::1]:9443/", comp: "@authority", want: "[2001:db8::1]:9443"},
		{url: "https://example.com/p", host: "Other.Example", comp: "@authority", want: "other.example"},
		{url: "https://example.com", comp: "@path", want: "/"},
		{url: "https://example.com/a%2Fb/c?x=1", comp: "@path", want: "/a%2Fb/c"},
		{url: "https://example.com/p", comp: "@query", want: "?"},
		{url: "https://example.com/p?", comp: "@query", want: "?"},
		{url: "https://example.com/p?a=1&b=%2D", comp: "@query", want: "?a=1&b=%2D"},
		{url: "https://example.com/p?a=1", comp: "@request-target", want: "/p?a=1"},
		{url: "https://example.com:443/p?a=1", comp: "@target-uri", want: "https://example.com/p?a=1"},
		{url: "HTTPS://example.com/p", comp: "@scheme", want: "https"},
		{url: "https://example.com/p", comp: "@method", want: "POST"},
		{url: "https://example.com/p", comp: "host", want: "example.com"},
		{url: "https://example.com/p", comp: "x-missing", wantCode: CodeComponentMissing},
		{url: "https://example.com/p", comp: "x-two", wantCode: CodeComponentInvalid},
		{url: "https://example.com/p", comp: "x-bytes", wantCode: CodeComponentInvalid},
		{url: "https://example.com/p", comp: "x-spaces", want: "a, b"},
		{url: "https://example.com/p", comp: "content-length", wantCode: CodeComponentMissing},
		{url: "https://example.com/p", comp: "@status", wantCode: CodeComponentMissing},
	}
	for _, tt := range tests {
		t.Run(tt.comp+" "+tt.url, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tt.host
			req.Header["X-Two"] = []string{"a"}
			req.Header["x-two"] = []string{"b"}
			req.Header.Set("X-Bytes", "caf\xc3\xa9")
			req.Header["X-Spaces"] = []string{" a\t", "b "}
			got, err := componentValue(outgoing(req), tt.comp)
			if code(err) != tt.wantCode || got != tt.want {
				t.Errorf("componentValue(%q) = %q, %v; want %q, code %q", tt.comp, got, err, tt.want, tt.wantCode)
			}
		})
	}
}

// A nonce comes from the Signer's randomness, fresh per signature.
func TestRFC9421Nonce(t *testing.T) {
	spec := chargeSpec(AlgHMACSHA256)
	spec.RFC9421.Nonce = true
	s := mustSigner(t, spec, SecretKey([]byte("k")))
	s.rand = bytes.NewReader(append(bytes.Repeat([]byte{0xfb}, 16), bytes.Repeat([]byte{0x01}, 16)...))
	req, body := chargeRequest(t)
	if err := s.Sign(req, body, rfcNow); err != nil {
		t.Fatal(err)
	}
	want := `;nonce="` + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 16)) + `"`
	if got := req.Header.Get("Signature-Input"); !strings.Contains(got, want) {
		t.Errorf("Signature-Input = %q, want it to hold %q", got, want)
	}
	req2, _ := chargeRequest(t)
	if err := s.Sign(req2, body, rfcNow); err != nil {
		t.Fatal(err)
	}
	if req.Header.Get("Signature-Input") == req2.Header.Get("Signature-Input") {
		t.Error("two signatures share a nonce")
	}
	s.rand = bytes.NewReader(nil)
	req3, _ := chargeRequest(t)
	if err := s.Sign(req3, body, rfcNow); code(err) != CodeKeyFailed || req3.Header.Get("Signature") != "" {
		t.Errorf("Sign without randomness = %v, Signature %q; want %s and no signature", err, req3.Header.Get("Signature"), CodeKeyFailed)
	}
}
