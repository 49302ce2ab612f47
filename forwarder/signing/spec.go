package signing

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Scheme names a signing scheme in an allowlist entry.
type Scheme string

// The schemes. Each one is implemented in its own file.
const (
	// SchemeContentDigest sets Content-Digest (RFC 9530) over the body.
	SchemeContentDigest Scheme = "content-digest"
	// SchemeDigest sets the legacy Digest header (RFC 3230, "SHA-256=").
	SchemeDigest Scheme = "digest"
	// SchemeRFC9421 sets Signature-Input and Signature (HTTP Message
	// Signatures), and Content-Digest when it is covered.
	SchemeRFC9421 Scheme = "rfc9421"
	// SchemeCavage sets the draft-cavage Signature header, and Digest when
	// "digest" is in its header list.
	SchemeCavage Scheme = "cavage"
	// SchemeHMAC sets one header holding an HMAC over a canonical string
	// the entry declares from named parts.
	SchemeHMAC Scheme = "hmac"
)

// Spec is the signing block of a signed allowlist entry. The allowlist
// decodes it (the yaml tags are its document syntax) and calls Validate;
// the forwarder builds a Signer from it with New. A Spec holds no secret:
// Credential only names one.
type Spec struct {
	Scheme Scheme `yaml:"scheme"`
	// Credential names the gateway credential that holds the key. The
	// entry must also grant it (its credentials list); this package never
	// resolves it. Required for rfc9421, cavage and hmac; refused for the
	// digest schemes, which use no key.
	Credential string `yaml:"credential"`
	// SecretEncoding says how the shared secret's bytes are turned into
	// the HMAC key: "raw" (or empty: used as they are), "base64" (standard
	// base64, padded or not, decoded first: Cybersource's SDKs do this) or
	// "hex". Only for HMAC keys.
	SecretEncoding string `yaml:"secret_encoding"`

	Digest  *DigestSpec  `yaml:"digest"`  // content-digest and digest schemes; nil means sha-256
	RFC9421 *RFC9421Spec `yaml:"rfc9421"` // required for scheme rfc9421
	Cavage  *CavageSpec  `yaml:"cavage"`  // required for scheme cavage
	HMAC    *HMACSpec    `yaml:"hmac"`    // required for scheme hmac
}

// DigestSpec configures the content-digest and digest schemes.
type DigestSpec struct {
	// Algorithms are RFC 9530 keys: "sha-256", "sha-512". Empty means
	// sha-256. The digest scheme writes them as SHA-256= and SHA-512=.
	Algorithms []string `yaml:"algorithms"`
}

// RFC9421Spec configures HTTP Message Signatures (RFC 9421).
type RFC9421Spec struct {
	// Algorithm is "hmac-sha256", "ed25519" or "ecdsa-p256-sha256".
	Algorithm string `yaml:"algorithm"`
	// KeyID is sent as the keyid parameter. Required.
	KeyID string `yaml:"key_id"`
	// Label names the signature in Signature-Input and Signature; empty
	// means "sig1".
	Label string `yaml:"label"`
	// Components are the covered components, in order: derived ones
	// (@method, @target-uri, @authority, @scheme, @request-target, @path,
	// @query) and lowercase header names. Parameters (;sf, ;key, ;bs,
	// ;req, ;tr, @query-param;name=) are not supported and are refused.
	Components []string `yaml:"components"`
	// Created adds created=<unix seconds>; RFC 9421 recommends it.
	Created bool `yaml:"created"`
	// Expires, when positive, adds expires=created+Expires (whole
	// seconds, at most 24h).
	Expires time.Duration `yaml:"expires"`
	// Nonce adds a random nonce parameter to every signature.
	Nonce bool `yaml:"nonce"`
	// Tag, when set, is sent as the tag parameter.
	Tag string `yaml:"tag"`
	// IncludeAlg adds alg="<Algorithm>". RFC 9421 leaves it optional;
	// some verifiers want it.
	IncludeAlg bool `yaml:"include_alg"`
	// ContentDigest lists the Content-Digest algorithms set when
	// "content-digest" is covered; empty means sha-256.
	ContentDigest []string `yaml:"content_digest"`
}

