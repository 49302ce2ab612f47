package signing

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
)

// digestAlgs maps RFC 9530 algorithm keys to their hash and to the RFC
// 3230 token the legacy Digest header uses for them (RFC 5843 names).
var digestAlgs = map[string]struct {
	sum    func([]byte) []byte
	legacy string
}{
	"sha-256": {func(b []byte) []byte { s := sha256.Sum256(b); return s[:] }, "SHA-256"},
	"sha-512": {func(b []byte) []byte { s := sha512.Sum512(b); return s[:] }, "SHA-512"},
}

// contentDigest is a Content-Digest value (RFC 9530 §2): a Structured
// Fields Dictionary of algorithm keys and Byte Sequences, over the content
// exactly as sent.
func contentDigest(algs []string, body []byte) string {
	var b strings.Builder
	for i, a := range algs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a)
		b.WriteString("=:")
		b.WriteString(base64.StdEncoding.EncodeToString(digestAlgs[a].sum(body)))
		b.WriteString(":")
	}
	return b.String()
}

// legacyDigest is an RFC 3230 Digest value: "SHA-256=<base64>", joined by
// commas. RFC 3230 meant the representation; processors that still ask
// for it (Cybersource) hash the body as sent, and so does this.
func legacyDigest(algs []string, body []byte) string {
	var b strings.Builder
	for i, a := range algs {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(digestAlgs[a].legacy)
		b.WriteString("=")
		b.WriteString(base64.StdEncoding.EncodeToString(digestAlgs[a].sum(body)))
	}
	return b.String()
}

// verifyContentDigest checks Content-Digest against body. Every algorithm
// in want must be present, and every known algorithm present must match;
// unknown ones are ignored (RFC 9530 §2 lets a recipient ignore them).
func verifyContentDigest(h http.Header, body []byte, want []string) error {
	raw, ok, err := fieldValue(h, "content-digest")
	if err != nil {
		return newErr(CodeSignatureMalformed, "Content-Digest cannot be read")
	}
	if !ok {
		return newErr(CodeSignatureMissing, "the request has no Content-Digest")
	}
	members, err := parseDictionary(raw)
	if err != nil {
		return newErr(CodeSignatureMalformed, "Content-Digest is not a Structured Fields Dictionary")
	}
	got := map[string][]byte{}
	for _, m := range members {
		if _, known := digestAlgs[m.key]; !known {
			continue
		}
		if m.inner || m.item.kind != sfBytes {
			return newErr(CodeSignatureMalformed, "Content-Digest "+m.key+" is not a Byte Sequence")
		}
		got[m.key] = m.item.bytes
	}
	return matchDigests("Content-Digest", got, body, want)
}

// verifyLegacyDigest checks an RFC 3230 Digest header against body; the
// algorithm tokens are case-insensitive (RFC 3230 §4.1.1).
func verifyLegacyDigest(h http.Header, body []byte, want []string) error {
	raw, ok, err := fieldValue(h, "digest")
	if err != nil {
		return newErr(CodeSignatureMalformed, "Digest cannot be read")
	}
	if !ok {
		return newErr(CodeSignatureMissing, "the request has no Digest")
	}
	got := map[string][]byte{}
	for _, part := range strings.Split(raw, ",") {
		tok, val, found := strings.Cut(strings.TrimSpace(part), "=")
		if !found {
			return newErr(CodeSignatureMalformed, "Digest is not a list of algorithm=value")
		}
		alg := strings.ToLower(tok)
		if _, known := digestAlgs[alg]; !known {
			continue
		}
		sum, err := base64.StdEncoding.DecodeString(val)
		if err != nil {
			return newErr(CodeSignatureMalformed, "Digest "+alg+" is not base64")
		}
		got[alg] = sum
	}
	return matchDigests("Digest", got, body, want)
}

func matchDigests(field string, got map[string][]byte, body []byte, want []string) error {
	for _, a := range want {
		if _, ok := got[a]; !ok {
			return newErr(CodeSignatureMissing, field+" has no "+a+" value")
		}
	}
	for a, sum := range got {
		if subtle.ConstantTimeCompare(sum, digestAlgs[a].sum(body)) != 1 {
			return newErr(CodeDigestMismatch, field+" "+a+" does not match the body")
		}
	}
	return nil
}
