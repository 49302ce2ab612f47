package signing

import (
	"bytes"
	"net/http"
	"testing"
)

// RFC 9530 Appendix D gives the digests of {"hello": "world"}; its
// examples in §2 and Appendix B hash the same object followed by a LF.
const (
	helloSHA256   = "X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="
	helloSHA512   = "WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew=="
	helloLFSHA256 = "RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg="
	helloLFSHA512 = "YMAam51Jz/jOATT6/zvHrLVgOYTGFy1d6GJiOHTohq4yP+pgk4vf2aCsyRZOtw8MjkM7iw7yZ/WkppmM44T3qg=="
	emptySHA256   = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
)

func digestRequest(t *testing.T, method string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, "https://api.processor.example/v1/items", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(body) == 0 {
		req.Body, req.ContentLength = nil, 0
	}
	return req
}

func TestDigestSign(t *testing.T) {
	hello := []byte(`{"hello": "world"}`)
	helloLF := []byte("{\"hello\": \"world\"}\n")
	tests := []struct {
		name   string
		scheme Scheme
		algs   []string
		method string
		body   []byte
		header string
		want   string
	}{
		{"content-digest default sha-256", SchemeContentDigest, nil, http.MethodPost, hello, "Content-Digest", "sha-256=:" + helloSHA256 + ":"},
		{"content-digest sha-512", SchemeContentDigest, []string{"sha-512"}, http.MethodPost, hello, "Content-Digest", "sha-512=:" + helloSHA512 + ":"},
		{"content-digest with LF, both", SchemeContentDigest, []string{"sha-256", "sha-512"}, http.MethodPut, helloLF, "Content-Digest",
			"sha-256=:" + helloLFSHA256 + ":, sha-512=:" + helloLFSHA512 + ":"},
		{"content-digest of no content", SchemeContentDigest, nil, http.MethodGet, nil, "Content-Digest", "sha-256=:" + emptySHA256 + ":"},
		{"legacy digest", SchemeDigest, nil, http.MethodPost, hello, "Digest", "SHA-256=" + helloSHA256},
		{"legacy digest both", SchemeDigest, []string{"sha-256", "sha-512"}, http.MethodPost, helloLF, "Digest",
			"SHA-256=" + helloLFSHA256 + ",SHA-512=" + helloLFSHA512},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := Spec{Scheme: tt.scheme}
			if tt.algs != nil {
				spec.Digest = &DigestSpec{Algorithms: tt.algs}
			}
			req := digestRequest(t, tt.method, tt.body)
			if err := mustSigner(t, spec, Key{}).Sign(req, tt.body, rfcNow); err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if got := req.Header.Values(tt.header); len(got) != 1 || got[0] != tt.want {
				t.Errorf("%s = %q, want %q", tt.header, got, tt.want)
			}
			in, body := wire(t, req, tt.body)
			if err := mustVerifier(t, spec, Key{}).Verify(in, body, rfcNow); err != nil {
				t.Errorf("Verify = %v", err)
			}
		})
	}
}

func TestDigestVerify(t *testing.T) {
	hello := []byte(`{"hello": "world"}`)
	tests := []struct {
		name   string
		scheme Scheme
		algs   []string
		header string
		value  string
		body   []byte
		want   string
	}{
		{"content-digest good", SchemeContentDigest, nil, "Content-Digest", "sha-256=:" + helloSHA256 + ":", hello, ""},
		{"unknown algorithm ignored", SchemeContentDigest, nil, "Content-Digest", "md5=:Sd/dVLAcvNLSq16eXua5uQ==:, sha-256=:" + helloSHA256 + ":", hello, ""},
		{"body changed", SchemeContentDigest, nil, "Content-Digest", "sha-256=:" + helloSHA256 + ":", []byte(`{"hello": "World"}`), CodeDigestMismatch},
		{"one of two wrong", SchemeContentDigest, nil, "Content-Digest", "sha-256=:" + helloSHA256 + ":, sha-512=:" + helloLFSHA512 + ":", hello, CodeDigestMismatch},
		{"required algorithm absent", SchemeContentDigest, []string{"sha-512"}, "Content-Digest", "sha-256=:" + helloSHA256 + ":", hello, CodeSignatureMissing},
		{"only an unknown algorithm", SchemeContentDigest, nil, "Content-Digest", "md5=:Sd/dVLAcvNLSq16eXua5uQ==:", hello, CodeSignatureMissing},
		{"not a dictionary", SchemeContentDigest, nil, "Content-Digest", "SHA-256=" + helloSHA256, hello, CodeSignatureMalformed},
		{"not a byte sequence", SchemeContentDigest, nil, "Content-Digest", `sha-256="` + helloSHA256 + `"`, hello, CodeSignatureMalformed},
		{"missing", SchemeContentDigest, nil, "X-Other", "x", hello, CodeSignatureMissing},
		{"legacy good, any case", SchemeDigest, nil, "Digest", "sha-256=" + helloSHA256, hello, ""},
		{"legacy body changed", SchemeDigest, nil, "Digest", "SHA-256=" + helloSHA256, []byte(`{}`), CodeDigestMismatch},
		{"legacy not base64", SchemeDigest, nil, "Digest", "SHA-256=%%%", hello, CodeSignatureMalformed},
		{"legacy missing", SchemeDigest, nil, "Content-Digest", "sha-256=:" + helloSHA256 + ":", hello, CodeSignatureMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := Spec{Scheme: tt.scheme}
			if tt.algs != nil {
				spec.Digest = &DigestSpec{Algorithms: tt.algs}
			}
			req := digestRequest(t, http.MethodPost, tt.body)
			req.Header.Set(tt.header, tt.value)
			if err := mustVerifier(t, spec, Key{}).Verify(req, tt.body, rfcNow); code(err) != tt.want {
				t.Errorf("Verify = %v, want code %q", err, tt.want)
			}
		})
	}
}
