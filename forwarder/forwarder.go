package forwarder

import (
	"context"
	"errors"
	"net/http"
)

// Request is one forward, as decoded from POST /v1/forward. Caller is set
// from the authenticated identity, never from the body.
type Request struct {
	Destination string      `json:"destination"`
	URL         string      `json:"url"`
	Method      string      `json:"method"`
	Card        string      `json:"card"`
	Headers     http.Header `json:"headers,omitempty"`
	Body        string      `json:"body,omitempty"`

	Caller    string `json:"-"`
	RequestID string `json:"-"`
}

// Outcome says whether the card left the gateway.
type Outcome string

// Outcomes. The zero value is not one of them.
const (
	NotSent        Outcome = "not_sent"         // nothing reached the processor
	SentNoResponse Outcome = "sent_no_response" // bytes may have reached it; no answer
	Answered       Outcome = "answered"         // the processor answered
)

// Response is what the caller gets back.
type Response struct {
	ForwardID        string      `json:"forward_id"`
	AllowlistVersion uint64      `json:"allowlist_version"`
	Outcome          Outcome     `json:"outcome"`
	Status           int         `json:"status"`
	Headers          http.Header `json:"headers"`
	Body             string      `json:"body"` // card numbers masked
}

// Forwarder runs the forward path.
type Forwarder struct{}

// Forward checks, fills in and sends r. Errors are *Error.
func (f *Forwarder) Forward(ctx context.Context, r *Request) (*Response, error) {
	return nil, errors.New("forwarder: not implemented")
}
