package credentials

import "fmt"

// Code names what went wrong. Codes are stable: the forwarder and the
// gateway's readiness report branch on them.
type Code string

// Codes. The first two come from Get; the rest from New and Reload.
const (
	// CodeNotFound: no credential of that name is configured. An
	// allowlist entry naming it should have been refused when it loaded.
	CodeNotFound Code = "not_found"
	// CodeNotLoaded: the store has never loaded successfully, so no
	// credential is available. Nothing may be sent that needs one.
	CodeNotLoaded Code = "not_loaded"
	// CodeWrongKind: the credential is not of the kind the call needs,
	// such as Signer on a plain secret.
	CodeWrongKind Code = "wrong_kind"

	// CodeBadSpec: a Spec is unusable (bad name, no source, an option out
	// of range, a vault source without a Vault client).
	CodeBadSpec Code = "bad_spec"
	// CodeRead: the source could not be read (a missing file, a
	// permission error).
	CodeRead Code = "read_failed"
	// CodeNotRegular: a file source is a directory, FIFO, socket or
	// device, directly or through its symlinks.
	CodeNotRegular Code = "not_regular_file"
	// CodeTooLarge: the value is larger than the size bound.
	CodeTooLarge Code = "too_large"
	// CodeEmpty: the value is empty (an empty file, an unset or empty
	// variable, an empty string in Vault).
	CodeEmpty Code = "empty"
	// CodeEncoding: the value does not decode as its declared encoding.
	CodeEncoding Code = "bad_encoding"
	// CodeInvalid: the decoded value is not a valid value of its kind: a
	// secret with control characters, an HMAC key that is too short, a
	// private key that does not parse or is of the wrong type.
	CodeInvalid Code = "invalid_value"
	// CodeVaultNotFound: Vault has no such secret, version or key in the
	// secret's data, or the version is deleted or destroyed.
	CodeVaultNotFound Code = "vault_not_found"
	// CodeVaultDenied: Vault refused the token (403): check its policy
	// grants read on MOUNT/data/PATH.
	CodeVaultDenied Code = "vault_denied"
	// CodeVaultUnavailable: Vault could not be reached, answered with an
	// error status, or answered with something that is not KV v2's JSON.
	CodeVaultUnavailable Code = "vault_unavailable"
)

// Error is the one error type this package returns. It names the
// credential and the kind of its source, never the value; Detail and Err
// name paths, variables, Vault paths and statuses, never bytes of a value.
type Error struct {
	Code   Code
	Name   string // the credential; "" when no one credential is at fault
	Source string // SourceFile, SourceEnv or SourceVault; "" for lookups
	Detail string
	Err    error // the cause, if any; never one that quotes a value
}

func (e *Error) Error() string {
	s := "credentials: "
	if e.Name != "" {
		s += e.Name
		if e.Source != "" {
			s += " (" + e.Source + ")"
		}
		s += ": "
	}
	s += string(e.Code)
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

// Is matches a sentinel with the same Code, so that
// errors.Is(err, credentials.ErrNotRegular) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Name == "" && t.Source == "" && t.Detail == "" && t.Err == nil
}

// Sentinels for errors.Is.
var (
	ErrNotFound         = &Error{Code: CodeNotFound}
	ErrNotLoaded        = &Error{Code: CodeNotLoaded}
	ErrWrongKind        = &Error{Code: CodeWrongKind}
	ErrBadSpec          = &Error{Code: CodeBadSpec}
	ErrRead             = &Error{Code: CodeRead}
	ErrNotRegular       = &Error{Code: CodeNotRegular}
	ErrTooLarge         = &Error{Code: CodeTooLarge}
	ErrEmpty            = &Error{Code: CodeEmpty}
	ErrEncoding         = &Error{Code: CodeEncoding}
	ErrInvalid          = &Error{Code: CodeInvalid}
	ErrVaultNotFound    = &Error{Code: CodeVaultNotFound}
	ErrVaultDenied      = &Error{Code: CodeVaultDenied}
	ErrVaultUnavailable = &Error{Code: CodeVaultUnavailable}
)

// fail builds an *Error for the credential being read; the caller fills
// in Name and Source.
func fail(code Code, err error, format string, args ...any) *Error {
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...), Err: err}
}
