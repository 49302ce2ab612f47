package signing

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"
)

var hmacSecret = []byte("generic processor secret")

func hmacSpec(h HMACSpec) Spec {
	return Spec{Scheme: SchemeHMAC, Credential: "proc-hmac", HMAC: &h}
}

// The generic scheme against openssl: each canonical string is written out
// by hand and MACed by the openssl binary.
func TestHMACSign(t *testing.T) {
	body := []byte(`{"number":"4242424242424242"}`)
	sha256hex := hex.EncodeToString(openssl(t, body, "dgst", "-sha256", "-binary"))
	sha256b64 := base64.StdEncoding.EncodeToString(openssl(t, body, "dgst", "-sha256", "-binary"))
	sha512hex := hex.EncodeToString(openssl(t, body, "dgst", "-sha512", "-binary"))
	tests := []struct {
		name    string
		spec    HMACSpec
		method  string
		url     string
		body    []byte
		str     string
		digest  string // openssl dgst name
		header  string
		prefix  string
		hex     bool
		stampH  string
		stampV  string
		dateSet bool
	}{
		{
			name: "timestamp+method+path+query+body, concatenated, hex",
			spec: HMACSpec{Hash: "sha256", Parts: []string{"timestamp", "method", "path+query", "body"}, Header: "X-Signature",
				Encoding: "hex", TimestampHeader: "X-Timestamp", TimestampFormat: "unix"},
			method: http.MethodPost, url: "https://api.processor.example/v1/charges?capture=true", body: body,
			str:    "1618884473POST/v1/charges?capture=true" + string(body),
			digest: "sha256", header: "X-Signature", hex: true, stampH: "X-Timestamp", stampV: "1618884473",
		},
		{
			name: "newline-separated named parts, sha512, base64, prefix, rfc3339",
			spec: HMACSpec{Hash: "sha512", Parts: []string{"method", "host", "path", "query", "header:content-type", "header:date", "body-sha256-hex", "timestamp"},
				Separator: "\n", Header: "Authorization", Prefix: "HMAC-SHA512 ", Encoding: "base64",
				TimestampHeader: "X-Request-Time", TimestampFormat: "rfc3339"},
			method: http.MethodPut, url: "https://api.processor.example:8443/v1/cards/c_1?x=1&y=2", body: body,
			str: "PUT\napi.processor.example:8443\n/v1/cards/c_1\nx=1&y=2\napplication/json\nTue, 20 Apr 2021 02:07:53 GMT\n" +
				sha256hex + "\n2021-04-20T02:07:53Z",
			digest: "sha512", header: "Authorization", prefix: "HMAC-SHA512 ", stampH: "X-Request-Time", stampV: "2021-04-20T02:07:53Z", dateSet: true,
		},
		{
			name: "pipe-separated digests and a header, unix-ms",
			spec: HMACSpec{Hash: "sha256", Parts: []string{"header:x-api-key", "body-sha512-hex", "body-sha256-base64", "timestamp"},
				Separator: "|", Header: "X-Sig", Prefix: "v1=", Encoding: "hex", TimestampHeader: "X-Ts", TimestampFormat: "unix-ms"},
			method: http.MethodPost, url: "https://api.processor.example/v1/pay", body: body,
			str:    "key_live_public|" + sha512hex + "|" + sha256b64 + "|1618884473000",
			digest: "sha256", header: "X-Sig", prefix: "v1=", hex: true, stampH: "X-Ts", stampV: "1618884473000",
		},
		{
			name: "GET, Date as the timestamp, no body",
			spec: HMACSpec{Hash: "sha256", Parts: []string{"method", "path", "timestamp"}, Separator: " ", Header: "X-Sig",
				Encoding: "base64", TimestampHeader: "Date", TimestampFormat: "http-date"},
			method: http.MethodGet, url: "https://api.processor.example/v1/charges/ch_1",
			str:    "GET /v1/charges/ch_1 Tue, 20 Apr 2021 02:07:53 GMT",
			digest: "sha256", header: "X-Sig", stampH: "Date", stampV: "Tue, 20 Apr 2021 02:07:53 GMT",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, tt.url, bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if len(tt.body) == 0 {
				req.Body, req.ContentLength = nil, 0
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Api-Key", "key_live_public")
			req.Header.Set("X-Timestamp", "caller's, replaced")
			spec := hmacSpec(tt.spec)
			if err := mustSigner(t, spec, SecretKey(hmacSecret)).Sign(req, tt.body, rfcNow); err != nil {
				t.Fatalf("Sign: %v", err)
			}
			mac := opensslHMAC(t, tt.digest, hmacSecret, []byte(tt.str))
			if tt.hex {
				raw, _ := base64.StdEncoding.DecodeString(mac)
				mac = hex.EncodeToString(raw)
			}
			if got, want := req.Header.Get(tt.header), tt.prefix+mac; got != want {
				t.Errorf("%s = %q, want %q", tt.header, got, want)
			}
			if got := req.Header.Values(tt.stampH); len(got) != 1 || got[0] != tt.stampV {
				t.Errorf("%s = %q, want %q", tt.stampH, got, tt.stampV)
			}
			if got := req.Header.Get("Date"); (got != "") != (tt.dateSet || tt.stampH == "Date") {
				t.Errorf("Date = %q; set only when a part covers it", got)
			}
			in, inBody := wire(t, req, tt.body)
			if err := mustVerifier(t, spec, SecretKey(hmacSecret)).Verify(in, inBody, rfcNow.Add(time.Minute)); err != nil {
				t.Errorf("Verify = %v", err)
			}
		})
	}
}

