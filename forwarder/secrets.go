// Processor credentials in the forward path: the {{secret.NAME}}
// placeholder, the entry's grant, fetching the values at the last moment,
// and masking them in whatever the processor sends back.

package forwarder

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/credentials"
)

// Error codes of the credential and signing steps. They are API, like
// those in errors.go.
const (
	// CodeCredentialNotAllowed: the template uses a credential the entry
	// does not grant (its credentials list), or one that may not be
	// written into a header (a signing key).
	CodeCredentialNotAllowed = "credential_not_allowed"
	// CodeCredentialUnavailable: the gateway holds no usable value for a
	// credential the forward needs (not configured, never loaded).
	CodeCredentialUnavailable = "credential_unavailable"
	// CodeSigningFailed: the request could not be signed as the entry
	// declares. The signing package's code is in the server log.
	CodeSigningFailed = "signing_failed"
)

// Credentials hands out the gateway's processor credentials by name.
// *credentials.Store implements it. Get must return an error, never a
// zero Secret, for a name it cannot serve.
type Credentials interface {
	Get(name string) (credentials.Secret, error)
}

// secretPrefix starts a credential placeholder: {{secret.NAME}} or
// {{secret.NAME | base64}} (the ref namespace nsSecret, template_refs.go).
const secretPrefix = "secret."

// secretRef is one {{secret.NAME}} placeholder's value request.
type secretRef struct {
	name   string
	base64 bool // "| base64": standard base64 of the value, for Basic auth
}

// addSecretNames adds the credentials the placeholders use to names,
// sorted and unique: validated.secrets.
func addSecretNames(names []string, phs []placeholder) []string {
	for _, ph := range phs {
		if ph.ref.ns == nsSecret && !slices.Contains(names, ph.ref.name) {
			names = append(names, ph.ref.name)
		}
	}
	slices.Sort(names)
	return names
}

// withSecrets adds the forward's credentials to the card's values: a
// secret reference is answered from the set, every other one by the
// cards. A dry run's maskedValues shows "[secret.NAME]" instead, so a
// caller can never read a credential.
type withSecrets struct {
	fieldValues
	set *secretSet
}

func (w withSecrets) value(r ref) (string, *Error) {
	if r.ns != nsSecret {
		return w.fieldValues.value(r)
	}
	return w.secretValue(secretRef{name: r.name, base64: r.filter == filterBase64})
}

func (w withSecrets) secretValue(r secretRef) (string, *Error) {
	if w.set == nil {
		return "", notSent(CodeInternal, "credential not loaded for this forward")
	}
	s, ok := w.set.values[r.name]
	if !ok {
		// loadSecrets fetched every name validate found; a miss is a bug.
		return "", notSent(CodeInternal, "credential not loaded for this forward")
	}
	b := s.Reveal()
	defer clear(b)
	if r.base64 {
		return base64.StdEncoding.EncodeToString(b), nil
	}
	return string(b), nil
}

// checkCredentialGrants is the step after the allowlist match: every
// credential a placeholder names must be in the entry's credentials list
// and stand in a header its credential_headers lists
// (credential_not_allowed otherwise, before anything is read), the
// entry's signing key is never written into a header, and on a signing
// entry the caller may not send a header the signature sets (refused, not
// silently replaced, so nothing the caller sent is changed behind its
// back).
func checkCredentialGrants(d *allowlist.Destination, v *validated) *Error {
	if e := checkSecretForm(v); e != nil {
		return e
	}
	for _, name := range v.secrets {
		if !d.GrantsCredential(name) {
			return notSent(CodeCredentialNotAllowed, "credential "+name+" is not granted to destination "+d.ID+" (its allowlist entry's credentials list)")
		}
		if name == d.SigningCredential() {
			return notSent(CodeCredentialNotAllowed, "credential "+name+" signs this destination's requests; it is never written into a header")
		}
	}
	if e := checkSecretHeaders(d, v); e != nil {
		return e
	}
	if d.Signing == nil {
		return nil
	}
	set := signedHeaders(d)
	covered := coveredHeaders(d.Signing)
	for _, h := range v.headers {
		if set[h.name] {
			return notSent(CodeInvalidRequest, "headers: "+h.name+" is set by the gateway when it signs this destination's requests; remove it")
		}
		// CGI and WSGI servers read '_' as '-': a twin of a signed
		// header would stand unsigned next to it (sign.go).
		if twin := http.CanonicalHeaderKey(strings.ReplaceAll(h.name, "_", "-")); twin != h.name && (set[twin] || covered[twin]) {
			return notSent(CodeInvalidRequest, "headers: "+h.name+" reads as "+twin+" to some servers, which this destination's signature covers; remove it")
		}
	}
	return nil
}

