package signing

// Error codes. They are API: the forwarder passes them to the caller, test
// processors branch on them, and they never change meaning. No error of
// this package ever holds key material, a header value or body bytes: a
// Detail names fields and components (which come from the signed
// allowlist), never their values.
const (
	// CodeSpecInvalid: a Spec failed Validate or New. The error is a
	// *SpecError naming the field.
	CodeSpecInvalid = "signing_spec_invalid"
	// CodeComponentMissing: a header or component the spec covers is not
	// in the request, so no signature over it can be made.
	CodeComponentMissing = "signing_component_missing"
	// CodeComponentInvalid: a covered value cannot be put into a signature
	// base (a control character, non-ASCII, or the same header under two
	// spellings of its name).
	CodeComponentInvalid = "signing_component_invalid"
	// CodeBodyMismatch: the body handed to Sign is not the body the
	// request will send (its ContentLength differs), or a body is present
	// that the spec does not cover.
	CodeBodyMismatch = "signing_body_mismatch"
	// CodeKeyFailed: the key could not sign (an HSM or key service error,
	// or a key of the wrong type). The cause is in Err.
	CodeKeyFailed = "signing_key_failed"

	// The codes below come only from a Verifier.

	// CodeSignatureMissing: the request carries no signature (or no
	// digest) in the place the spec says.
	CodeSignatureMissing = "signature_missing"
	// CodeSignatureMalformed: a signature, Signature-Input or digest
	// header does not parse.
	CodeSignatureMalformed = "signature_malformed"
	// CodeSignatureInvalid: the signature does not verify with the key.
	CodeSignatureInvalid = "signature_invalid"
	// CodeSignaturePolicy: the signature verifies or may verify, but it
	// does not meet the spec: a required component is not covered, or the
	// key id, algorithm or tag differ.
	CodeSignaturePolicy = "signature_policy"
	// CodeSignatureStale: created, expires, Date or the timestamp is
	// outside the verifier's window.
	CodeSignatureStale = "signature_stale"
	// CodeDigestMismatch: a Content-Digest or Digest header does not match
	// the body.
	CodeDigestMismatch = "digest_mismatch"
)

// Error is the error Sign and Verify return. Code and Detail are safe to
// show to a caller and to log; Err is the cause (for CodeKeyFailed, what
// the key backend said) and is only for the server log.
type Error struct {
	Code   string
	Detail string
	Err    error
}

func (e *Error) Error() string {
	s := "signing: " + e.Code
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ErrorCode returns the stable code.
func (e *Error) ErrorCode() string { return e.Code }

// PublicMessage returns the detail, which never quotes a value.
func (e *Error) PublicMessage() string { return e.Detail }

func newErr(code, detail string) *Error { return &Error{Code: code, Detail: detail} }

// SpecError says which field of a Spec is wrong and why. Field is the YAML
// path below the entry's signing block, e.g. "rfc9421.components[2]".
type SpecError struct {
	Field  string
	Reason string
}

func (e *SpecError) Error() string { return "signing: " + e.Field + ": " + e.Reason }

// ErrorCode returns CodeSpecInvalid.
func (e *SpecError) ErrorCode() string { return CodeSpecInvalid }

// PublicMessage returns "field: reason".
func (e *SpecError) PublicMessage() string { return e.Field + ": " + e.Reason }

func specErr(field, reason string) *SpecError { return &SpecError{Field: field, Reason: reason} }
