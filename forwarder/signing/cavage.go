package signing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"time"
)

// The draft-cavage Signature header (draft-cavage-http-signatures-12 §2,
// §4), in the shape processors use today: Cybersource documents
// keyid="…", algorithm="HmacSHA256", headers="host date request-target
// digest v-c-merchant-id", signature="…", a signing string of
// "name: value" lines joined by "\n" with no final newline, and an HMAC
// key that is the base64-decoded shared secret.

func (c *CavageSpec) keyIDParam() string {
	if c.KeyIDParam == "" {
		return "keyid"
	}
	return c.KeyIDParam
}

func (c *CavageSpec) digestAlg() string {
	if c.DigestAlgorithm == "" {
		return "sha-256"
	}
	return c.DigestAlgorithm
}

// headersFor is the signed list for a request with this body: "digest" is
// dropped when there is no body, unless EmptyBodyDigest keeps it.
func (c *CavageSpec) headersFor(body []byte) []string {
	if len(body) > 0 || c.EmptyBodyDigest {
		return c.Headers
	}
	return slices.DeleteFunc(slices.Clone(c.Headers), func(h string) bool { return h == "digest" })
}

func (s *Signer) signCavage(m *message, body []byte, now time.Time) error {
	c := s.spec.Cavage
	headers := c.headersFor(body)
	if slices.Contains(headers, "digest") {
		m.setHeader("Digest", legacyDigest([]string{c.digestAlg()}, body))
	}
	if slices.Contains(headers, "date") {
		if err := m.ensureDate(now); err != nil {
			return err
		}
	}
	str, err := cavageString(m, headers)
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, s.macKey)
	mac.Write(str)
	params := c.keyIDParam() + `="` + c.KeyID + `", algorithm="` + c.Algorithm +
		`", headers="` + strings.Join(headers, " ") +
		`", signature="` + base64.StdEncoding.EncodeToString(mac.Sum(nil)) + `"`
	if c.Header == "authorization" {
		m.setHeader("Authorization", "Signature "+params)
	} else {
		m.setHeader("Signature", params)
	}
	return nil
}

// cavageString builds the signing string (draft-cavage-12 §2.3): for each
// listed name, the name as listed, ": ", and its value; request-target
// (either spelling) is the lowercased method, a space and the request
// target with its query.
func cavageString(m *message, headers []string) ([]byte, error) {
	var b strings.Builder
	for i, h := range headers {
		var v string
		if h == "request-target" || h == "(request-target)" {
			v = strings.ToLower(m.method) + " " + m.requestURI
			if !textOK(v, false) {
				return nil, newErr(CodeComponentInvalid, "the request target cannot be signed")
			}
		} else {
			var err error
			if v, err = m.headerValue(h); err != nil {
				return nil, err
			}
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(h)
		b.WriteString(": ")
		b.WriteString(v)
	}
	return []byte(b.String()), nil
}

// cavageParams parses the Signature header's (or Authorization's)
// comma-separated name="value" pairs. Names are compared without case:
// Cybersource writes keyid, the draft keyId.
func cavageParams(raw string) (map[string]string, bool) {
	out := map[string]string{}
	for s := strings.TrimSpace(raw); s != ""; {
		name, rest, ok := strings.Cut(s, "=")
		if !ok {
			return nil, false
		}
		name = strings.ToLower(strings.TrimSpace(name))
		rest = strings.TrimLeft(rest, " ")
		var val string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return nil, false
			}
			val, rest = rest[1:1+end], rest[2+end:]
		} else {
			val, rest, _ = strings.Cut(rest, ",")
			rest = "," + rest
		}
		if _, dup := out[name]; dup || name == "" {
			return nil, false
		}
		out[name] = strings.TrimSpace(val)
		rest = strings.TrimLeft(rest, " ")
		if rest == "" || rest == "," {
			break
		}
		if rest[0] != ',' {
			return nil, false
		}
		s = strings.TrimSpace(rest[1:])
	}
	return out, true
}

func (v *Verifier) verifyCavage(m *message, body []byte, now time.Time) error {
	c := v.spec.Cavage
	field := "signature"
	if c.Header == "authorization" {
		field = "authorization"
	}
	raw, ok, err := fieldValue(m.header, field)
	if err != nil {
		return newErr(CodeSignatureMalformed, field+" cannot be read")
	}
	if field == "authorization" {
		var found bool
		if raw, found = strings.CutPrefix(raw, "Signature "); !found {
			ok = false
		}
	}
	if !ok {
		return newErr(CodeSignatureMissing, "the request has no "+field)
	}
	params, ok := cavageParams(raw)
	if !ok {
		return newErr(CodeSignatureMalformed, "the "+field+" parameters do not parse")
	}
	sig, err := base64.StdEncoding.DecodeString(params["signature"])
	if err != nil || len(sig) == 0 {
		return newErr(CodeSignatureMalformed, "the signature parameter is not base64")
	}
	headers := strings.Fields(params["headers"])
	str, err := cavageString(m, headers)
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, v.macKey)
	mac.Write(str)
	if !hmac.Equal(mac.Sum(nil), sig) {
		return newErr(CodeSignatureInvalid, "the signature does not verify")
	}
	if params["keyid"] != c.KeyID {
		return newErr(CodeSignaturePolicy, "keyid is not the expected key")
	}
	if params["algorithm"] != c.Algorithm {
		return newErr(CodeSignaturePolicy, "algorithm is not the expected algorithm")
	}
	if len(body) > 0 && !slices.Contains(headers, "digest") {
		return newErr(CodeSignaturePolicy, "the request has a body and the signature does not cover digest")
	}
	if !slices.Equal(headers, c.headersFor(body)) {
		return newErr(CodeSignaturePolicy, "headers is not the expected list")
	}
	if slices.Contains(headers, "date") {
		d, _ := m.headerValue("date")
		t, err := http.ParseTime(d)
		if err != nil {
			return newErr(CodeSignatureMalformed, "Date is not an HTTP-date")
		}
		if err := v.fresh(t, now, "Date"); err != nil {
			return err
		}
	}
	if slices.Contains(headers, "digest") {
		return verifyLegacyDigest(m.header, body, []string{c.digestAlg()})
	}
	return nil
}
