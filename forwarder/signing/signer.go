package signing

import (
	"crypto"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Signer signs outgoing requests under one Spec with one Key. It is
// immutable and safe for concurrent use. Build one per allowlist entry
// and credential version, with New.
type Signer struct {
	spec   Spec
	macKey []byte        // HMAC schemes, decoded per SecretEncoding
	priv   crypto.Signer // ed25519 and ecdsa-p256-sha256
	rand   io.Reader     // nonces and ECDSA; crypto/rand unless a test sets it
}

// New checks spec and key and returns a Signer. The method-dependent rule
// of Validate (a body must be covered) is enforced by Sign on each request
// instead, since New does not know the entry's methods. The Key is copied;
// the caller may wipe its own secret afterwards.
func New(spec Spec, key Key) (*Signer, error) {
	spec = spec.clone()
	if err := spec.validate(false); err != nil {
		return nil, err
	}
	s := &Signer{spec: spec, rand: rand.Reader}
	var err error
	switch alg := spec.algorithm(); alg {
	case "":
		// The digest schemes use no key.
	case AlgHMACSHA256, "sha256", "sha512":
		s.macKey, err = macKey(key, spec.SecretEncoding)
	default:
		if key.priv == nil {
			return nil, specErr("credential", "the algorithm "+alg+" needs a private key, and the credential is not one")
		}
		if _, err = publicOf(key, alg); err == nil {
			s.priv = key.priv
		}
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Spec returns a copy of the spec the Signer was built with.
func (s *Signer) Spec() Spec { return s.spec.clone() }

// Sign signs req, whose body will be exactly body, at time now. It sets
// the headers the scheme defines: Date (an HTTP-date, only when the scheme
// covers it and the request has none), Content-Digest or Digest,
// Signature-Input and Signature, the cavage Signature (or Authorization),
// or the generic MAC header and its timestamp. Any header of those names
// already in req, under any spelling, is replaced. Nothing else in req is
// changed, body is only read, and on error req is left as it was.
//
// The signature is made over what goes on the wire: req.Method (empty
// means GET), req.Host (or req.URL.Host when empty) as the Host header,
// req.URL.RequestURI() as the request target, req.URL.Scheme, and
// req.ContentLength, which must equal len(body) when either is non-zero.
// A request with a body is refused when the spec does not cover the body.
func (s *Signer) Sign(req *http.Request, body []byte, now time.Time) error {
	if req == nil || req.URL == nil {
		return newErr(CodeComponentMissing, "the request has no URL")
	}
	if (req.ContentLength != 0 || len(body) != 0) && req.ContentLength != int64(len(body)) {
		return newErr(CodeBodyMismatch, "the request's ContentLength is not the length of the body being signed")
	}
	if len(body) > 0 && !s.spec.coversBody() {
		// Validate demands this for entries whose methods carry a body;
		// this catches a body on any other method too.
		return newErr(CodeBodyMismatch, "the request has a body and the "+string(s.spec.Scheme)+" signature does not cover it")
	}
	m := outgoing(req)
	if err := s.signMessage(m, body, now); err != nil {
		return err
	}
	if req.Header == nil {
		req.Header = http.Header{}
	}
	for _, name := range m.set {
		deleteFold(req.Header, name)
		req.Header[name] = m.header[name]
	}
	return nil
}

func (s *Signer) signMessage(m *message, body []byte, now time.Time) error {
	switch s.spec.Scheme {
	case SchemeContentDigest:
		m.setHeader("Content-Digest", contentDigest(s.spec.digestAlgs(), body))
		return nil
	case SchemeDigest:
		m.setHeader("Digest", legacyDigest(s.spec.digestAlgs(), body))
		return nil
	case SchemeRFC9421:
		return s.signRFC9421(m, body, now)
	case SchemeCavage:
		return s.signCavage(m, body, now)
	case SchemeHMAC:
		return s.signHMAC(m, body, now)
	}
	return specErr("scheme", "unknown")
}

const signerMask = "signing.Signer{[masked]}"

// String prints the scheme only.
func (s *Signer) String() string { return "signing.Signer{" + string(s.spec.Scheme) + "}" }

// GoString prints the scheme only.
func (s *Signer) GoString() string { return s.String() }

// Format prints the scheme only, for every verb.
func (s *Signer) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }

// LogValue prints the scheme only.
func (s *Signer) LogValue() slog.Value { return slog.StringValue(s.String()) }

// DefaultWindow is how far a Verifier lets created, Date or a timestamp
// lie from its clock, either way, when Window is zero.
const DefaultWindow = 5 * time.Minute

// Verifier checks signatures made under a Spec, as a processor would. It
// exists for tests and for the conformance test processors that stand in
// for real ones; the gateway itself never verifies. It takes the Spec as
// the processor's policy: every component or header the spec covers must
// be covered, and the key id, algorithm and tag must match.
type Verifier struct {
	spec   Spec
	macKey []byte
	pub    crypto.PublicKey
	// Window bounds the age and the future skew of created, expires,
	// Date and the generic timestamp; zero means DefaultWindow.
	Window time.Duration
}

// NewVerifier returns a Verifier for spec with key: the shared secret for
// HMAC schemes (decoded per SecretEncoding), or a public (or private) key.
func NewVerifier(spec Spec, key Key) (*Verifier, error) {
	spec = spec.clone()
	if err := spec.validate(false); err != nil {
		return nil, err
	}
	v := &Verifier{spec: spec}
	var err error
	switch alg := spec.algorithm(); alg {
	case "":
	case AlgHMACSHA256, "sha256", "sha512":
		v.macKey, err = macKey(key, spec.SecretEncoding)
	default:
		v.pub, err = publicOf(key, alg)
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}

// Verify checks req as a server received it (req.RequestURI, req.Host,
// req.TLS and req.ContentLength are read) with its full body, at time
// now. A nil error means the signature or digest is valid and meets the
// spec.
func (v *Verifier) Verify(req *http.Request, body []byte, now time.Time) error {
	if req == nil || req.URL == nil {
		return newErr(CodeSignatureMissing, "no request")
	}
	m := incoming(req)
	var err error
	switch v.spec.Scheme {
	case SchemeContentDigest:
		err = verifyContentDigest(m.header, body, v.spec.digestAlgs())
	case SchemeDigest:
		err = verifyLegacyDigest(m.header, body, v.spec.digestAlgs())
	case SchemeRFC9421:
		err = v.verifyRFC9421(m, body, now)
	case SchemeCavage:
		err = v.verifyCavage(m, body, now)
	case SchemeHMAC:
		err = v.verifyHMAC(m, body, now)
	default:
		return specErr("scheme", "unknown")
	}
	// Building the base can fail with a signing code; to a verifier a
	// covered component that is absent or unusable means the signature
	// cannot hold.
	if e, ok := err.(*Error); ok {
		switch e.Code {
		case CodeComponentMissing:
			e.Code = CodeSignatureInvalid
		case CodeComponentInvalid:
			e.Code = CodeSignatureMalformed
		}
	}
	return err
}

// String prints the scheme only.
func (v *Verifier) String() string { return "signing.Verifier{" + string(v.spec.Scheme) + "}" }

// GoString prints the scheme only.
func (v *Verifier) GoString() string { return v.String() }

// Format prints the scheme only, for every verb.
func (v *Verifier) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, v.String()) }

// LogValue prints the scheme only.
func (v *Verifier) LogValue() slog.Value { return slog.StringValue(v.String()) }

func (v *Verifier) window() time.Duration {
	if v.Window > 0 {
		return v.Window
	}
	return DefaultWindow
}

// fresh checks that t lies within the window around now.
func (v *Verifier) fresh(t, now time.Time, what string) error {
	w := v.window()
	if t.Before(now.Add(-w)) || t.After(now.Add(w)) {
		return newErr(CodeSignatureStale, what+" is outside the verifier's window")
	}
	return nil
}

// validate is Validate with the body rule decided by the caller: New and
// NewVerifier do not know the entry's methods, so Sign and Verify apply
// that rule to each request instead.
func (s Spec) validate(bodies bool) error {
	if bodies {
		return s.Validate(nil)
	}
	return s.Validate([]string{http.MethodGet})
}

// algorithm names the key algorithm: "" for the digest schemes.
func (s Spec) algorithm() string {
	switch s.Scheme {
	case SchemeRFC9421:
		return s.RFC9421.Algorithm
	case SchemeCavage:
		return AlgHMACSHA256
	case SchemeHMAC:
		return s.HMAC.Hash
	}
	return ""
}

// coversBody reports whether a signature under s covers a non-empty body.
func (s Spec) coversBody() bool {
	switch s.Scheme {
	case SchemeRFC9421:
		return slices.Contains(s.RFC9421.Components, "content-digest")
	case SchemeCavage:
		return slices.Contains(s.Cavage.Headers, "digest")
	case SchemeHMAC:
		return s.HMAC.coversBody()
	}
	return true // the digest schemes are nothing but the body's digest
}

func (s Spec) digestAlgs() []string {
	if s.Digest == nil || len(s.Digest.Algorithms) == 0 {
		return []string{"sha-256"}
	}
	return s.Digest.Algorithms
}

// clone copies the spec deeply, so that a caller changing its slices
// afterwards cannot change what a Signer signs.
func (s Spec) clone() Spec {
	if s.Digest != nil {
		d := *s.Digest
		d.Algorithms = slices.Clone(d.Algorithms)
		s.Digest = &d
	}
	if s.RFC9421 != nil {
		r := *s.RFC9421
		r.Components = slices.Clone(r.Components)
		r.ContentDigest = slices.Clone(r.ContentDigest)
		s.RFC9421 = &r
	}
	if s.Cavage != nil {
		c := *s.Cavage
		c.Headers = slices.Clone(c.Headers)
		s.Cavage = &c
	}
	if s.HMAC != nil {
		h := *s.HMAC
		h.Parts = slices.Clone(h.Parts)
		s.HMAC = &h
	}
	return s
}

// message is the view of a request that signature bases are built from:
// what goes on the wire for an outgoing request, what came off it for a
// received one. Its header is a copy for an outgoing request, so that a
// failed Sign leaves the request untouched.
type message struct {
	method        string
	scheme        string // lowercase
	authority     string // the Host header as sent or received
	requestURI    string // the request target as sent or received
	header        http.Header
	contentLength int64
	status        int      // responses only (tests of RFC 9421 B.2.4)
	set           []string // canonical names of the headers Sign set
}

func outgoing(req *http.Request) *message {
	m := &message{
		method:        req.Method,
		scheme:        strings.ToLower(req.URL.Scheme),
		authority:     req.Host,
		requestURI:    req.URL.RequestURI(),
		header:        req.Header.Clone(),
		contentLength: req.ContentLength,
	}
	if m.method == "" {
		m.method = http.MethodGet
	}
	if m.authority == "" {
		m.authority = req.URL.Host
	}
	if m.header == nil {
		m.header = http.Header{}
	}
	return m
}

func incoming(req *http.Request) *message {
	m := &message{
		method:        req.Method,
		scheme:        "http",
		authority:     req.Host,
		requestURI:    req.RequestURI,
		header:        req.Header,
		contentLength: req.ContentLength,
	}
	if req.TLS != nil {
		m.scheme = "https"
	}
	if m.requestURI == "" {
		m.requestURI = req.URL.RequestURI()
	}
	if m.header == nil {
		m.header = http.Header{}
	}
	return m
}

// setHeader replaces every spelling of name with one canonical field.
func (m *message) setHeader(name, value string) {
	name = http.CanonicalHeaderKey(name)
	deleteFold(m.header, name)
	m.header[name] = []string{value}
	if !slices.Contains(m.set, name) {
		m.set = append(m.set, name)
	}
}

// ensureDate sets Date when the request has none.
func (m *message) ensureDate(now time.Time) error {
	if _, ok, err := fieldValue(m.header, "date"); err != nil || ok {
		return err
	}
	m.setHeader("Date", now.UTC().Format(http.TimeFormat))
	return nil
}

// path and query split the request target at its first '?'.
func (m *message) path() string {
	p, _, _ := strings.Cut(m.requestURI, "?")
	if p == "" {
		return "/"
	}
	return p
}

func (m *message) query() (string, bool) {
	_, q, ok := strings.Cut(m.requestURI, "?")
	return q, ok
}

// headerValue is the value of a covered header as it goes on the wire.
// Host and Content-Length are not in an outgoing request's header map
// (net/http writes them from Host and ContentLength), so they are taken
// from there, for a received request too.
func (m *message) headerValue(name string) (string, error) {
	var v string
	var ok bool
	var err error
	switch strings.ToLower(name) {
	case "host":
		v, ok = m.authority, m.authority != ""
	case "content-length":
		if m.contentLength > 0 {
			v, ok = strconv.FormatInt(m.contentLength, 10), true
		}
	default:
		v, ok, err = fieldValue(m.header, name)
	}
	if err != nil {
		return "", err
	}
	if !ok {
		return "", newErr(CodeComponentMissing, "the request has no "+strings.ToLower(name)+" header, which the signature covers")
	}
	return v, nil
}

// fieldValue combines a field's values as RFC 9421 §2.1 and
// draft-cavage §2.3 both do: each value trimmed of surrounding spaces and
// tabs, joined by ", ". A field present under two spellings of its name is
// refused: the order they go on the wire in is not ours to know.
func fieldValue(h http.Header, name string) (string, bool, error) {
	var vals []string
	found := ""
	for k, vs := range h {
		if !strings.EqualFold(k, name) || len(vs) == 0 {
			continue
		}
		if found != "" {
			return "", false, newErr(CodeComponentInvalid, "the "+strings.ToLower(name)+" header is present under two spellings of its name")
		}
		found, vals = k, vs
	}
	if found == "" {
		return "", false, nil
	}
	var b strings.Builder
	for i, v := range vals {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strings.Trim(v, " \t"))
	}
	out := b.String()
	if !fieldTextOK(out, false) {
		return "", false, newErr(CodeComponentInvalid, "the "+strings.ToLower(name)+" header holds a control or non-ASCII character")
	}
	return out, true, nil
}

func deleteFold(h http.Header, name string) {
	for k := range h {
		if strings.EqualFold(k, name) {
			delete(h, k)
		}
	}
}
