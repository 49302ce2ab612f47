// Request signing in the forward path: after rendering, before the intent
// record, over the request exactly as exchange sends it.

package forwarder

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/credentials"
	"github.com/cardgate/cardgate/forwarder/signing"
)

// outboundRequest builds the request exchange sends: the method, the
// normalized URL, Host, the headers and the body. Signing signs this very
// value (its Host, RequestURI, ContentLength and headers), so what is
// signed and what goes on the wire cannot drift apart.
func outboundRequest(v *validated, hdr http.Header, body *pooledBody) *http.Request {
	req := &http.Request{
		Method:     v.method,
		URL:        v.target.URL(),
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     hdr,
		Host:       v.target.hostPort(),
	}
	if body != nil {
		req.Body = body
		req.ContentLength = int64(body.len())
		// No GetBody: the transport may then never replay a request whose
		// body it has started to send, so a card is never sent twice by us.
	} else {
		// Not http.NoBody: net/http treats a request with a nil or NoBody
		// body as replayable, and silently resends it when a pooled
		// connection breaks after the request was written, which would send
		// a card in a header twice. An empty body of our own type is not
		// replayable. For GET-like methods the transport finds it empty and
		// sends no body; for POST, PUT and PATCH it sends an empty chunked
		// body.
		req.Body = emptyBody{}
	}
	return req
}

// signedHeaders are the headers a signing entry's signature sets: the
// caller may not send them (checkCredentialGrants refuses them), so the
// gateway never silently replaces what a caller wrote. Date is among
// them whatever the scheme: the gateway sets it when a scheme covers it.
func signedHeaders(d *allowlist.Destination) map[string]bool {
	set := map[string]bool{"Date": true, "Digest": true, "Content-Digest": true, "Signature": true, "Signature-Input": true}
	sp := d.Signing
	switch {
	case sp == nil:
		return nil
	case sp.Cavage != nil && sp.Cavage.Header == "authorization":
		set["Authorization"] = true
	case sp.HMAC != nil:
		set[http.CanonicalHeaderKey(sp.HMAC.Header)] = true
		if sp.HMAC.TimestampHeader != "" {
			set[http.CanonicalHeaderKey(sp.HMAC.TimestampHeader)] = true
		}
	}
	return set
}

// coveredHeaders are the header fields a signature under sp covers, by
// canonical name: the cavage headers list, RFC 9421's non-derived
// components and the generic HMAC's header: parts. Host and the headers
// the gateway sets are among them or in signedHeaders.
func coveredHeaders(sp *signing.Spec) map[string]bool {
	out := map[string]bool{}
	var names []string
	switch {
	case sp == nil:
	case sp.Cavage != nil:
		names = sp.Cavage.Headers
	case sp.RFC9421 != nil:
		names = sp.RFC9421.Components
	case sp.HMAC != nil:
		for _, p := range sp.HMAC.Parts {
			if name, ok := strings.CutPrefix(p, "header:"); ok {
				names = append(names, name)
			}
		}
	}
	for _, n := range names {
		if !strings.HasPrefix(n, "@") && !strings.HasPrefix(n, "(") && n != "request-target" {
			out[http.CanonicalHeaderKey(n)] = true
		}
	}
	return out
}

// signerCache keeps one Signer per (allowlist document, entry), rebuilt
// when the credential's value changes (a reload or a new Vault version):
// building one decodes the key, which is not work for every forward.
type signerCache struct {
	mu      sync.Mutex
	sha     string // the allowlist document the signers belong to
	signers map[string]*cachedSigner
}

type cachedSigner struct {
	key    credentials.Secret // the credential it was built from; zero for the digest schemes
	signer *signing.Signer
}

// get returns the entry's Signer for credential value key (zero when the
// scheme uses none), building it when the cache has none for that value.
func (c *signerCache) get(sha string, d *allowlist.Destination, key credentials.Secret) (*signing.Signer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sha != sha || c.signers == nil {
		// A new document may change any entry's block; drop them all.
		c.sha, c.signers = sha, map[string]*cachedSigner{}
	}
	if cs := c.signers[d.ID]; cs != nil && (key.IsZero() && cs.key.IsZero() || cs.key.Equal(key)) {
		return cs.signer, nil
	}
	s, err := newSigner(d.Signing, key)
	if err != nil {
		return nil, err
	}
	c.signers[d.ID] = &cachedSigner{key: key, signer: s}
	return s, nil
}

// newSigner builds a Signer from the entry's spec and the credential: a
// private-key credential signs through its crypto.Signer, anything else
// is a shared secret (decoded per the spec's secret_encoding).
func newSigner(sp *signing.Spec, key credentials.Secret) (*signing.Signer, error) {
	if key.IsZero() {
		return signing.New(*sp, signing.Key{})
	}
	switch key.Kind() {
	case credentials.KindEd25519PrivateKey, credentials.KindECDSAP256PrivateKey:
		priv, err := key.Signer()
		if err != nil {
			return nil, err
		}
		return signing.New(*sp, signing.PrivateKey(priv))
	}
	b := key.Reveal()
	defer clear(b)
	return signing.New(*sp, signing.SecretKey(b)) // SecretKey copies b
}