// CavageSpec configures the draft-cavage Signature header, as Cybersource
// and other processors still use it. Follow the processor's current
// documentation: Cybersource, since its 2024 security update, wants
// request-target without parentheses and decodes the shared secret from
// base64 (SecretEncoding "base64").
type CavageSpec struct {
	// KeyID is sent as the key id parameter. Required.
	KeyID string `yaml:"key_id"`
	// Algorithm is written verbatim: "HmacSHA256" (Cybersource) or
	// "hmac-sha256" (the draft). Both are HMAC-SHA256.
	Algorithm string `yaml:"algorithm"`
	// Headers is the ordered signed list: lowercase header names, and
	// "request-target" or "(request-target)" (the entry picks the
	// spelling; the line in the signing string uses the same spelling).
	// "host" is the Host that goes on the wire; "digest" makes the
	// gateway set Digest over the body.
	Headers []string `yaml:"headers"`
	// KeyIDParam is the name of the key id parameter: "keyid" (or empty;
	// Cybersource) or "keyId" (the draft).
	KeyIDParam string `yaml:"key_id_param"`
	// Header is where the parameters go: "signature" (or empty: a
	// Signature header; Cybersource) or "authorization"
	// ("Authorization: Signature ...").
	Header string `yaml:"header"`
	// DigestAlgorithm is the Digest header's algorithm when "digest" is
	// listed: "sha-256" (or empty) or "sha-512".
	DigestAlgorithm string `yaml:"digest_algorithm"`
	// EmptyBodyDigest keeps "digest" in the list for a request without a
	// body (a digest of nothing). By default "digest" is dropped from the
	// list and no Digest is sent when there is no body, as Cybersource
	// documents for GET.
	EmptyBodyDigest bool `yaml:"empty_body_digest"`
}

// HMACSpec configures a generic HMAC over a canonical string made of
// named parts. It is for processors with their own schemes; it is not a
// scripting language: parts are fixed names, joined by Separator.
type HMACSpec struct {
	// Hash is "sha256" or "sha512".
	Hash string `yaml:"hash"`
	// Parts, in order: "method", "host", "path", "path+query", "query",
	// "header:NAME", "body" (the raw bytes), "body-sha256-hex",
	// "body-sha256-base64", "body-sha512-hex", "body-sha512-base64",
	// "timestamp".
	Parts []string `yaml:"parts"`
	// Separator is put between parts; empty means none ("\n" in YAML
	// double quotes is a newline).
	Separator string `yaml:"separator"`
	// Header receives Prefix + the encoded MAC.
	Header string `yaml:"header"`
	// Prefix is written before the MAC, e.g. "HMAC-SHA256 " or "v1=".
	Prefix string `yaml:"prefix"`
	// Encoding is "hex" (lowercase) or "base64" (standard, padded).
	Encoding string `yaml:"encoding"`
	// TimestampHeader receives the timestamp the "timestamp" part signs;
	// required with that part, refused without it.
	TimestampHeader string `yaml:"timestamp_header"`
	// TimestampFormat is "unix" (seconds), "unix-ms", "rfc3339" (UTC,
	// seconds) or "http-date".
	TimestampFormat string `yaml:"timestamp_format"`
}

// Algorithms.
const (
	AlgHMACSHA256       = "hmac-sha256"
	AlgEd25519          = "ed25519"
	AlgECDSAP256SHA256  = "ecdsa-p256-sha256"
	defaultLabel        = "sig1"
	maxExpires          = 24 * time.Hour
	maxTextParam        = 256
	maxCredentialName   = 128
	maxSeparator        = 8
	maxPrefix           = 64
	maxComponents       = 32
	cavageAlgHmacSHA256 = "HmacSHA256"
	cavageAlgDraft      = "hmac-sha256"
)

// derivedComponents are the RFC 9421 derived components a request
// signature may cover.
var derivedComponents = map[string]bool{
	"@method": true, "@target-uri": true, "@authority": true, "@scheme": true,
	"@request-target": true, "@path": true, "@query": true,
}