func TestHMACVerifyRejects(t *testing.T) {
	spec := hmacSpec(HMACSpec{Hash: "sha256", Parts: []string{"timestamp", "method", "path+query", "header:x-merchant", "body"},
		Separator: "\n", Header: "X-Signature", Prefix: "sha256=", Encoding: "hex", TimestampHeader: "X-Timestamp", TimestampFormat: "unix"})
	body := []byte(`card[number]=4242424242424242`)
	tests := []struct {
		name   string
		change func(r *http.Request, b []byte) []byte
		secret string
		now    time.Time
		want   string
	}{
		{name: "valid"},
		{name: "body changed", want: CodeSignatureInvalid, change: func(r *http.Request, b []byte) []byte {
			return bytes.Replace(b, []byte("4242"), []byte("4111"), 1)
		}},
		{name: "header changed", want: CodeSignatureInvalid, change: func(r *http.Request, b []byte) []byte {
			r.Header.Set("X-Merchant", "m_2")
			return b
		}},
		{name: "path changed", want: CodeSignatureInvalid, change: func(r *http.Request, b []byte) []byte {
			r.RequestURI = "/v1/refunds"
			return b
		}},
		{name: "timestamp changed", want: CodeSignatureInvalid, change: func(r *http.Request, b []byte) []byte {
			r.Header.Set("X-Timestamp", "1618884474")
			return b
		}},
		{name: "prefix missing", want: CodeSignatureMalformed, change: func(r *http.Request, b []byte) []byte {
			r.Header.Set("X-Signature", strings.TrimPrefix(r.Header.Get("X-Signature"), "sha256="))
			return b
		}},
		{name: "signature missing", want: CodeSignatureMissing, change: func(r *http.Request, b []byte) []byte {
			r.Header.Del("X-Signature")
			return b
		}},
		{name: "other key", secret: "another secret", want: CodeSignatureInvalid},
		{name: "stale", now: rfcNow.Add(-6 * time.Minute), want: CodeSignatureStale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, "https://api.processor.example/v1/charges", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Merchant", "m_1")
			if err := mustSigner(t, spec, SecretKey(hmacSecret)).Sign(req, body, rfcNow); err != nil {
				t.Fatal(err)
			}
			in, inBody := wire(t, req, body)
			if tt.change != nil {
				inBody = tt.change(in, inBody)
			}
			secret := hmacSecret
			if tt.secret != "" {
				secret = []byte(tt.secret)
			}
			now := rfcNow
			if !tt.now.IsZero() {
				now = tt.now
			}
			if err := mustVerifier(t, spec, SecretKey(secret)).Verify(in, inBody, now); code(err) != tt.want {
				t.Errorf("Verify = %v, want code %q", err, tt.want)
			}
		})
	}
}
