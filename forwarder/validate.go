package forwarder

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/cardscan"
	"github.com/cardgate/cardgate/internal/hopbyhop"
)

// validated is a request that passed every check that does not need the
// allowlist, with its placeholders found.
type validated struct {
	method   string
	target   *target
	fields   []allowlist.Field // sorted, unique; what Match is asked about
	headers  []headerSlot      // outbound headers, canonical names, in a stable order
	body     slot
	bodyKind bodyKind
	secrets  []string // credentials the header placeholders use; sorted, unique
	// identifiersUsed are the request_identifiers whose values were cut
	// from the literal-card check; nil when none were (request_identifiers.go).
	identifiersUsed []cardscan.Path

	// cards are the named cards the template uses and the fields of each
	// (sorted, unique); what Match is asked about as Query.Cards.
	cards map[string][]allowlist.Field
	// doctype is an XML body's DOCTYPE declaration, "" if none; checkBody
	// compares it with the matched entry's.
	doctype string
}

type headerSlot struct {
	name   string // canonical
	values []slot
}

// allowedMethods are the methods a forward may use at all; each entry
// narrows them further. Methods are case-sensitive tokens (RFC 9110 §9.1),
// so "post" is refused rather than folded.
func allowedMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// strippedRequestHeader reports whether a caller-supplied header is dropped
// before sending. Hop-by-hop and proxy headers belong to one connection;
// Forwarded/X-Forwarded-*/X-Real-Ip/Via would describe our network to the
// processor; Host, Content-Length, Expect, User-Agent and Accept-Encoding
// are set by us; Cookie is dropped because Set-Cookie never reaches callers,
// so a caller has no legitimate processor cookie to send; X-Cardgate-* are
// ours.
func strippedRequestHeader(name string) bool {
	if hopbyhop.Is(name) {
		return true
	}
	switch name {
	case "Host", "Content-Length", "Expect", "User-Agent", "Accept-Encoding", "Cookie", "Cookie2",
		"Forwarded", "Via", "X-Real-Ip", "Traceparent", "Tracestate":
		return true
	}
	return strings.HasPrefix(name, "Proxy-") || strings.HasPrefix(name, "X-Forwarded-") || strings.HasPrefix(name, "X-Cardgate-")
}

// routingOverrideHeader reports whether a header makes some servers and
// frameworks route on a path or a method other than the request line's:
// IIS URL Rewrite and Symfony honour X-Original-Url and X-Rewrite-Url;
// many frameworks take the method from X-Http-Method-Override,
// X-Http-Method or X-Method-Override. Each would move the request outside
// the path prefix and methods the allowlist entry checked, so a request
// carrying one is refused (naming it), not silently cleaned.
func routingOverrideHeader(name string) bool {
	switch name {
	case "X-Original-Url", "X-Rewrite-Url", "X-Http-Method-Override", "X-Http-Method", "X-Method-Override":
		return true
	}
	return false
}

// validate checks everything about r that does not need the allowlist or
// the card, and finds the placeholders. Card data is never in r (that is
// what it checks), so messages may name fields and headers but never echo
// values. The steps run in this order; each refuses before the next looks
// at anything.
func (f *Forwarder) validate(r *Request) (*validated, *Error) {
	if e := validateFields(r); e != nil {
		return nil, e
	}
	t, e := validateURL(r.URL)
	if e != nil {
		return nil, e
	}
	v := &validated{method: r.Method, target: t}
	contentType, e := v.validateHeaders(r.Headers)
	if e != nil {
		return nil, e
	}
	if e := f.validateBody(r, v, contentType); e != nil {
		return nil, e
	}
	if e := v.scopeCards(r); e != nil {
		return nil, e
	}
	return v, nil
}

// invalid is the error for a request that is malformed.
func invalid(msg string) *Error { return notSent(CodeInvalidRequest, msg) }

// literalCard is the error for a card typed into a request where a token
// and a placeholder belong. where names the part, never the value.
func literalCard(where string) *Error {
	return notSent(CodeLiteralCard, where+": contains what looks like a card number; send a token and a placeholder instead")
}

