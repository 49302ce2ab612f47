package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
)

// HTTP Message Signatures (RFC 9421): the signature base of §2.5, the
// parameters of §2.3, the Signature-Input and Signature fields of §4, and
// the algorithms of §3.3.

func (r *RFC9421Spec) label() string {
	if r.Label == "" {
		return defaultLabel
	}
	return r.Label
}

func (r *RFC9421Spec) contentDigestAlgs() []string {
	if len(r.ContentDigest) == 0 {
		return []string{"sha-256"}
	}
	return r.ContentDigest
}

func (s *Signer) signRFC9421(m *message, body []byte, now time.Time) error {
	r := s.spec.RFC9421
	if slices.Contains(r.Components, "content-digest") {
		m.setHeader("Content-Digest", contentDigest(r.contentDigestAlgs(), body))
	}
	if slices.Contains(r.Components, "date") {
		if err := m.ensureDate(now); err != nil {
			return err
		}
	}
	params, err := s.rfc9421Params(now)
	if err != nil {
		return err
	}
	base, err := signatureBase(m, r.Components, params)
	if err != nil {
		return err
	}
	sig, err := s.sign(r.Algorithm, base)
	if err != nil {
		return err
	}
	label := r.label()
	m.setHeader("Signature-Input", label+"="+params)
	m.setHeader("Signature", label+"=:"+base64.StdEncoding.EncodeToString(sig)+":")
	return nil
}

// rfc9421Params serializes the covered components and the parameters in
// the order created, expires, keyid, alg, nonce, tag: the order of the
// RFC's own examples.
func (s *Signer) rfc9421Params(now time.Time) (string, error) {
	r := s.spec.RFC9421
	list := make([]sfInner, len(r.Components))
	for i, c := range r.Components {
		list[i] = sfInner{item: sfItem{kind: sfString, str: c}}
	}
	var params []sfParam
	created := now.Unix()
	if r.Created {
		params = append(params, sfParam{"created", sfItem{kind: sfInteger, num: created}})
	}
	if r.Expires > 0 {
		params = append(params, sfParam{"expires", sfItem{kind: sfInteger, num: created + int64(r.Expires/time.Second)}})
	}
	params = append(params, sfParam{"keyid", sfItem{kind: sfString, str: r.KeyID}})
	if r.IncludeAlg {
		params = append(params, sfParam{"alg", sfItem{kind: sfString, str: r.Algorithm}})
	}
	if r.Nonce {
		var n [16]byte
		if _, err := s.rand.Read(n[:]); err != nil {
			return "", &Error{Code: CodeKeyFailed, Detail: "no randomness for the nonce", Err: err}
		}
		params = append(params, sfParam{"nonce", sfItem{kind: sfString, str: base64.RawURLEncoding.EncodeToString(n[:])}})
	}
	if r.Tag != "" {
		params = append(params, sfParam{"tag", sfItem{kind: sfString, str: r.Tag}})
	}
	return serializeInnerList(list, params), nil
}

// signatureBase builds the signature base of RFC 9421 §2.5: one line per
// covered component, then the @signature-params line, with no final
// newline.
func signatureBase(m *message, components []string, params string) ([]byte, error) {
	var b strings.Builder
	b.Grow(96*len(components) + len(params) + 24)
	for _, c := range components {
		v, err := componentValue(m, c)
		if err != nil {
			return nil, err
		}
		writeSFString(&b, c)
		b.WriteString(": ")
		b.WriteString(v)
		b.WriteByte('\n')
	}
	b.WriteString(`"@signature-params": `)
	b.WriteString(params)
	out := b.String()
	if !fieldTextOK(out, true) {
		return nil, newErr(CodeComponentInvalid, "the signature base would hold a non-ASCII character")
	}
	return []byte(out), nil
}