// Validate checks a Spec as the allowlist parses it. methods are the
// entry's methods; nil means any. When any of them may carry a body (all
// but GET and HEAD), the signature must cover it: rfc9421 must cover
// content-digest, cavage must list digest, hmac must have a body part.
// Sign enforces the same at run time for every request that has a body.
func (s Spec) Validate(methods []string) error {
	bodies := mayCarryBody(methods)
	switch s.Scheme {
	case SchemeContentDigest, SchemeDigest:
		if s.Credential != "" {
			return specErr("credential", "the "+string(s.Scheme)+" scheme uses no key; remove it")
		}
		if s.SecretEncoding != "" {
			return specErr("secret_encoding", "the "+string(s.Scheme)+" scheme uses no key; remove it")
		}
		if err := s.onlyBlock("digest"); err != nil {
			return err
		}
		if s.Digest != nil {
			return validDigestAlgs("digest.algorithms", s.Digest.Algorithms)
		}
		return nil
	case SchemeRFC9421, SchemeCavage, SchemeHMAC:
	case "":
		return specErr("scheme", "is required (content-digest, digest, rfc9421, cavage or hmac)")
	default:
		return specErr("scheme", "must be one of content-digest, digest, rfc9421, cavage, hmac")
	}
	if err := validCredential(s.Credential); err != nil {
		return err
	}
	switch s.SecretEncoding {
	case "", "raw", "base64", "hex":
	default:
		return specErr("secret_encoding", "must be raw, base64 or hex")
	}
	switch s.Scheme {
	case SchemeRFC9421:
		if err := s.onlyBlock("rfc9421"); err != nil {
			return err
		}
		if s.RFC9421 == nil {
			return specErr("rfc9421", "is required for scheme rfc9421")
		}
		if s.SecretEncoding != "" && s.RFC9421.Algorithm != AlgHMACSHA256 {
			return specErr("secret_encoding", "applies only to a shared secret (hmac-sha256)")
		}
		return s.RFC9421.validate(bodies)
	case SchemeCavage:
		if err := s.onlyBlock("cavage"); err != nil {
			return err
		}
		if s.Cavage == nil {
			return specErr("cavage", "is required for scheme cavage")
		}
		return s.Cavage.validate(bodies)
	default:
		if err := s.onlyBlock("hmac"); err != nil {
			return err
		}
		if s.HMAC == nil {
			return specErr("hmac", "is required for scheme hmac")
		}
		return s.HMAC.validate(bodies)
	}
}

// onlyBlock refuses a block that belongs to another scheme: an auditor
// reading the entry must not see settings that have no effect.
func (s Spec) onlyBlock(want string) error {
	blocks := []struct {
		name string
		set  bool
	}{{"digest", s.Digest != nil}, {"rfc9421", s.RFC9421 != nil}, {"cavage", s.Cavage != nil}, {"hmac", s.HMAC != nil}}
	for _, b := range blocks {
		if b.set && b.name != want {
			return specErr(b.name, "does not apply to scheme "+string(s.Scheme)+"; remove it")
		}
	}
	return nil
}

func mayCarryBody(methods []string) bool {
	if len(methods) == 0 {
		return true
	}
	for _, m := range methods {
		if m != http.MethodGet && m != http.MethodHead {
			return true
		}
	}
	return false
}

func validCredential(name string) error {
	if name == "" {
		return specErr("credential", "is required: name the credential that holds the key")
	}
	if len(name) > maxCredentialName {
		return specErr("credential", "longer than "+strconv.Itoa(maxCredentialName)+" characters")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return specErr("credential", "may hold only A-Z, a-z, 0-9, '-', '_' and '.'")
		}
	}
	return nil
}

func validDigestAlgs(field string, algs []string) error {
	for i, a := range algs {
		f := field + "[" + strconv.Itoa(i) + "]"
		if _, ok := digestAlgs[a]; !ok {
			return specErr(f, "must be sha-256 or sha-512")
		}
		if slices.Index(algs, a) != i {
			return specErr(f, "is listed twice")
		}
	}
	return nil
}