// validateFields checks the request's scalar fields: destination id,
// method, card tokens, idempotency key and caller.
func validateFields(r *Request) *Error {
	if r.Destination == "" {
		return invalid("destination: is required")
	}
	if !allowlist.ValidID(r.Destination) {
		// The value is not echoed: it matched no grammar, so it could be
		// anything.
		return invalid("destination: must be an allowlist entry id: 1-63 of a-z, 0-9, '.', '_', '-', starting with a letter or digit")
	}
	if cardscan.ContainsString(r.Destination) {
		// The grammar admits digits and separators; a card spelled in them
		// would reach the log line, the span, the metric labels and the
		// audit record, which all name the destination.
		return invalid("destination: must not look like a card number")
	}
	if r.Method == "" {
		return invalid("method: is required")
	}
	if !allowedMethod(r.Method) {
		return invalid("method: must be one of GET, POST, PUT, PATCH, DELETE")
	}
	if e := checkCardTokens(r); e != nil {
		return e
	}
	if r.IdempotencyKey != "" && !validIdempotencyKey(r.IdempotencyKey) {
		// The value is not echoed: it is caller input of any content.
		return notSent(CodeInvalidIdempotencyKey, "Idempotency-Key: must be 1-128 characters of A-Z, a-z, 0-9, '-', '_', '.' or ':'")
	}
	if r.Caller == "" {
		// Set by the API layer from the authenticated identity; its absence
		// is a wiring bug, never "anyone".
		return notSent(CodeInternal, "caller identity missing")
	}
	return nil
}

// validateURL refuses placeholders and typed-in cards in the URL, in raw
// or decoded form, and parses it.
func validateURL(raw string) (*target, *Error) {
	if len(raw) > maxURLBytes {
		return nil, invalid("url: longer than " + strconv.Itoa(maxURLBytes) + " bytes")
	}
	decodedURL, derr := url.QueryUnescape(raw)
	if derr != nil {
		decodedURL = raw
	}
	if strings.Contains(raw, openDelim) || strings.Contains(decodedURL, openDelim) {
		return nil, notSent(CodeInvalidTemplate, "url: card placeholders are not allowed in the URL or query")
	}
	if cardscan.ContainsString(raw) || cardscan.ContainsString(decodedURL) {
		return nil, literalCard("url")
	}
	return parseTarget(raw)
}

// validateHeaders checks the caller's headers, finds their placeholders,
// keeps in v.headers those that are sent, and returns the Content-Type the
// body is read as ("" if none is sent).
func (v *validated) validateHeaders(headers map[string][]string) (string, *Error) {
	if len(headers) > maxHeaders {
		return "", invalid("headers: more than " + strconv.Itoa(maxHeaders))
	}
	size := 0
	seen := map[string]bool{}
	names := make([]string, 0, len(headers))
	for name := range headers {
		names = append(names, name)
	}
	slices.Sort(names)
	contentType := ""
	// Headers the caller's Connection header names are hop-by-hop too.
	connNamed := hopbyhop.Named(headers)
	for _, name := range names {
		vals := headers[name]
		if !validHeaderName(name) || len(name) > maxCardHeaderNm {
			return "", invalid("headers: invalid header name")
		}
		// A card in a name is refused before any message names the header.
		if cardscan.ContainsString(name) {
			return "", literalCard("headers")
		}
		canon := http.CanonicalHeaderKey(name)
		if seen[canon] {
			return "", invalid("headers: " + canon + " is given more than once")
		}
		seen[canon] = true
		// CGI and WSGI servers read '_' as '-': the twin gets the
		// original's treatment.
		twin := http.CanonicalHeaderKey(strings.ReplaceAll(canon, "_", "-"))
		if routingOverrideHeader(canon) || routingOverrideHeader(twin) {
			return "", invalid("headers: " + canon + " would override the path or method the allowlist checks; remove it")
		}
		hs := headerSlot{name: canon}
		for _, val := range vals {
			size += len(name) + len(val)
			if size > maxHeaderBytes {
				return "", invalid("headers: larger than " + strconv.Itoa(maxHeaderBytes) + " bytes")
			}
			if !validHeaderValue(val) {
				return "", invalid("headers: " + canon + " has a value with control characters")
			}
			if cardscan.ContainsString(val) {
				return "", literalCard("headers: " + canon)
			}
			phs, e := parsePlaceholders(val, "header "+canon)
			if e != nil {
				return "", e
			}
			v.secrets = addSecretNames(v.secrets, phs)
			hs.values = append(hs.values, slot{text: val, phs: phs})
		}
		if canon == "Content-Type" && !connNamed[canon] {
			if len(vals) != 1 {
				return "", invalid("headers: Content-Type must have exactly one value")
			}
			contentType = vals[0]
		}
		if strippedRequestHeader(canon) || strippedRequestHeader(twin) || connNamed[canon] || len(hs.values) == 0 {
			if len(hasPlaceholders(hs.values)) > 0 {
				return "", notSent(CodeInvalidTemplate, "header "+canon+": card placeholders are not allowed in this header")
			}
			continue
		}
		v.headers = append(v.headers, hs)
	}
	return contentType, nil
}