// componentValue derives one component's value (RFC 9421 §2.1, §2.2).
func componentValue(m *message, c string) (string, error) {
	var v string
	switch c {
	case "@method":
		v = m.method
	case "@scheme":
		v = m.scheme
	case "@authority":
		v = normalAuthority(m.scheme, m.authority)
	case "@target-uri":
		if m.scheme == "" {
			return "", newErr(CodeComponentMissing, "the request has no scheme for @target-uri")
		}
		v = m.scheme + "://" + normalAuthority(m.scheme, m.authority) + m.requestURI
	case "@request-target":
		v = m.requestURI
	case "@path":
		v = m.path()
	case "@query":
		q, _ := m.query()
		v = "?" + q
	case "@status":
		if m.status == 0 {
			return "", newErr(CodeComponentMissing, "@status is for responses only")
		}
		v = strconv.Itoa(m.status)
	default:
		if strings.HasPrefix(c, "@") {
			return "", newErr(CodeComponentInvalid, "unknown derived component "+c)
		}
		return m.headerValue(c)
	}
	// Derived values are printable ASCII with no surrounding whitespace
	// (§2.2).
	if v == "" || !textOK(v, false) || strings.TrimSpace(v) != v {
		return "", newErr(CodeComponentInvalid, "the request's "+c+" cannot be signed")
	}
	return v, nil
}

// normalAuthority lowercases the host and drops the scheme's default port
// (RFC 9110 §4.2.3), as §2.2.3 requires for @authority.
func normalAuthority(scheme, authority string) string {
	a := strings.ToLower(authority)
	hostEnd := strings.LastIndexByte(a, ']') // an IPv6 literal holds colons
	if i := strings.LastIndexByte(a, ':'); i > hostEnd {
		if port := a[i+1:]; port == "" || scheme == "https" && port == "443" || scheme == "http" && port == "80" {
			return a[:i]
		}
	}
	return a
}

// sign applies HTTP_SIGN of §3.3 for the RFC 9421 algorithms.
func (s *Signer) sign(alg string, base []byte) ([]byte, error) {
	switch alg {
	case AlgHMACSHA256:
		mac := hmac.New(sha256.New, s.macKey)
		mac.Write(base)
		return mac.Sum(nil), nil
	case AlgEd25519:
		sig, err := s.priv.Sign(s.rand, base, crypto.Hash(0))
		if err != nil || len(sig) != ed25519.SignatureSize {
			return nil, &Error{Code: CodeKeyFailed, Detail: "the ed25519 key did not sign", Err: err}
		}
		return sig, nil
	case AlgECDSAP256SHA256:
		digest := sha256.Sum256(base)
		der, err := s.priv.Sign(s.rand, digest[:], crypto.SHA256)
		if err != nil {
			return nil, &Error{Code: CodeKeyFailed, Detail: "the ecdsa key did not sign", Err: err}
		}
		// crypto.Signer gives ASN.1 DER; §3.3.4 wants r and s as two
		// 32-byte big-endian integers.
		var rs struct{ R, S *big.Int }
		rest, err := asn1.Unmarshal(der, &rs)
		if err != nil || len(rest) != 0 || rs.R.Sign() <= 0 || rs.S.Sign() <= 0 || rs.R.BitLen() > 256 || rs.S.BitLen() > 256 {
			return nil, &Error{Code: CodeKeyFailed, Detail: "the ecdsa key returned a malformed signature"}
		}
		out := make([]byte, 64)
		rs.R.FillBytes(out[:32])
		rs.S.FillBytes(out[32:])
		return out, nil
	}
	return nil, newErr(CodeKeyFailed, "unknown algorithm")
}

// verifyRaw applies HTTP_VERIFY of §3.3.
func verifyRaw(alg string, macKey []byte, pub crypto.PublicKey, base, sig []byte) bool {
	switch alg {
	case AlgHMACSHA256:
		mac := hmac.New(sha256.New, macKey)
		mac.Write(base)
		return hmac.Equal(mac.Sum(nil), sig)
	case AlgEd25519:
		p, ok := pub.(ed25519.PublicKey)
		return ok && len(sig) == ed25519.SignatureSize && ed25519.Verify(p, base, sig)
	case AlgECDSAP256SHA256:
		p, ok := pub.(*ecdsa.PublicKey)
		if !ok || len(sig) != 64 {
			return false
		}
		digest := sha256.Sum256(base)
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(p, digest[:], r, s)
	}
	return false
}

