// An entry's credentials: the gateway-held processor credentials it may
// use. The values live in the gateway's configuration; the signed entry
// only names them, so auditors see where each secret may go.

package allowlist

import (
	"slices"

	"github.com/cardgate/cardgate/forwarder/signing"
)

// MaxCredentials caps the credentials one entry may name. A processor
// integration needs one or two (an API key, a signing key); a long list
// is a review smell, not an integration.
const MaxCredentials = 16

// rawCredentials are the entry fields this file owns, inlined into
// rawDestination.
type rawCredentials struct {
	Credentials []string `yaml:"credentials"`
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
	if r.Signing != nil {
		if err := checkSigning(r.Signing, d, at); err != nil {
			return err
		}
		d.Signing = r.Signing
	}
	return nil
}

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

// GrantsCredential reports whether the entry names credential name in its
// credentials list. An empty name is never granted.
func (d *Destination) GrantsCredential(name string) bool {
	return name != "" && slices.Contains(d.Credentials, name)
}