// sign signs the rendered request when the entry declares signing. The
// headers the signature sets are written into hdr, which exchange sends.
// A failure is signing_failed and not_sent; the signing package's code
// goes to the log, its texts (and a key backend's) do not.
func (f *Forwarder) sign(sha string, d *allowlist.Destination, v *validated, set *secretSet, hdr http.Header, body *pooledBody) *Error {
	if d.Signing == nil {
		return nil
	}
	var key credentials.Secret
	if c := d.SigningCredential(); c != "" {
		if set == nil || set.values[c].IsZero() {
			return notSent(CodeInternal, "signing credential not loaded for this forward")
		}
		key = set.values[c]
	}
	s, err := f.signers.get(sha, d, key)
	if err != nil {
		return signingError(err)
	}
	var b []byte
	if body != nil {
		b = *body.buf
	}
	if err := s.Sign(outboundRequest(v, hdr, body), b, f.now()); err != nil {
		return signingError(err)
	}
	set.addSignedMasks(d, hdr, b)
	return nil
}

// addSignedMasks masks, in the answer, what signing this request put on
// the wire or into a signature base: the values of the headers the
// signature set (but Date and a timestamp, which are no secret) and the
// body's SHA-256 and SHA-512. A digest is a hash of a body that holds the
// card: a caller who knows the template, the card's brand and its last
// four digits could search the few digits left offline. A signature lets
// the caller replay the request around the gateway and its audit. A
// careless processor that echoes the request must hand neither back.
func (s *secretSet) addSignedMasks(d *allowlist.Destination, hdr http.Header, body []byte) {
	if s == nil {
		return
	}
	skip := map[string]bool{"Date": true}
	if d.Signing.HMAC != nil && d.Signing.HMAC.TimestampHeader != "" {
		skip[http.CanonicalHeaderKey(d.Signing.HMAC.TimestampHeader)] = true
	}
	for name := range signedHeaders(d) {
		if skip[name] {
			continue
		}
		mask := []byte("[" + strings.ToLower(name) + "]")
		for _, v := range hdr[name] {
			s.addPattern([]byte(v), mask)
			// Each base64 or hex token of the value (a digest, a
			// signature), alone and decoded into the other spellings.
			for _, tok := range strings.FieldsFunc(v, func(r rune) bool { return strings.ContainsRune(" \t,;:=\"()", r) }) {
				if len(tok) < minSignedToken {
					continue
				}
				s.addPattern([]byte(tok), mask)
				if raw, err := hex.DecodeString(tok); err == nil {
					s.addDigestMasks(raw, mask)
				} else if raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(tok, "=")); err == nil {
					s.addDigestMasks(raw, mask)
				} else if raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(tok, "=")); err == nil {
					s.addDigestMasks(raw, mask)
				}
			}
		}
	}
	if len(body) > 0 {
		mask := []byte("[body-digest]")
		sum256, sum512 := sha256.Sum256(body), sha512.Sum512(body)
		s.addDigestMasks(sum256[:], mask)
		s.addDigestMasks(sum512[:], mask)
	}
	slices.SortStableFunc(s.masks, func(a, b secretMask) int { return len(b.pattern) - len(a.pattern) })
}

// minSignedToken is the shortest token of a signed header's value that is
// masked on its own: a SHA-256 digest is 43 base64 characters, while a
// key id or an algorithm name is no secret.
const minSignedToken = 32

// addDigestMasks masks raw, a digest or a signature, in hex and base64.
func (s *secretSet) addDigestMasks(raw, mask []byte) {
	for _, p := range []string{
		hex.EncodeToString(raw), strings.ToUpper(hex.EncodeToString(raw)),
		base64.StdEncoding.EncodeToString(raw), base64.RawStdEncoding.EncodeToString(raw),
		base64.URLEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw),
	} {
		s.addPattern([]byte(p), mask)
	}
}

// addPattern adds one exact byte string to mask, once. The caller sorts
// s.masks longest first when it is done adding.
func (s *secretSet) addPattern(p, mask []byte) {
	if len(p) == 0 || slices.ContainsFunc(s.masks, func(m secretMask) bool { return string(m.pattern) == string(p) }) {
		return
	}
	s.masks = append(s.masks, secretMask{pattern: p, mask: mask})
}

// signingCode is the cause of a signing_failed error: the signing
// package's stable code and nothing else, so that no detail or key
// backend text reaches the log.
type signingCode string

func (c signingCode) Error() string { return "signing: " + string(c) }

func signingError(err error) *Error {
	code := "signing_error"
	var coded interface{ ErrorCode() string }
	var ce *credentials.Error
	switch {
	case errors.As(err, &coded):
		code = coded.ErrorCode()
	case errors.As(err, &ce):
		code = "credential_" + string(ce.Code)
	}
	return newError(CodeSigningFailed, NotSent, "the request could not be signed as the destination's allowlist entry requires ("+code+"); nothing was sent", signingCode(code))
}