func (r *RFC9421Spec) validate(bodies bool) error {
	switch r.Algorithm {
	case AlgHMACSHA256, AlgEd25519, AlgECDSAP256SHA256:
	case "":
		return specErr("rfc9421.algorithm", "is required (hmac-sha256, ed25519 or ecdsa-p256-sha256)")
	default:
		return specErr("rfc9421.algorithm", "must be hmac-sha256, ed25519 or ecdsa-p256-sha256")
	}
	if r.KeyID == "" {
		return specErr("rfc9421.key_id", "is required")
	}
	if !sfStringOK(r.KeyID) {
		return specErr("rfc9421.key_id", "must be 1-256 printable ASCII characters")
	}
	if r.Label != "" && !sfKeyOK(r.Label) {
		return specErr("rfc9421.label", "must start with a-z or '*' and hold only a-z, 0-9, '_', '-', '.' and '*'")
	}
	if r.Tag != "" && !sfStringOK(r.Tag) {
		return specErr("rfc9421.tag", "must be 1-256 printable ASCII characters")
	}
	if r.Expires < 0 || r.Expires > maxExpires || r.Expires%time.Second != 0 || (r.Expires > 0 && r.Expires < time.Second) {
		return specErr("rfc9421.expires", "must be whole seconds between 1s and 24h, or absent")
	}
	if len(r.Components) == 0 {
		return specErr("rfc9421.components", "is required: an empty list signs nothing of the request")
	}
	if len(r.Components) > maxComponents {
		return specErr("rfc9421.components", "more than "+strconv.Itoa(maxComponents))
	}
	for i, c := range r.Components {
		f := "rfc9421.components[" + strconv.Itoa(i) + "]"
		switch {
		case c == "@signature-params":
			return specErr(f, "@signature-params is always the last line; do not list it")
		case c == "@status":
			return specErr(f, "@status is for responses only")
		case c == "@query-param" || strings.ContainsAny(c, ";\"="):
			return specErr(f, "component parameters are not supported; cover @query or a whole header")
		case strings.HasPrefix(c, "@"):
			if !derivedComponents[c] {
				return specErr(f, "unknown derived component (use @method, @target-uri, @authority, @scheme, @request-target, @path or @query)")
			}
		case c == "signature" || c == "signature-input":
			return specErr(f, "a signature cannot cover its own header")
		case !fieldNameOK(c) || strings.ToLower(c) != c:
			return specErr(f, "must be a lowercase header name or a derived component")
		}
		if slices.Index(r.Components, c) != i {
			return specErr(f, "is listed twice")
		}
	}
	covered := slices.Contains(r.Components, "content-digest")
	if bodies && !covered {
		return specErr("rfc9421.components", "must cover content-digest: the entry's methods may carry a body, and the signature must cover it")
	}
	if len(r.ContentDigest) > 0 && !covered {
		return specErr("rfc9421.content_digest", "applies only when content-digest is covered")
	}
	return validDigestAlgs("rfc9421.content_digest", r.ContentDigest)
}

func (c *CavageSpec) validate(bodies bool) error {
	if c.KeyID == "" {
		return specErr("cavage.key_id", "is required")
	}
	if !sfStringOK(c.KeyID) || strings.ContainsAny(c.KeyID, "\"\\") {
		return specErr("cavage.key_id", "must be 1-256 printable ASCII characters without '\"' or '\\'")
	}
	switch c.Algorithm {
	case cavageAlgHmacSHA256, cavageAlgDraft:
	default:
		return specErr("cavage.algorithm", "must be HmacSHA256 or hmac-sha256")
	}
	switch c.KeyIDParam {
	case "", "keyid", "keyId":
	default:
		return specErr("cavage.key_id_param", "must be keyid or keyId")
	}
	switch c.Header {
	case "", "signature", "authorization":
	default:
		return specErr("cavage.header", "must be signature or authorization")
	}
	if len(c.Headers) == 0 {
		return specErr("cavage.headers", "is required")
	}
	if len(c.Headers) > maxComponents {
		return specErr("cavage.headers", "more than "+strconv.Itoa(maxComponents))
	}
	targets := 0
	for i, h := range c.Headers {
		f := "cavage.headers[" + strconv.Itoa(i) + "]"
		switch {
		case h == "request-target" || h == "(request-target)":
			targets++
			if targets > 1 {
				return specErr(f, "request-target is listed twice")
			}
		case h == "(created)" || h == "(expires)":
			return specErr(f, "(created) and (expires) are not supported; cover date")
		case h == "signature" || h == "authorization":
			return specErr(f, "a signature cannot cover its own header")
		case !fieldNameOK(h) || strings.ToLower(h) != h:
			return specErr(f, "must be a lowercase header name, request-target or (request-target)")
		}
		if slices.Index(c.Headers, h) != i {
			return specErr(f, "is listed twice")
		}
	}
	hasDigest := slices.Contains(c.Headers, "digest")
	if bodies && !hasDigest {
		return specErr("cavage.headers", "must list digest: the entry's methods may carry a body, and the signature must cover it")
	}
	switch c.DigestAlgorithm {
	case "", "sha-256", "sha-512":
	default:
		return specErr("cavage.digest_algorithm", "must be sha-256 or sha-512")
	}
	if (c.DigestAlgorithm != "" || c.EmptyBodyDigest) && !hasDigest {
		return specErr("cavage.headers", "digest_algorithm and empty_body_digest apply only when digest is listed")
	}
	return nil
}

// hmacParts are the fixed part names; "header:NAME" is checked apart.
var hmacParts = map[string]bool{
	"method": true, "host": true, "path": true, "path+query": true, "query": true,
	"body": true, "body-sha256-hex": true, "body-sha256-base64": true,
	"body-sha512-hex": true, "body-sha512-base64": true, "timestamp": true,
}

