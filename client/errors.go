package client

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// Code is a stable error code of the gateway (docs/errors.md). Each is
// also an error value for errors.Is: errors.Is(err, ErrRateLimited) holds
// for an *Error whose Code is rate_limited. A code this package does not
// know yet still arrives in Error.Code.
type Code string

// Error returns "client: " and the code.
func (c Code) Error() string { return "client: " + string(c) }

// The gateway's error codes, as docs/errors.md lists them.
const (
	ErrInvalidJSON                 Code = "invalid_json"
	ErrInvalidRequest              Code = "invalid_request"
	ErrRequestTooLarge             Code = "request_too_large"
	ErrRequestHeadersTooLarge      Code = "request_headers_too_large"
	ErrUnsupportedMediaType        Code = "unsupported_media_type"
	ErrUnsupportedCharset          Code = "unsupported_charset"
	ErrUnauthenticated             Code = "unauthenticated"
	ErrNotFound                    Code = "not_found"
	ErrHTTPMethodNotAllowed        Code = "http_method_not_allowed"
	ErrInvalidTemplate             Code = "invalid_template"
	ErrLiteralCardInRequest        Code = "literal_card_in_request"
	ErrDestinationNotAllowed       Code = "destination_not_allowed"
	ErrDestinationAddressForbidden Code = "destination_address_forbidden"
	ErrMethodNotAllowed            Code = "method_not_allowed"
	ErrCallerNotAllowed            Code = "caller_not_allowed"
	ErrCardFieldNotAllowed         Code = "card_field_not_allowed"
	ErrCardNotAllowed              Code = "card_not_allowed"
	ErrCredentialNotAllowed        Code = "credential_not_allowed"
	ErrCredentialUnavailable       Code = "credential_unavailable"
	ErrSigningFailed               Code = "signing_failed"
	ErrAllowlistExpired            Code = "allowlist_expired"
	ErrAllowlistUnavailable        Code = "allowlist_unavailable"
	ErrInvalidCardNumber           Code = "invalid_card_number"
	ErrInvalidExpiry               Code = "invalid_expiry"
	ErrCardExpired                 Code = "card_expired"
	ErrInvalidCVC                  Code = "invalid_cvc"
	ErrInvalidName                 Code = "invalid_name"
	ErrTokenNotFound               Code = "token_not_found"
	ErrCVCNotAvailable             Code = "cvc_not_available"
	ErrKeyRetired                  Code = "key_retired"
	ErrInvalidUpdate               Code = "invalid_update"
	ErrOperationNotPermitted       Code = "operation_not_permitted"
	ErrStoreUnavailable            Code = "store_unavailable"
	ErrKeyBackendUnavailable       Code = "key_backend_unavailable"
	ErrAuditUnavailable            Code = "audit_unavailable"
	ErrRateLimited                 Code = "rate_limited"
	ErrRateLimitUnavailable        Code = "rate_limit_unavailable"
	ErrDestinationDisabled         Code = "destination_disabled"
	ErrKillSwitchUnavailable       Code = "killswitch_unavailable"
	ErrInvalidIdempotencyKey       Code = "invalid_idempotency_key"
	ErrIdempotencyKeyReused        Code = "idempotency_key_reused"
	ErrIdempotencyInProgress       Code = "idempotency_in_progress"
	ErrIdempotencyOutcomeUnknown   Code = "idempotency_outcome_unknown"
	ErrIdempotencyUnavailable      Code = "idempotency_unavailable"
	ErrIdempotencyNotSupported     Code = "idempotency_not_supported"
	ErrDNSFailure                  Code = "dns_failure"
	ErrUpstreamConnectFailed       Code = "upstream_connect_failed"
	ErrUpstreamTLSError            Code = "upstream_tls_error"
	ErrUpstreamTimeout             Code = "upstream_timeout"
	ErrUpstreamError               Code = "upstream_error"
	ErrUpstreamResponseTooLarge    Code = "upstream_response_too_large"
	ErrRequestCanceled             Code = "request_canceled"
	ErrInternal                    Code = "internal_error"
)

// ErrNoAnswer matches, with errors.Is, an *Error for which no usable answer
// came from the gateway: a connection or TLS failure, a timeout, an answer
// cut short, larger than the client reads, or not in the gateway's shape
// (a proxy's error page, say). Such an *Error has an empty Code.
var ErrNoAnswer = errors.New("client: no usable answer from the gateway")

// Outcome says whether a forward's card may have left the gateway.
type Outcome string

// Outcomes, as the gateway reports them.
const (
	NotSent        Outcome = "not_sent"         // no byte of the request reached the processor
	SentNoResponse Outcome = "sent_no_response" // it may have reached the processor; no answer came back
	Answered       Outcome = "answered"         // the processor answered
)

// Error is a failed call: the gateway's error answer, or no usable answer.
// Every field is safe to log: the gateway's messages never hold card data,
// and the client never quotes a request body.
type Error struct {
	// Op is the call: "tokenize" or "forward".
	Op string
	// Code is the gateway's stable code; empty when no usable answer came.
	Code Code
	// Message is the gateway's explanation, for people; never branch on it.
	Message string
	// Outcome is, for a forward, whether the card may have left the
	// gateway over all the call's attempts. Empty for a tokenize.
	Outcome Outcome
	// Status is the HTTP status of the last answer; 0 when none came.
	Status int
	// RequestID is the gateway's id of the last attempt (X-Request-Id),
	// which finds it in the gateway's log.
	RequestID string
	// RetryAfter is how long the gateway asked the caller to wait.
	RetryAfter time.Duration
	// IdempotencyKey is the key every attempt of a forward carried; empty
	// when none was sent. Forwarding the same request again with this key
	// returns what the gateway recorded, without sending twice.
	IdempotencyKey string
	// Replayed is true when the answer was stored for an earlier request
	// with the same key (Idempotent-Replayed).
	Replayed bool
	// Attempts is how many times the call was tried.
	Attempts int
	// Err is the cause when no usable answer came; nil otherwise.
	Err error
}

// Error returns one line: the call, the code or "no usable answer", the
// status and outcome, the gateway's message and request id, and the cause
// of a missing answer.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("client: ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	if e.Code != "" {
		b.WriteString(string(e.Code))
	} else {
		b.WriteString("no usable answer")
	}
	var detail []string
	if e.Status != 0 {
		detail = append(detail, strconv.Itoa(e.Status))
	}
	if e.Outcome != "" {
		detail = append(detail, string(e.Outcome))
	}
	if e.Attempts > 1 {
		detail = append(detail, strconv.Itoa(e.Attempts)+" attempts")
	}
	if len(detail) > 0 {
		b.WriteString(" (" + strings.Join(detail, ", ") + ")")
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" [" + e.RequestID + "]")
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause of a missing answer.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is e's Code, or ErrNoAnswer for an *Error
// without a code.
func (e *Error) Is(target error) bool {
	if c, ok := target.(Code); ok {
		return e.Code != "" && e.Code == c
	}
	return target == ErrNoAnswer && e.Code == ""
}
