package vaultclient

import "errors"

// Error codes. They are stable: callers and the API layer branch on them,
// and they appear in API responses. The recommended HTTP status for each is
// given in brackets; HTTPStatus is not decided here because this package
// knows nothing about HTTP.
const (
	// CodeInvalidCardNumber: the number is not 13–19 digits (spaces and
	// dashes allowed between them) or fails the Luhn check. [422]
	CodeInvalidCardNumber = "invalid_card_number"
	// CodeInvalidExpiry: exp_month is not 1–12, exp_year is not four
	// digits, or the expiry is implausibly far in the future. [422]
	CodeInvalidExpiry = "invalid_expiry"
	// CodeCardExpired: the card's expiry month has ended, at tokenize or at
	// detokenize time. [422]
	CodeCardExpired = "card_expired"
	// CodeInvalidCVC: the CVC is not the right number of digits. [422]
	CodeInvalidCVC = "invalid_cvc"
	// CodeInvalidName: the name is too long, not UTF-8 or not printable. [422]
	CodeInvalidName = "invalid_name"
	// CodeTokenNotFound: no card is held under the token, or the token is
	// malformed. The two are deliberately not told apart. [404]
	CodeTokenNotFound = "token_not_found"
	// CodeStoreUnavailable: the card store failed or timed out. Nothing was
	// written. Retrying later may succeed. [503]
	CodeStoreUnavailable = "store_unavailable"
	// CodeKeyBackendUnavailable: the key backend failed or timed out.
	// Nothing was written. Retrying later may succeed. [503]
	CodeKeyBackendUnavailable = "key_backend_unavailable"
	// CodeKeyRetired: the record is sealed under a key version the key
	// backend no longer has (retired after rotation) or never had. The card
	// cannot be used; it must be collected again. [410: the card is gone
	// for good, and a retry cannot help]
	CodeKeyRetired = "key_retired"
	// CodeRecordCorrupt: the stored record failed authentication or does not
	// parse: it was altered, moved to another token, or damaged. This is a
	// security event and is logged at error level. [500; internal]
	CodeRecordCorrupt = "record_corrupt"
	// CodeInternal: a condition that should not happen (for example a token
	// collision). [500; internal]
	CodeInternal = "internal_error"
)

// Error is the one error type that Vault methods return. Code is stable,
// Message is safe to show to a caller (it names the field or the token,
// never card data, keys or ciphertext), and Err is the internal cause, for
// logs and errors.Is.
type Error struct {
	Code    string
	Message string
	Err     error
}

// Error returns the message and, for logs, the cause.
func (e *Error) Error() string {
	if e.Err == nil {
		return "vaultclient: " + e.Message
	}
	return "vaultclient: " + e.Message + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ErrorCode returns the stable code.
func (e *Error) ErrorCode() string { return e.Code }

// PublicMessage returns the message without the internal cause.
func (e *Error) PublicMessage() string { return e.Message }

func newError(code, msg string, cause error) *Error {
	return &Error{Code: code, Message: msg, Err: cause}
}

// Sentinel errors that Store and Keyer implementations wrap, so that the
// Vault can tell a missing or damaged record from an outage. Any other
// error from a Store or Keyer is treated as the backend being unavailable.
var (
	// ErrNotFound: Store has no record under the token.
	ErrNotFound = errors.New("vaultclient: not found")
	// ErrExists: Store.Put found a record under the token already and
	// wrote nothing.
	ErrExists = errors.New("vaultclient: token already exists")
	// ErrDeleted: TokenizeStore.PutNew found the token tombstoned (its
	// card was stored once and has since been deleted or expired) and
	// wrote nothing.
	ErrDeleted = errors.New("vaultclient: token was deleted")
	// ErrIntegrity: Keyer could not authenticate a sealed blob: wrong
	// binding, altered ciphertext, or a blob sealed by another key.
	ErrIntegrity = errors.New("vaultclient: message authentication failed")
	// ErrKeyRetired: Keyer does not hold the key version a blob names
	// (retired, or never existed).
	ErrKeyRetired = errors.New("vaultclient: key version not available")
)
