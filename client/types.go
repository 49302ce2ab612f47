package client

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// TokenInfo is the answer to a tokenize: the token and what may be shown
// of the card. The number and the CVC are never returned.
type TokenInfo struct {
	Token       string `json:"token"` // tok_…
	Last4       string `json:"last4"`
	Brand       string `json:"brand"` // visa, mastercard, amex, …
	ExpMonth    int    `json:"exp_month"`
	ExpYear     int    `json:"exp_year"`
	Fingerprint string `json:"fingerprint"` // equal for equal numbers
}

// ForwardRequest is one forward. Placeholders in Body and in header values
// ({{card.number}}, {{card.cvc}}, {{card.exp_month}}, {{card.exp_year}},
// {{card.name}}, or {{cards.NAME.FIELD}} with Cards) are filled in by the
// gateway; the request itself never holds card data.
type ForwardRequest struct {
	Destination string      `json:"destination"`    // the allowlist entry id
	URL         string      `json:"url"`            // https; must match the entry
	Method      string      `json:"method"`         // GET, POST, PUT, PATCH or DELETE
	Card        string      `json:"card,omitempty"` // the token (tok_…); or Cards
	Headers     http.Header `json:"headers,omitempty"`
	Body        string      `json:"body,omitempty"` // the body template
	// DryRun checks the budget, the kill switch, the allowlist and the
	// template without reading the card or sending anything; the answer's
	// DryRun shows what would be sent.
	DryRun bool `json:"dry_run,omitempty"`
	// Cards are named tokens for a template that sends several cards
	// ({{cards.NAME.FIELD}}); a request has Card or Cards, not both.
	Cards map[string]string `json:"cards,omitempty"`

	// IdempotencyKey, when set, is sent as the Idempotency-Key instead of
	// a key the client generates: 1–128 of A-Z a-z 0-9 - _ . : (for
	// example an order id and a purpose). It is sent even with
	// WithoutIdempotencyKeys.
	IdempotencyKey string `json:"-"`
}

// String describes the request without header values or the body, which
// may hold processor credentials or personal data.
func (r ForwardRequest) String() string {
	names := make([]string, 0, len(r.Headers))
	for k := range r.Headers {
		names = append(names, k)
	}
	slices.Sort(names)
	cards := make([]string, 0, len(r.Cards))
	for k := range r.Cards {
		cards = append(cards, k)
	}
	slices.Sort(cards)
	return fmt.Sprintf("client.ForwardRequest{Destination:%q Method:%q URL:%q Card:%q Cards:[%s] Headers:[%s] Body:%d bytes DryRun:%t}",
		r.Destination, r.Method, r.URL, r.Card, strings.Join(cards, " "), strings.Join(names, " "), len(r.Body), r.DryRun)
}

// GoString is String, for %#v.
func (r ForwardRequest) GoString() string { return r.String() }

// Format prints String for every verb.
func (r ForwardRequest) Format(f fmt.State, verb rune) { formatMasked(f, verb, r.String()) }

// ForwardResponse is the gateway's answer to a forward: the processor's
// status, headers and body (every card number masked), or, for a dry run,
// what would have been sent.
type ForwardResponse struct {
	ForwardID        string      `json:"forward_id"`
	AllowlistVersion uint64      `json:"allowlist_version"`
	Outcome          Outcome     `json:"outcome"`
	Status           int         `json:"status"`  // the processor's HTTP status
	Headers          http.Header `json:"headers"` // hop-by-hop, Set-Cookie and configured headers removed
	Body             string      `json:"body"`    // card numbers masked; see BodyBytes
	// BodyEncoding is "base64" when the processor's bytes were not UTF-8.
	BodyEncoding string `json:"body_encoding,omitempty"`
	// Location is a 3xx answer's Location, masked; redirects are never
	// followed.
	Location string `json:"location,omitempty"`
	// DryRun is set on a dry run only.
	DryRun *Preview `json:"dry_run,omitempty"`
	// ReturnedCards are the cards the processor's answer held at the
	// entry's response.returned_cards paths, each tokenized or, with
	// Error, masked. Empty when there were none.
	ReturnedCards []ReturnedCard `json:"returned_cards,omitempty"`

	// RequestID is the gateway's id of the answering request.
	RequestID string `json:"-"`
	// IdempotencyKey is the key the forward carried; empty if none.
	IdempotencyKey string `json:"-"`
	// Replayed is true when the gateway returned the stored answer of an
	// earlier request with the same key, and sent nothing this time.
	Replayed bool `json:"-"`
}

// ReturnedCard is a card the processor returned: its new token, or why
// there is none (not_a_card, invalid_expiry, tokenize_failed,
// too_many_cards).
type ReturnedCard struct {
	Path  string `json:"path"`
	Token string `json:"token,omitempty"`
	Last4 string `json:"last4,omitempty"`
	Brand string `json:"brand,omitempty"`
	Error string `json:"error,omitempty"`
}

// BodyBytes returns the processor's body, decoded from base64 when
// BodyEncoding says so.
func (r *ForwardResponse) BodyBytes() ([]byte, error) {
	switch r.BodyEncoding {
	case "":
		return []byte(r.Body), nil
	case "base64":
		b, err := base64.StdEncoding.DecodeString(r.Body)
		if err != nil {
			return nil, fmt.Errorf("client: body_encoding base64: %w", err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("client: body_encoding %q is not known", r.BodyEncoding)
}

// Preview is what a dry run would have sent, each card field shown as a
// stand-in such as "[card.number]".
type Preview struct {
	Method  string      `json:"method"`
	URL     string      `json:"url"`
	Headers http.Header `json:"headers"`
	Body    string      `json:"body"`
}

// errorBody is the gateway's error answer (Error in openapi.yaml).
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      string  `json:"code"`
	Message   string  `json:"message"`
	RequestID string  `json:"request_id"`
	Outcome   Outcome `json:"outcome,omitempty"`
}
