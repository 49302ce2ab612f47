package api

import (
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/cardgate/cardgate/forwarder"
)

// Error is an API-level error: a stable code and a message safe to show
// the caller.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string         { return "api: " + e.Code + ": " + e.Message }
func (e *Error) ErrorCode() string     { return e.Code }
func (e *Error) PublicMessage() string { return e.Message }

// coded is what every package's typed errors implement: a stable code and
// a message that carries no card data. The internal cause stays in the log.
type coded interface {
	ErrorCode() string
	PublicMessage() string
}

// Codes owned by the API layer.
const (
	CodeNotFound             = "not_found"
	CodeMethodNotAllowed     = "http_method_not_allowed"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeUnsupportedCharset   = "unsupported_charset"
	CodeInvalidJSON          = "invalid_json"
	CodeRequestTooLarge      = "request_too_large"
	CodeHeadersTooLarge      = "request_headers_too_large"
	CodeUnauthenticated      = "unauthenticated"
	CodeInternal             = "internal_error"
)

// statusByCode is the one table from error code to HTTP status. A code
// missing from it is answered as an internal error, so a new code cannot
// slip out with a success status. README.md and openapi.yaml document it.
var statusByCode = map[string]int{
	CodeNotFound:             http.StatusNotFound,
	CodeMethodNotAllowed:     http.StatusMethodNotAllowed,
	CodeUnsupportedMediaType: http.StatusUnsupportedMediaType,
	CodeUnsupportedCharset:   http.StatusUnsupportedMediaType,
	CodeInvalidJSON:          http.StatusBadRequest,
	CodeRequestTooLarge:      http.StatusRequestEntityTooLarge,
	CodeHeadersTooLarge:      http.StatusRequestHeaderFieldsTooLarge,
	CodeUnauthenticated:      http.StatusUnauthorized,
	CodeInternal:             http.StatusInternalServerError,

	// forward request and template
	"invalid_request":         http.StatusBadRequest,
	"invalid_template":        http.StatusUnprocessableEntity,
	"literal_card_in_request": http.StatusUnprocessableEntity,

	// allowlist decisions
	"destination_not_allowed":       http.StatusForbidden,
	"destination_address_forbidden": http.StatusForbidden,
	"method_not_allowed":            http.StatusForbidden,
	"caller_not_allowed":            http.StatusForbidden,
	"card_field_not_allowed":        http.StatusForbidden,
	"credential_not_allowed":        http.StatusForbidden,
	"card_not_allowed":              http.StatusForbidden,
	"allowlist_expired":             http.StatusServiceUnavailable,
	"allowlist_unavailable":         http.StatusServiceUnavailable,

	// cards
	"invalid_card_number":     http.StatusUnprocessableEntity,
	"invalid_expiry":          http.StatusUnprocessableEntity,
	"card_expired":            http.StatusUnprocessableEntity,
	"invalid_cvc":             http.StatusUnprocessableEntity,
	"invalid_name":            http.StatusUnprocessableEntity,
	"token_not_found":         http.StatusNotFound,
	"cvc_not_available":       http.StatusUnprocessableEntity,
	"store_unavailable":       http.StatusServiceUnavailable,
	"key_backend_unavailable": http.StatusServiceUnavailable,
	"key_retired":             http.StatusGone,

	// card lifecycle and permissions (cards.go)
	"invalid_update":          http.StatusUnprocessableEntity,
	"operation_not_permitted": http.StatusForbidden,

	// forward-path guards
	"audit_unavailable":           http.StatusServiceUnavailable,
	"rate_limited":                http.StatusTooManyRequests,
	"rate_limit_unavailable":      http.StatusServiceUnavailable,
	"destination_disabled":        http.StatusForbidden,
	"killswitch_unavailable":      http.StatusServiceUnavailable,
	"invalid_idempotency_key":     http.StatusBadRequest,
	"idempotency_key_reused":      http.StatusConflict,
	"idempotency_in_progress":     http.StatusConflict,
	"idempotency_outcome_unknown": http.StatusConflict,
	"idempotency_unavailable":     http.StatusServiceUnavailable,
	"idempotency_not_supported":   http.StatusNotImplemented,

	// processor credentials and request signing
	"credential_unavailable": http.StatusServiceUnavailable,
	"signing_failed":         http.StatusInternalServerError,

	// upstream
	"dns_failure":                 http.StatusBadGateway,
	"upstream_tls_error":          http.StatusBadGateway,
	"upstream_connect_failed":     http.StatusBadGateway,
	"upstream_error":              http.StatusBadGateway,
	"upstream_timeout":            http.StatusGatewayTimeout,
	"upstream_response_too_large": http.StatusBadGateway,

	// The caller went away mid-forward. Nobody reads this answer, but the
	// log and the access line carry it (499, as nginx records it).
	"request_canceled": 499,
}

// Codes lists every documented error code, for the OpenAPI test.
func Codes() []string {
	out := make([]string, 0, len(statusByCode))
	for c := range statusByCode {
		out = append(out, c)
	}
	return out
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
	// Outcome says, for a forward, whether the card left the gateway.
	Outcome forwarder.Outcome `json:"outcome,omitempty"`
}

func errorCode(err error) string {
	var c coded
	if errors.As(err, &c) {
		if _, ok := statusByCode[c.ErrorCode()]; ok {
			return c.ErrorCode()
		}
	}
	return CodeInternal
}

func publicMessage(err error) string {
	var c coded
	if errors.As(err, &c) {
		if _, ok := statusByCode[c.ErrorCode()]; ok {
			return c.PublicMessage()
		}
	}
	return "internal error"
}

func writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := errorCode(err)
	d := errorDetail{Code: code, Message: publicMessage(err), RequestID: RequestID(r.Context())}
	var fe *forwarder.Error
	var ae *Error
	switch {
	case errors.As(err, &fe):
		d.Outcome = fe.Outcome
	case r.URL.Path == "/v1/forward" && errors.As(err, &ae):
		// The API layer refuses before the forwarder is called.
		d.Outcome = forwarder.NotSent
	}
	switch {
	case fe != nil && fe.RetryAfter > 0:
		// Whole seconds, rounded up: coming back early only earns another 429.
		w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(fe.RetryAfter.Seconds())), 10))
	case statusByCode[code] == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "5")
	}
	writeJSON(w, statusByCode[code], errorBody{Error: d})
}
