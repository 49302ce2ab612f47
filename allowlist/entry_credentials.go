// An entry's credentials: the gateway-held processor credentials it may
// use. The values live in the gateway's configuration; the signed entry
// only names them, so auditors see where each secret may go.

package allowlist

import (
	"net/textproto"
	"slices"
	"strings"

	"github.com/cardgate/cardgate/forwarder/signing"
)

// MaxCredentials caps the credentials one entry may name. A processor
// integration needs one or two (an API key, a signing key); a long list
// is a review smell, not an integration.
const MaxCredentials = 16

// MaxCredentialHeaders caps the headers one entry may let a credential
// go in. A processor reads its key from one header, two at most (a key
// and an account id); each one listed is a place a secret may be sent.
const MaxCredentialHeaders = 4

// rawCredentials are the entry fields this file owns, inlined into
// rawDestination.
type rawCredentials struct {
	Credentials []string `yaml:"credentials"`
	// CredentialHeaders are the request headers a {{secret.NAME}}
	// placeholder may stand in; none means the credentials sign only.
	CredentialHeaders []string `yaml:"credential_headers"`
	// Signing is decoded straight into the signing package's Spec: it is
	// the declaration, its yaml tags are the document syntax, and the
	// strict decoder refuses unknown keys inside it too.
	Signing *signing.Spec `yaml:"signing"`
}

// credentialFields checks and copies credentials and signing into d. at
// names the entry and its line for messages.
func (r *rawCredentials) credentialFields(d *Destination, at string) error {
	if r.Credentials != nil && len(r.Credentials) == 0 {
		// "credentials: []" grants nothing; say so rather than let a
		// reviewer wonder what it means.
		return malformed("%s.credentials: an empty list grants nothing; remove the key", at)
	}
	if len(r.Credentials) > MaxCredentials {
		return malformed("%s.credentials: %d names, more than the limit of %d", at, len(r.Credentials), MaxCredentials)
	}
	for i, name := range r.Credentials {
		if !ValidCredentialName(name) {
			return malformed("%s.credentials[%d]: %q is not a credential name: 1-63 of a-z, 0-9, '_' and '-', starting with a letter or digit", at, i, name)
		}
		if slices.Index(r.Credentials, name) != i {
			return malformed("%s.credentials[%d]: %q is listed twice", at, i, name)
		}
	}
	d.Credentials = slices.Clone(r.Credentials)
	if err := r.credentialHeaders(d, at); err != nil {
		return err
	}
	if r.Signing != nil {
		if err := checkSigning(r.Signing, d, at); err != nil {
			return err
		}
		d.Signing = r.Signing
	}
	return nil
}

// credentialHeaders checks and copies credential_headers into d, each
// name in its canonical form (Authorization, X-Api-Key).
func (r *rawCredentials) credentialHeaders(d *Destination, at string) error {
	if r.CredentialHeaders == nil {
		return nil
	}
	if len(r.CredentialHeaders) == 0 {
		return malformed("%s.credential_headers: an empty list allows no header; remove the key", at)
	}
	if len(r.Credentials) == 0 {
		return malformed("%s.credential_headers: the entry names no credentials to send in them", at)
	}
	if len(r.CredentialHeaders) > MaxCredentialHeaders {
		return malformed("%s.credential_headers: %d names, more than the limit of %d", at, len(r.CredentialHeaders), MaxCredentialHeaders)
	}
	for i, h := range r.CredentialHeaders {
		switch {
		case !reHeader.MatchString(h):
			return malformed("%s.credential_headers[%d]: %q is not a header name", at, i, h)
		case strings.Contains(h, "_"):
			// CGI and WSGI servers read '_' as '-', and many proxies drop
			// such names: the header a reviewer approves must be the one
			// the processor reads.
			return malformed("%s.credential_headers[%d]: %q has an underscore; write the header with '-'", at, i, h)
		case ForbiddenCredentialHeader(h):
			return malformed("%s.credential_headers[%d]: %q may not carry a credential", at, i, h)
		}
		canon := textproto.CanonicalMIMEHeaderKey(h)
		if slices.Contains(d.CredentialHeaders, canon) {
			return malformed("%s.credential_headers[%d]: %q is listed twice", at, i, h)
		}
		d.CredentialHeaders = append(d.CredentialHeaders, canon)
	}
	return nil
}

// ForbiddenCredentialHeader reports whether a header may never carry a
// credential, whatever an entry says: hop-by-hop and proxy headers, those
// the gateway sets, strips or refuses from callers (framing, routing,
// tracing, its own X-Cardgate-*), and those a processor or the systems
// around it show to people or echo back: an idempotency key or a request
// id appears in dashboards, webhook events and answers, a Referer or
// Origin in logs. The case of name does not matter. allowlist.schema.json
// restates the list as a pattern; a test holds the two together.
func ForbiddenCredentialHeader(name string) bool {
	c := textproto.CanonicalMIMEHeaderKey(name)
	if forbiddenCredentialHeaders[c] {
		return true
	}
	for _, p := range forbiddenCredentialHeaderPrefixes {
		if strings.HasPrefix(c, p) {
			return true
		}
	}
	return false
}

var forbiddenCredentialHeaders = map[string]bool{
	// Hop-by-hop (internal/hopbyhop) and framing.
	"Connection": true, "Keep-Alive": true, "Te": true, "Trailer": true, "Transfer-Encoding": true,
	"Upgrade": true, "Http2-Settings": true, "Content-Length": true, "Expect": true,
	// Set or stripped by the gateway.
	"Host": true, "User-Agent": true, "Accept-Encoding": true, "Cookie": true, "Cookie2": true,
	"Forwarded": true, "Via": true, "X-Real-Ip": true, "Traceparent": true, "Tracestate": true,
	"Content-Type": true, "Date": true, "Digest": true, "Content-Digest": true,
	"Signature": true, "Signature-Input": true,
	// Routing overrides the forwarder refuses.
	"X-Original-Url": true, "X-Rewrite-Url": true, "X-Http-Method-Override": true,
	"X-Http-Method": true, "X-Method-Override": true,
	// Shown or echoed by processors.
	"Idempotency-Key": true, "X-Idempotency-Key": true, "X-Request-Id": true,
	"X-Correlation-Id": true, "Referer": true, "Origin": true,
}

var forbiddenCredentialHeaderPrefixes = []string{"Proxy-", "X-Forwarded-", "X-Cardgate-"}

// ValidCredentialName reports whether s is a credential name:
// [a-z0-9][a-z0-9_-]{0,62}, the grammar of the gateway's credentials
// configuration (credentials.ValidName; restated, since this package
// must not depend on the one that holds the values).
func ValidCredentialName(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '-') {
			return false
		}
	}
	return true
}

// AllowsCredentialHeader reports whether a {{secret.NAME}} placeholder
// may stand in the header name (canonical form, as the forwarder keeps
// it): only a header the entry lists in credential_headers, spelt the
// same way. An underscore twin (X_Api_Key) of a listed header is not it.
func (d *Destination) AllowsCredentialHeader(name string) bool {
	return name != "" && slices.Contains(d.CredentialHeaders, name)
}

// GrantsCredential reports whether the entry names credential name in its
// credentials list. An empty name is never granted.
func (d *Destination) GrantsCredential(name string) bool {
	return name != "" && slices.Contains(d.Credentials, name)
}
