package forwarder

import (
	"errors"
	"time"
)

// Error codes owned by this package. They are API: callers and the HTTP
// layer branch on them, so they never change meaning. Codes from the
// allowlist (destination_not_allowed, method_not_allowed, …) and the card
// vault pass through unchanged inside an *Error.
const (
	CodeInvalidRequest        = "invalid_request"               // a field of the request is malformed; Message names it
	CodeInvalidTemplate       = "invalid_template"              // malformed or unknown placeholder, a placeholder in a slot that may not carry one (URL, query, an unlisted header, an unsupported body type), or a body that does not parse as its Content-Type
	CodeLiteralCard           = "literal_card_in_request"       // the caller typed something that looks like a card number
	CodeDestinationNotAllowed = "destination_not_allowed"       // the URL is outside every entry, or is not a plain https URL
	CodeAddressForbidden      = "destination_address_forbidden" // the host is, or resolves to, a special-purpose address
	CodeCVCNotAvailable       = "cvc_not_available"             // the template needs the CVC but the card holds none (expired or used)
	CodeDNSFailure            = "dns_failure"                   // the destination host did not resolve
	CodeUpstreamConnectFailed = "upstream_connect_failed"       // no TCP connection could be made; nothing was sent
	CodeUpstreamTLSError      = "upstream_tls_error"            // the TLS handshake or certificate check failed; nothing was sent
	CodeUpstreamTimeout       = "upstream_timeout"              // the request may have reached the processor but no answer came in time
	CodeUpstreamError         = "upstream_error"                // the exchange failed after it started (connection lost, body cut off, an encoding we cannot scan)
	CodeUpstreamTooLarge      = "upstream_response_too_large"   // the processor answered with more than the entry's byte cap
	CodeCanceled              = "request_canceled"              // the caller went away
	CodeInternal              = "internal_error"                // a bug or a broken dependency; details only in the server log

	CodeAuditUnavailable      = "audit_unavailable"      // the intent record could not be made durable; nothing was sent
	CodeTokenNotFound         = "token_not_found"        // as vaultclient's: also the answer for a canary token
	CodeInvalidName           = "invalid_name"           // as vaultclient's: the card's stored name holds a card-like number (stored before tokenize refused them)
	CodeStoreUnavailable      = "store_unavailable"      // as vaultclient's: also when the canary set cannot be read
	CodeRateLimited           = "rate_limited"           // over a budget; RetryAfter says when to come back
	CodeRateLimitUnavailable  = "rate_limit_unavailable" // the budget store did not answer; refused, since budgets are a control
	CodeDestinationDisabled   = "destination_disabled"   // an operator disabled the destination (or every destination)
	CodeKillSwitchUnavailable = "killswitch_unavailable" // the kill switch state is too old to trust; refused until it is read again

	CodeInvalidIdempotencyKey     = "invalid_idempotency_key"     // the Idempotency-Key header is malformed
	CodeIdempotencyKeyReused      = "idempotency_key_reused"      // the key was used for a different request
	CodeIdempotencyInProgress     = "idempotency_in_progress"     // a request with this key is still running; ask again later
	CodeIdempotencyOutcomeUnknown = "idempotency_outcome_unknown" // the request with this key may have been sent and its answer was lost
	CodeIdempotencyUnavailable    = "idempotency_unavailable"     // the idempotency store did not answer; nothing was sent
	CodeIdempotencyNotSupported   = "idempotency_not_supported"   // this gateway has no idempotency store (bolt mode)
)

// Error is the only error type Forward returns. Code, Message and Class are
// safe to show and to log; Err is the internal cause, kept for errors.Is and
// errors.As only, and may be nil. No field ever holds card data or the
// rendered request.
//
// The cause's text is never part of Error(), and this package never logs,
// records or traces it: a cause can quote what a processor sent (net/http
// quotes a malformed header or status line in its errors, and a processor
// can echo the request's CVC, expiry and name there) or what a caller sent.
// Class says what kind of failure it was instead.
type Error struct {
	Code    string
	Message string
	// Outcome says whether the card may have left the gateway. It is always
	// set; a caller may retry blindly only on NotSent.
	Outcome Outcome
	// Class is the kind of the internal cause, one of the Class constants
	// (tls, dns, timeout, malformed_response, …), derived from the cause's
	// type and from how far the exchange got, never from its text. Empty
	// when there is no cause.
	Class string
	Err   error
	// RetryAfter, when positive, is how long the caller should wait before
	// trying again (rate_limited).
	RetryAfter time.Duration
	// Replayed is true when this is the stored answer to an earlier
	// request with the same Idempotency-Key.
	Replayed bool
}

// Error returns "forwarder: CODE: MESSAGE" and nothing of the cause, so
// that any %v, log attribute or wrapping of an *Error is safe to write.
func (e *Error) Error() string {
	s := "forwarder: " + e.Code
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// ErrorCode returns the stable code.
func (e *Error) ErrorCode() string { return e.Code }

// PublicMessage returns the message meant for the caller.
func (e *Error) PublicMessage() string { return e.Message }

// publicError is what allowlist and vaultclient errors implement.
type publicError interface {
	ErrorCode() string
	PublicMessage() string
}

func newError(code string, outcome Outcome, msg string, err error) *Error {
	return &Error{Code: code, Message: msg, Outcome: outcome, Class: causeClass(err), Err: err}
}

// notSent is shorthand for the errors raised before any byte left.
func notSent(code, msg string) *Error { return newError(code, NotSent, msg, nil) }

// passThrough wraps an error from a collaborator. A typed error keeps its own
// code and message, so the caller sees e.g. caller_not_allowed; anything else
// is an internal error whose cause only reaches the log.
func passThrough(err error, fallbackMsg string) *Error {
	var fe *Error
	if errors.As(err, &fe) {
		return fe
	}
	var pe publicError
	if errors.As(err, &pe) && pe.ErrorCode() != "" {
		return newError(pe.ErrorCode(), NotSent, pe.PublicMessage(), err)
	}
	return newError(CodeInternal, NotSent, fallbackMsg, err)
}