// checkSecretHeaders refuses a credential placeholder in a header the
// entry does not list in credential_headers: a processor may show a
// header's value to people (Stripe shows Idempotency-Key in its
// dashboard and webhook events) or echo it, so the auditor approves each
// header a secret may go in, as well as the destination. The name must
// be a listed one exactly (canonical form): an underscore twin such as
// X_Api_Key reads as X-Api-Key to CGI and WSGI servers but is dropped or
// kept apart by others, so it is refused, not read as the listed header.
func checkSecretHeaders(d *allowlist.Destination, v *validated) *Error {
	for _, h := range v.headers {
		if !hasSecretPlaceholder(h.values) || d.AllowsCredentialHeader(h.name) {
			continue
		}
		msg := "header " + h.name + ": destination " + d.ID + " does not allow a {{secret.…}} placeholder in this header (its allowlist entry's credential_headers list)"
		if twin := http.CanonicalHeaderKey(strings.ReplaceAll(h.name, "_", "-")); twin != h.name && d.AllowsCredentialHeader(twin) {
			msg = "header " + h.name + ": a {{secret.…}} placeholder may go only in " + twin + ", spelt with '-' as the allowlist entry lists it"
		}
		return notSent(CodeCredentialNotAllowed, msg)
	}
	return nil
}

// hasSecretPlaceholder reports whether any of a header's values holds a
// {{secret.NAME}} placeholder.
func hasSecretPlaceholder(values []slot) bool {
	for _, sl := range values {
		for _, ph := range sl.phs {
			if ph.ref.ns == nsSecret {
				return true
			}
		}
	}
	return false
}

// checkSecretForm refuses a header value that holds a credential other
// than alone or after one auth-scheme word ("Basic ", "Bearer "). Inside
// other text, a URL above all, a credential would go wherever a processor
// sends that text: a callback it fetches, a page or a report it shows.
func checkSecretForm(v *validated) *Error {
	for _, h := range v.headers {
		for _, sl := range h.values {
			secrets := 0
			for _, ph := range sl.phs {
				if ph.ref.ns == nsSecret {
					secrets++
				}
			}
			if secrets == 0 {
				continue
			}
			ph := sl.phs[0]
			if secrets > 1 || len(sl.phs) > 1 || ph.end != len(sl.text) || !authSchemePrefix(sl.text[:ph.start]) {
				return notSent(CodeInvalidTemplate, "header "+h.name+": a {{secret.…}} placeholder must be the whole value, or follow one auth-scheme word and a space (\"Basic \", \"Bearer \")")
			}
		}
	}
	return nil
}

