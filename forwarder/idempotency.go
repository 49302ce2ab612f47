package forwarder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
)

// IdempotencyStore keeps Idempotency-Key claims and the answers they
// produced, scoped to the caller. *idempotency.RedisStore implements it.
// owner is the forward id of the request holding the claim.
//
//   - Claim returns (nil, nil) when the caller now owns the key, the stored
//     answer when the key's request already completed, or an error whose
//     ErrorCode is idempotency_key_reused (another request used the key),
//     idempotency_in_progress (still running after the store's wait) or
//     idempotency_outcome_unknown (it may have been sent and its answer
//     was lost); any other error means the store failed.
//   - MarkSending is called after the intent record and before the card is
//     sent: from then on the key can never be claimed again, even if this
//     process dies. It fails if the claim was lost (taken over after its
//     lease ran out).
//   - Complete stores the answer; Release gives the key up because nothing
//     was sent, so a retry with the same key may send.
type IdempotencyStore interface {
	Claim(ctx context.Context, scope, key, fingerprint, owner string) ([]byte, error)
	MarkSending(ctx context.Context, scope, key, owner string) error
	Complete(ctx context.Context, scope, key, owner string, answer []byte) error
	Release(ctx context.Context, scope, key, owner string) error
}

// MaxIdempotencyKeyBytes bounds the Idempotency-Key header.
const MaxIdempotencyKeyBytes = 128

// validIdempotencyKey allows what UUIDs, ULIDs and the usual
// order-id-plus-attempt schemes need, and nothing that could smuggle
// anything into a log or a Redis key: 1–128 of A-Z a-z 0-9 - _ . :
func validIdempotencyKey(k string) bool {
	if k == "" || len(k) > MaxIdempotencyKeyBytes {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// credentialHeaders have their values left out of the request fingerprint:
// a digest of a credential is no business of the idempotency store, and a
// rotated API key does not make a different request.
var credentialHeaders = map[string]bool{"Authorization": true, "Proxy-Authorization": true, "Cookie": true, "X-Api-Key": true}

// fingerprint is the sha256 of the canonical request: what decides whether
// a second use of a key is "the same request". The request holds a token,
// never card data.
func fingerprint(r *Request) string {
	type canon struct {
		Destination string              `json:"destination"`
		URL         string              `json:"url"`
		Method      string              `json:"method"`
		Card        string              `json:"card"`
		Headers     map[string][]string `json:"headers"`
		Body        string              `json:"body"`
		// Left out when empty, so a single-card request keeps the
		// fingerprint it had before named cards existed.
		Cards map[string]string `json:"cards,omitempty"`
	}
	c := canon{Destination: r.Destination, URL: r.URL, Method: r.Method, Card: r.Card, Cards: r.Cards, Body: r.Body, Headers: map[string][]string{}}
	for name, vals := range r.Headers {
		k := http.CanonicalHeaderKey(name)
		if credentialHeaders[k] {
			c.Headers[k] = nil
			continue
		}
		c.Headers[k] = append(c.Headers[k], vals...)
		slices.Sort(c.Headers[k])
	}
	b, _ := json.Marshal(c) // cannot fail: strings and maps of strings
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// stored is what the idempotency store keeps: the answer the caller got,
// with every card number already masked (Response bodies and headers are
// redacted before they exist), or the error it got.
type stored struct {
	Response *Response    `json:"response,omitempty"`
	Error    *storedError `json:"error,omitempty"`
}

type storedError struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Outcome Outcome `json:"outcome"`
}

// claim takes the key for fw. It returns a replayed answer, an error, or
// (nil, nil) when fw now owns the key.
func (f *Forwarder) claim(ctx context.Context, fw *forward, r *Request) (*Response, *Error) {
	// No deadline of ours: the store bounds each call and its wait for a
	// concurrent duplicate.
	raw, err := f.idem.Claim(ctx, r.Caller, r.IdempotencyKey, fingerprint(r), fw.id)
	if err != nil {
		return nil, idempotencyError(err)
	}
	if raw == nil {
		fw.claimed = true
		return nil, nil
	}
	fw.replayed = true
	var s stored
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, newError(CodeInternal, NotSent, "the stored answer for this key is unreadable", err)
	}
	switch {
	case s.Response != nil:
		s.Response.Replayed = true
		return s.Response, nil
	case s.Error != nil:
		return nil, &Error{Code: s.Error.Code, Message: s.Error.Message, Outcome: s.Error.Outcome, Replayed: true}
	}
	return nil, newError(CodeInternal, NotSent, "the stored answer for this key is empty", nil)
}

// idempotencyError maps a store error to an *Error. An in-progress or
// unknown earlier request may have sent the card, so those say
// sent_no_response: the caller must not retry under a new key blindly.
func idempotencyError(err error) *Error {
	e := passThrough(err, "the idempotency store is unavailable; nothing was sent")
	switch e.Code {
	case CodeInternal:
		e.Code = CodeIdempotencyUnavailable
	case CodeIdempotencyInProgress, CodeIdempotencyOutcomeUnknown:
		e.Outcome = SentNoResponse
	}
	return e
}

// settle stores the answer under the key, or releases the key when
// nothing was sent. It runs whatever the caller does (the answer must be
// kept for the retry that a hang-up will provoke), under its own deadline.
// A failure is logged: a later request with the key then gets
// idempotency_outcome_unknown (or a fresh attempt, if the claim was never
// marked sending), never a second send.
func (f *Forwarder) settle(ctx context.Context, fw *forward, r *Request, resp *Response, e *Error) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.checkTO)
	defer cancel()
	var err error
	op := "complete"
	if e != nil && e.Outcome == NotSent {
		op = "release"
		err = f.idem.Release(sctx, r.Caller, r.IdempotencyKey, fw.id)
	} else {
		var s stored
		if e != nil {
			s.Error = &storedError{Code: e.Code, Message: e.Message, Outcome: e.Outcome}
		} else {
			s.Response = resp
		}
		raw, merr := json.Marshal(s)
		if merr != nil {
			err = merr
		} else {
			err = f.idem.Complete(sctx, r.Caller, r.IdempotencyKey, fw.id, raw)
		}
	}
	if err != nil {
		f.log.LogAttrs(ctx, slog.LevelError, "forwarder: idempotency "+op+" failed",
			slog.String("forward_id", fw.id), slog.String("request_id", r.RequestID),
			slog.String("cause_class", causeClass(err)))
	}
}