// verifyRFC9421 checks the signature labelled as the spec says, then the
// spec's policy, then Content-Digest against the body.
func (v *Verifier) verifyRFC9421(m *message, body []byte, now time.Time) error {
	r := v.spec.RFC9421
	label := r.label()
	input, err := dictMember(m, "signature-input", label)
	if err != nil {
		return err
	}
	sigm, err := dictMember(m, "signature", label)
	if err != nil {
		return err
	}
	if !input.inner || sigm.inner || sigm.item.kind != sfBytes {
		return newErr(CodeSignatureMalformed, "Signature-Input or Signature for "+label+" has the wrong type")
	}
	components := make([]string, len(input.list))
	for i, it := range input.list {
		if it.item.kind != sfString || len(it.params) > 0 {
			return newErr(CodeSignatureMalformed, "a covered component is not a plain string")
		}
		components[i] = it.item.str
		if slices.Index(components[:i], it.item.str) >= 0 {
			return newErr(CodeSignatureMalformed, "a covered component is listed twice")
		}
	}
	base, err := signatureBase(m, components, serializeInnerList(input.list, input.params))
	if err != nil {
		return err
	}
	if !verifyRaw(r.Algorithm, v.macKey, v.pub, base, sigm.item.bytes) {
		return newErr(CodeSignatureInvalid, "the signature "+label+" does not verify")
	}

	// Policy: the spec is what the processor requires.
	for _, c := range r.Components {
		if !slices.Contains(components, c) {
			return newErr(CodeSignaturePolicy, "the signature does not cover "+c)
		}
	}
	got := map[string]sfItem{}
	for _, p := range input.params {
		got[p.key] = p.val
	}
	if k, ok := got["keyid"]; !ok || k.kind != sfString || k.str != r.KeyID {
		return newErr(CodeSignaturePolicy, "keyid is not the expected key")
	}
	if a, ok := got["alg"]; ok && (a.kind != sfString || a.str != r.Algorithm) || !ok && r.IncludeAlg {
		return newErr(CodeSignaturePolicy, "alg is not the expected algorithm")
	}
	if t, ok := got["tag"]; r.Tag != "" && (!ok || t.kind != sfString || t.str != r.Tag) {
		return newErr(CodeSignaturePolicy, "tag is not the expected tag")
	}
	if n, ok := got["nonce"]; r.Nonce && (!ok || n.kind != sfString || n.str == "") {
		return newErr(CodeSignaturePolicy, "the signature has no nonce")
	}
	c, hasCreated := got["created"]
	if r.Created && !hasCreated || hasCreated && c.kind != sfInteger {
		return newErr(CodeSignaturePolicy, "the signature has no integer created")
	}
	if hasCreated {
		if err := v.fresh(time.Unix(c.num, 0), now, "created"); err != nil {
			return err
		}
	}
	e, hasExpires := got["expires"]
	if r.Expires > 0 && !hasExpires || hasExpires && e.kind != sfInteger {
		return newErr(CodeSignaturePolicy, "the signature has no integer expires")
	}
	if hasExpires && !now.Before(time.Unix(e.num, 0)) {
		return newErr(CodeSignatureStale, "the signature has expired")
	}
	covered := slices.Contains(components, "content-digest")
	if len(body) > 0 && !covered {
		return newErr(CodeSignaturePolicy, "the request has a body and the signature does not cover content-digest")
	}
	if covered {
		return verifyContentDigest(m.header, body, r.contentDigestAlgs())
	}
	return nil
}

// dictMember finds the member named label in a Dictionary field.
func dictMember(m *message, field, label string) (sfMember, error) {
	raw, ok, err := fieldValue(m.header, field)
	if err != nil {
		return sfMember{}, newErr(CodeSignatureMalformed, field+" cannot be read")
	}
	if !ok {
		return sfMember{}, newErr(CodeSignatureMissing, "the request has no "+field)
	}
	members, err := parseDictionary(raw)
	if err != nil {
		return sfMember{}, newErr(CodeSignatureMalformed, field+" is not a Structured Fields Dictionary")
	}
	for _, mem := range members {
		if mem.key == label {
			return mem, nil
		}
	}
	return sfMember{}, newErr(CodeSignatureMissing, field+" has no signature labelled "+label)
}