// authSchemePrefix reports whether p is "" or one auth-scheme token (RFC
// 9110 §11.1) followed by one space.
func authSchemePrefix(p string) bool {
	if p == "" {
		return true
	}
	word, ok := strings.CutSuffix(p, " ")
	if !ok || word == "" {
		return false
	}
	for i := 0; i < len(word); i++ {
		c := word[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// secretSet is what one forward holds of the gateway's credentials: the
// values its placeholders and its signature use, fetched once before the
// card is read, and the byte strings masked in the processor's answer.
type secretSet struct {
	values map[string]credentials.Secret
	masks  []secretMask
}

// secretMask is one spelling of one credential's value.
type secretMask struct {
	pattern []byte
	mask    []byte // "[secret.NAME]"
}

// loadSecrets fetches every credential the forward needs: the names its
// header placeholders use and the entry's signing credential. It runs
// before the card is read, so that a credential the gateway cannot serve
// costs the card nothing (a consumed CVC above all).
func (f *Forwarder) loadSecrets(d *allowlist.Destination, v *validated) (*secretSet, *Error) {
	set := &secretSet{values: map[string]credentials.Secret{}}
	names := slices.Clone(v.secrets)
	if c := d.SigningCredential(); c != "" {
		names = append(names, c)
	}
	for _, name := range names {
		if _, done := set.values[name]; done {
			continue
		}
		if f.creds == nil {
			return nil, newError(CodeCredentialUnavailable, NotSent, "credential "+name+" is not available: this gateway holds no credentials", nil)
		}
		s, err := f.creds.Get(name)
		if err == nil && s.IsZero() {
			err = errors.New("forwarder: credentials: a zero secret without an error")
		}
		if err != nil {
			// A credentials error names the credential and its source,
			// never a value.
			return nil, newError(CodeCredentialUnavailable, NotSent, "credential "+name+" is not available on this gateway now; nothing was sent", err)
		}
		if slices.Contains(v.secrets, name) && s.Kind() != credentials.KindSecret {
			return nil, notSent(CodeCredentialNotAllowed, "credential "+name+" is a key ("+string(s.Kind())+"); only a secret may be written into a header")
		}
		set.values[name] = s
		set.addMasks(s)
	}
	return set, nil
}

// addMasks records the spellings of s a processor might echo: the value,
// its base64 (standard and URL alphabets, padded and not), and its JSON-
// and URL-escaped forms. A secret of the Basic auth form "user:password"
// (Stripe's "key:" too) is also masked part by part, since a processor's
// error may name the user or the password alone. Private keys are
// never sent anywhere, so they have no spellings to mask.
func (s *secretSet) addMasks(sec credentials.Secret) {
	switch sec.Kind() {
	case credentials.KindSecret, credentials.KindHMACKey:
	default:
		return
	}
	b := sec.Reveal()
	defer clear(b) // every spelling is a copy
	if len(b) == 0 {
		return
	}
	mask := []byte("[" + secretPrefix + sec.Name() + "]")
	forms := secretSpellings(b)
	if sec.Kind() == credentials.KindSecret {
		if user, pass, ok := bytes.Cut(b, []byte(":")); ok {
			for _, part := range [][]byte{user, pass} {
				if len(part) >= minBasicPart {
					forms = append(forms, secretSpellings(part)...)
				}
			}
		}
	}
	for _, p := range forms {
		if len(p) == 0 || slices.ContainsFunc(s.masks, func(m secretMask) bool { return string(m.pattern) == string(p) }) {
			clear(p)
			continue
		}
		s.masks = append(s.masks, secretMask{pattern: p, mask: mask})
	}
	// Longest first: where one spelling contains another, the whole of
	// the longer one is masked.
	slices.SortStableFunc(s.masks, func(a, b secretMask) int { return len(b.pattern) - len(a.pattern) })
}

// minBasicPart is the shortest user or password of a Basic auth secret
// that is masked on its own: shorter parts would mask ordinary words.
const minBasicPart = 6

// secretSpellings returns b in every encoding addMasks masks.
func secretSpellings(b []byte) [][]byte {
	forms := [][]byte{
		slices.Clone(b),
		[]byte(base64.StdEncoding.EncodeToString(b)),
		[]byte(base64.URLEncoding.EncodeToString(b)),
		[]byte(base64.RawStdEncoding.EncodeToString(b)),
		[]byte(base64.RawURLEncoding.EncodeToString(b)),
		appendJSONStringContent(nil, string(b)),
		[]byte(url.QueryEscape(string(b))),
		[]byte(url.PathEscape(string(b))),
		[]byte(strings.ReplaceAll(string(appendJSONStringContent(nil, string(b))), "/", `\/`)),
		[]byte(hex.EncodeToString(b)),
		[]byte(strings.ToUpper(hex.EncodeToString(b))),
		utf16Of(b, false),
		utf16Of(b, true),
	}
	// Inside a longer base64 text the value starts at any of three byte
	// offsets; the characters made of its bits alone are the same
	// wherever it stands.
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for k := 1; k <= 2; k++ {
			if core := base64Core(enc, b, k); len(core) >= minBase64Core {
				forms = append(forms, core)
			}
		}
	}
	return forms
}

// minBase64Core is the shortest base64 core of a credential that is
// masked: shorter runs of letters would mask ordinary text.
const minBase64Core = 8

// base64Core returns the characters of the base64 of k bytes followed by
// b that come from b's bits alone.
func base64Core(enc *base64.Encoding, b []byte, k int) []byte {
	buf := append(make([]byte, k), b...)
	s := enc.EncodeToString(buf)
	clear(buf)
	from := (8*k + 5) / 6      // the first character with no prefix bit
	to := (8*k + 8*len(b)) / 6 // past the last character with only b's bits
	if to <= from {
		return nil
	}
	return []byte(s[from:to])
}

// utf16Of returns b (ASCII, as credentials are) as UTF-16, little- or
// big-endian.
func utf16Of(b []byte, bigEndian bool) []byte {
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		if bigEndian {
			out = append(out, 0, c)
		} else {
			out = append(out, c, 0)
		}
	}
	return out
}

// masking reports whether there is anything to mask.
func (s *secretSet) masking() bool { return s != nil && len(s.masks) > 0 }

// contains reports whether b holds any spelling of a credential.
func (s *secretSet) contains(b []byte) bool {
	if !s.masking() {
		return false
	}
	for _, m := range s.masks {
		if bytes.Index(b, m.pattern) >= 0 {
			return true
		}
	}
	return false
}

// mask returns src with every spelling of every credential replaced by
// its mask, and whether anything was replaced. When nothing was, src is
// returned as it is and nothing is allocated.
func (s *secretSet) mask(src []byte) ([]byte, bool) {
	if !s.contains(src) {
		return src, false
	}
	// next[i] is where masks[i] next occurs at or after pos (-1: never).
	next := make([]int, len(s.masks))
	for i, m := range s.masks {
		next[i] = bytes.Index(src, m.pattern)
	}
	out := make([]byte, 0, len(src)+64)
	pos := 0
	for {
		best := -1
		for i := range s.masks {
			if next[i] >= 0 && (best < 0 || next[i] < next[best]) {
				best = i // ties go to the lower index: the longer pattern
			}
		}
		if best < 0 {
			break
		}
		at := next[best]
		out = append(out, src[pos:at]...)
		out = append(out, s.masks[best].mask...)
		pos = at + len(s.masks[best].pattern)
		for i, m := range s.masks {
			if next[i] >= 0 && next[i] < pos {
				if j := bytes.Index(src[pos:], m.pattern); j >= 0 {
					next[i] = pos + j
				} else {
					next[i] = -1
				}
			}
		}
	}
	return append(out, src[pos:]...), true
}

// maskBuffer masks *buf, a pooled buffer, in place: a masked copy
// replaces it and the old array, which held the credential, is zeroed.
// This is the response-side hook for "extra exact byte strings to mask".
func (s *secretSet) maskBuffer(buf *[]byte) {
	out, changed := s.mask(*buf)
	if !changed {
		return
	}
	old := *buf
	*buf = out
	clear(old[:cap(old)])
}

// maskHeaders masks every header value in h, and drops a header whose
// name holds a credential.
func (s *secretSet) maskHeaders(h http.Header) {
	if !s.masking() {
		return
	}
	for name, vals := range h {
		if s.contains([]byte(name)) {
			delete(h, name)
			continue
		}
		for i, v := range vals {
			if out, changed := s.mask([]byte(v)); changed {
				vals[i] = string(out)
			}
		}
	}
}

// scrub masks a credential in an error's internal cause: net/http quotes
// a malformed answer line in its errors, and a processor may echo a
// header into one. The public message is ours and holds no value.
func (s *secretSet) scrub(e *Error) *Error {
	if e == nil || e.Err == nil || !s.masking() {
		return e
	}
	if out, changed := s.mask([]byte(e.Err.Error())); changed {
		e.Err = errors.New(string(out))
	}
	return e
}