// validateBody bounds the body, refuses a typed-in card, finds the
// placeholders and, when there are any, checks the body in its format
// (contentType) so that each placeholder sits where escaping is defined.
func (f *Forwarder) validateBody(r *Request, v *validated, contentType string) *Error {
	if int64(len(r.Body)) > f.maxReqBody {
		return invalid("body: larger than " + strconv.FormatInt(f.maxReqBody, 10) + " bytes")
	}
	scan := f.literalScanBody(r, contentType, v) // r.Body but for declared identifiers
	if cardscan.ContainsString(scan) {
		return literalCard("body")
	}
	phs, e := parsePlaceholders(r.Body, "body")
	if e != nil {
		return e
	}
	v.body = slot{text: r.Body, phs: phs}
	if len(phs) == 0 {
		if r.Body != "" && classifyBody(contentType) == bodyXML {
			// The XML template rules hold without a placeholder too: an
			// entity from an internal subset can spell a card the literal
			// check never sees, and a DOCTYPE the entry does not name
			// makes the processor's parser fetch a DTD no auditor saw.
			v.bodyKind = bodyXML
			v.doctype, e = checkXMLBody(r.Body, nil)
			return e
		}
		return nil
	}
	v.bodyKind = classifyBody(contentType)
	switch v.bodyKind {
	case bodyJSON:
		return checkJSONBody(r.Body, v.body.phs)
	case bodyForm:
		// A form body is decoded by the processor: a card typed in
		// percent-encoded form is still a card.
		if dec, err := url.QueryUnescape(scan); err == nil && cardscan.ContainsString(dec) {
			return literalCard("body")
		}
		return nil
	case bodyXML:
		v.doctype, e = checkXMLBody(r.Body, v.body.phs)
		return e
	default:
		return notSent(CodeInvalidTemplate, "body: card placeholders need Content-Type application/json (or +json), application/x-www-form-urlencoded, or UTF-8 application/xml, text/xml (or +xml)")
	}
}

func hasPlaceholders(ss []slot) []slot {
	var out []slot
	for _, s := range ss {
		if len(s.phs) > 0 {
			out = append(out, s)
		}
	}
	return out
}

func hasCardPlaceholders(ss []slot) bool {
	for _, s := range ss {
		for _, ph := range s.phs {
			if ph.ref.isCard() {
				return true
			}
		}
	}
	return false
}

func printableToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// checkHeaderSlots refuses a card placeholder in a header the entry does
// not name in CardHeaders. (Placeholders of other namespaces, such as
// secrets, have their own rules.)
func (v *validated) checkHeaderSlots(d *allowlist.Destination) *Error {
	for _, h := range v.headers {
		if !hasCardPlaceholders(h.values) {
			continue
		}
		ok := false
		for _, ch := range d.CardHeaders {
			if http.CanonicalHeaderKey(ch) == h.name {
				ok = true
				break
			}
		}
		if !ok {
			return notSent(CodeInvalidTemplate, "header "+h.name+": the destination does not allow card placeholders in this header")
		}
	}
	return nil
}

// renderHeaders builds the outbound header set: the caller's surviving
// headers with placeholders filled, plus ours.
func (v *validated) renderHeaders(cv fieldValues) (http.Header, *Error) {
	h := make(http.Header, len(v.headers)+2)
	for _, hs := range v.headers {
		for _, sl := range hs.values {
			val, e := renderHeader(sl, hs.name, cv)
			if e != nil {
				return nil, e
			}
			h[hs.name] = append(h[hs.name], val)
		}
	}
	h.Set("User-Agent", UserAgent)
	h.Set("Accept-Encoding", "identity")
	return h, nil
}
