// An entry's signing block: how the gateway signs the requests it
// forwards under the entry, after rendering, over the exact bytes sent.
//
// The block is a forwarder/signing.Spec. That package is a leaf (it
// imports the standard library only; entry_signing_test.go keeps it so),
// so the allowlist can own the declaration without depending on the
// forward path: it decodes the block and asks Spec.Validate, and the
// forwarder builds its Signer from the same value.

package allowlist

import (
	"errors"

	"github.com/cardgate/cardgate/forwarder/signing"
)

// checkSigning validates sp for entry d (whose methods and credentials are
// already checked). The signing credential must be one the entry grants:
// auditors then find every credential an entry can touch in one list. The
// digest schemes use no key and must name none (Validate refuses it).
func checkSigning(sp *signing.Spec, d *Destination, at string) error {
	if err := sp.Validate(d.Methods); err != nil {
		var se *signing.SpecError
		if errors.As(err, &se) {
			return malformed("%s.signing.%s: %s", at, se.Field, se.Reason)
		}
		return malformed("%s.signing: %v", at, err)
	}
	if sp.Credential != "" && !d.GrantsCredential(sp.Credential) {
		return malformed("%s.signing.credential: %q is not in the entry's credentials list; add it there so that every credential the entry uses is listed in one place", at, sp.Credential)
	}
	return nil
}

// SigningCredential returns the credential the entry's signing block
// signs with, or "" when the entry is not signed or its scheme uses no
// key.
func (d *Destination) SigningCredential() string {
	if d.Signing == nil {
		return ""
	}
	return d.Signing.Credential
}