// reservedOutput are headers the generic scheme may not write: the
// transport owns them, or writing them would change what was signed.
var reservedOutput = map[string]bool{
	"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true,
	"Te": true, "Trailer": true, "Upgrade": true, "Content-Type": true, "Content-Encoding": true,
}

func (h *HMACSpec) validate(bodies bool) error {
	switch h.Hash {
	case "sha256", "sha512":
	default:
		return specErr("hmac.hash", "must be sha256 or sha512")
	}
	switch h.Encoding {
	case "hex", "base64":
	default:
		return specErr("hmac.encoding", "must be hex or base64")
	}
	if !fieldNameOK(h.Header) || reservedOutput[http.CanonicalHeaderKey(h.Header)] {
		return specErr("hmac.header", "must be a header name the gateway may set (not Host, Content-Length, Content-Type, hop-by-hop)")
	}
	if len(h.Separator) > maxSeparator || !textOK(h.Separator, true) {
		return specErr("hmac.separator", "must be at most 8 printable ASCII characters or newlines")
	}
	if len(h.Prefix) > maxPrefix || !textOK(h.Prefix, false) {
		return specErr("hmac.prefix", "must be at most 64 printable ASCII characters")
	}
	if len(h.Parts) == 0 {
		return specErr("hmac.parts", "is required")
	}
	if len(h.Parts) > maxComponents {
		return specErr("hmac.parts", "more than "+strconv.Itoa(maxComponents))
	}
	body, stamp := false, false
	for i, p := range h.Parts {
		f := "hmac.parts[" + strconv.Itoa(i) + "]"
		if name, ok := strings.CutPrefix(p, "header:"); ok {
			if !fieldNameOK(name) {
				return specErr(f, "header: must be followed by a header name")
			}
			if strings.EqualFold(name, h.Header) {
				return specErr(f, "the MAC cannot cover its own header")
			}
		} else if !hmacParts[p] {
			return specErr(f, "unknown part (method, host, path, path+query, query, header:NAME, body, body-sha256-hex, body-sha256-base64, body-sha512-hex, body-sha512-base64, timestamp)")
		}
		if slices.Index(h.Parts, p) != i {
			return specErr(f, "is listed twice")
		}
		body = body || strings.HasPrefix(p, "body")
		stamp = stamp || p == "timestamp"
	}
	if bodies && !body {
		return specErr("hmac.parts", "must include a body part: the entry's methods may carry a body, and the MAC must cover it")
	}
	if !stamp {
		if h.TimestampHeader != "" || h.TimestampFormat != "" {
			return specErr("hmac.timestamp_header", "applies only with a timestamp part (an unsigned timestamp proves nothing)")
		}
		return nil
	}
	if !fieldNameOK(h.TimestampHeader) || reservedOutput[http.CanonicalHeaderKey(h.TimestampHeader)] || strings.EqualFold(h.TimestampHeader, h.Header) {
		return specErr("hmac.timestamp_header", "is required with a timestamp part: a header name the gateway may set, other than hmac.header")
	}
	switch h.TimestampFormat {
	case "unix", "unix-ms", "rfc3339", "http-date":
	default:
		return specErr("hmac.timestamp_format", "must be unix, unix-ms, rfc3339 or http-date")
	}
	return nil
}

// fieldNameOK reports whether s is an HTTP field name (RFC 9110 token).
func fieldNameOK(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// sfStringOK reports whether s can be a Structured Fields String of at
// most maxTextParam characters: printable ASCII and space.
func sfStringOK(s string) bool {
	return s != "" && len(s) <= maxTextParam && textOK(s, false)
}

// textOK reports whether s is printable ASCII (and, when newline is set,
// LF).
func textOK(s string, newline bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 0x20 || c > 0x7e) && !(newline && c == '\n') {
			return false
		}
	}
	return true
}

// fieldTextOK reports whether s is printable ASCII, tabs allowed (a field
// value may hold HTAB inside; RFC 9110 §5.5), and LF when newline is set.
func fieldTextOK(s string, newline bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 0x20 || c > 0x7e) && c != '\t' && !(newline && c == '\n') {
			return false
		}
	}
	return true
}

// sfKeyOK reports whether s is a Structured Fields Dictionary key.
func sfKeyOK(s string) bool {
	if s == "" || len(s) > 64 || !(s[0] >= 'a' && s[0] <= 'z' || s[0] == '*') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '*') {
			return false
		}
	}
	return true
}
