package testprocessor

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cardgate/cardgate/forwarder/signing"
)

// The processors' signature checks against requests signed by hand, from
// the documentation alone: the signing string or signature base is
// written out here, so these tests hold the processors to the documents
// rather than to cardgate's forwarder/signing.

func hmacB64(key []byte, s string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func sha256B64(b []byte) string {
	sum := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func TestCybersourceHandSigned(t *testing.T) {
	p := &Cybersource{MerchantID: cybsMerchant, KeyID: cybsKeyID, SharedSecret: cybsSecret, Card: testCard}
	s := Start(t, newCA(t), p)
	decoded, err := base64.StdEncoding.DecodeString(cybsSecret)
	if err != nil {
		t.Fatal(err)
	}
	body := cybsBody(nil)
	date := time.Now().UTC().Format(http.TimeFormat)
	digest := "SHA-256=" + sha256B64(body)
	const headers = "host date request-target digest v-c-merchant-id"
	// The guide's signing string: one "name: value" line per listed
	// header, no final newline.
	str := func(rt, method string) string {
		return "host: " + s.Addr + "\ndate: " + date + "\n" + rt + ": " + method + " " + CybersourcePath +
			"\ndigest: " + digest + "\nv-c-merchant-id: " + cybsMerchant
	}
	tests := []struct {
		name    string
		headers string
		key     []byte
		str     string
		digest  string
		verdict Verdict
		reason  string
	}{
		{"as the guide says", headers, decoded, str("request-target", "post"), digest, Accepted, ""},
		{"keyed with the base64 text, not its bytes", headers, []byte(cybsSecret), str("request-target", "post"), digest, RefusedAuth, "signature: signature_invalid"},
		{"the draft's (request-target)", "host date (request-target) digest v-c-merchant-id", decoded, str("(request-target)", "post"), digest, RefusedAuth, "signature: signature_policy"},
		{"request-target listed, (request-target) signed", headers, decoded, str("(request-target)", "post"), digest, RefusedAuth, "signature: signature_invalid"},
		{"method in capitals", headers, decoded, str("request-target", "POST"), digest, RefusedAuth, "signature: signature_invalid"},
		{"final newline", headers, decoded, str("request-target", "post") + "\n", digest, RefusedAuth, "signature: signature_invalid"},
		{"headers in another order", "date host request-target digest v-c-merchant-id", decoded, str("request-target", "post"), digest, RefusedAuth, "signature: signature_policy"},
		{"digest of another body", headers, decoded, strings.Replace(str("request-target", "post"), digest, "SHA-256="+sha256B64([]byte("{}")), 1),
			"SHA-256=" + sha256B64([]byte("{}")), RefusedAuth, "signature: digest_mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newRequest(t, http.MethodPost, s.URL+CybersourcePath, "application/json", body)
			req.Header.Set("v-c-merchant-id", cybsMerchant)
			req.Header.Set("Date", date)
			req.Header.Set("Digest", tt.digest)
			req.Header.Set("Signature", `keyid="`+cybsKeyID+`", algorithm="HmacSHA256", headers="`+tt.headers+`", signature="`+hmacB64(tt.key, tt.str)+`"`)
			got := do(t, s, req)
			if got.x.Verdict != tt.verdict || got.x.Reason != tt.reason {
				t.Errorf("verdict = %s (%q), want %s (%q)", got.x.Verdict, got.x.Reason, tt.verdict, tt.reason)
			}
		})
	}
}

func TestHTTPSigHandSigned(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("hmac-shared-secret-for-conformance-tests")
	edP := &HTTPSig{KeyID: "k-ed", Algorithm: signing.AlgEd25519, PublicKey: pub, Card: testCard}
	hmP := &HTTPSig{KeyID: "k-hmac", Algorithm: signing.AlgHMACSHA256, Secret: secret, Card: testCard}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecP := &HTTPSig{KeyID: "k-ec", Algorithm: signing.AlgECDSAP256SHA256, ECDSAPublicKey: &ecKey.PublicKey, Card: testCard}
	ed, hm, ec := Start(t, newCA(t), edP), Start(t, newCA(t), hmP), Start(t, newCA(t), ecP)
	body := httpSigBody(nil)
	digest := "sha-256=:" + sha256B64(body) + ":"
	created := strconv.FormatInt(time.Now().Unix(), 10)
	all := `("@method" "@authority" "@path" "content-digest" "content-type")`
	// The RFC 9421 §2.5 signature base for the processor's components,
	// listed in order, with @signature-params last.
	base := func(s *Server, list, params string) string {
		lines := map[string]string{
			"@method": "POST", "@authority": s.Addr, "@path": HTTPSigPath,
			"content-digest": digest, "content-type": "application/json",
		}
		var b strings.Builder
		for _, c := range strings.Fields(strings.Trim(list, "()")) {
			b.WriteString(c + ": " + lines[strings.Trim(c, `"`)] + "\n")
		}
		return b.String() + `"@signature-params": ` + list + params
	}
	edSign := func(s string) string { return base64.StdEncoding.EncodeToString(ed25519.Sign(priv, []byte(s))) }
	hmSign := func(s string) string { return hmacB64(secret, s) }
	// RFC 9421 §3.3.4: r||s, 32 bytes each; ecDER is the ASN.1 form
	// that crypto/ecdsa's SignASN1 writes, which the RFC does not take.
	ecSign := func(s string) string {
		d := sha256.Sum256([]byte(s))
		r, ss, err := ecdsa.Sign(rand.Reader, ecKey, d[:])
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(append(r.FillBytes(make([]byte, 32)), ss.FillBytes(make([]byte, 32))...))
	}
	ecDER := func(s string) string {
		d := sha256.Sum256([]byte(s))
		der, err := ecdsa.SignASN1(rand.Reader, ecKey, d[:])
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(der)
	}
	tests := []struct {
		name    string
		s       *Server
		sign    func(string) string
		list    string
		params  string
		signed  func(string) string // the base actually signed, from the right one
		verdict Verdict
		reason  string
	}{
		{"ed25519", ed, edSign, all, `;created=` + created + `;keyid="k-ed"`, nil, Accepted, ""},
		{"hmac-sha256 with alg", hm, hmSign, all, `;created=` + created + `;keyid="k-hmac";alg="hmac-sha256"`, nil, Accepted, ""},
		{"ecdsa-p256-sha256", ec, ecSign, all, `;created=` + created + `;keyid="k-ec"`, nil, Accepted, ""},
		{"ecdsa-p256-sha256 as ASN.1 DER", ec, ecDER, all, `;created=` + created + `;keyid="k-ec"`, nil, RefusedAuth, "signature: signature_invalid"},
		{"components in another order", ed, edSign, `("content-type" "@path" "@method" "content-digest" "@authority")`, `;created=` + created + `;keyid="k-ed"`, nil, Accepted, ""},
		{"base without @signature-params", ed, edSign, all, `;created=` + created + `;keyid="k-ed"`,
			func(b string) string { return b[:strings.LastIndex(b, "\n")] }, RefusedAuth, "signature: signature_invalid"},
		{"base with a final newline", ed, edSign, all, `;created=` + created + `;keyid="k-ed"`,
			func(b string) string { return b + "\n" }, RefusedAuth, "signature: signature_invalid"},
		{"@path with the query", ed, edSign, all, `;created=` + created + `;keyid="k-ed"`,
			func(b string) string { return strings.Replace(b, HTTPSigPath, HTTPSigPath+"?", 1) }, RefusedAuth, "signature: signature_invalid"},
		{"another alg", hm, hmSign, all, `;created=` + created + `;keyid="k-hmac";alg="hmac-sha512"`, nil, RefusedAuth, "signature: signature_policy"},
		{"created an hour ago", ed, edSign, all, `;created=` + strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10) + `;keyid="k-ed"`, nil, RefusedAuth, "signature: signature_stale"},
		{"expired", ed, edSign, all, `;created=` + created + `;expires=` + strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10) + `;keyid="k-ed"`, nil, RefusedAuth, "signature: signature_stale"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := base(tt.s, tt.list, tt.params)
			if tt.signed != nil {
				b = tt.signed(b)
			}
			req := newRequest(t, http.MethodPost, tt.s.URL+HTTPSigPath, "application/json", body)
			req.Header.Set("Content-Digest", digest)
			req.Header.Set("Signature-Input", "sig1="+tt.list+tt.params)
			req.Header.Set("Signature", "sig1=:"+tt.sign(b)+":")
			got := do(t, tt.s, req)
			if got.x.Verdict != tt.verdict || got.x.Reason != tt.reason {
				t.Errorf("verdict = %s (%q), want %s (%q)", got.x.Verdict, got.x.Reason, tt.verdict, tt.reason)
			}
		})
	}
}
