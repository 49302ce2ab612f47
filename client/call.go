package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"reflect"
	"sync/atomic"
	"time"
)

// Header names of the wire format.
const (
	headerIdempotencyKey = "Idempotency-Key"
	headerReplayed       = "Idempotent-Replayed"
	headerRequestID      = "X-Request-Id"
	headerRetryAfter     = "Retry-After"
)

// userAgent names the client in the gateway's access log.
const userAgent = "cardgate-go-client/1"

// call is one logical call, tried one or more times.
type call struct {
	op     string // "tokenize", "forward", or a card call (lifecycle.go)
	method string // "" means POST
	path   string
	body   []byte
	status int // the status of success
	// forward is set for /v1/forward, whose answers carry an outcome.
	forward bool
	dryRun  bool
	key     string // the Idempotency-Key of every attempt; "" for none
	card    bool   // a card call after tokenizing (lifecycle.go)
}

// answerMeta is what a successful answer says in its headers.
type answerMeta struct {
	requestID string
	replayed  bool
}

// call runs cl until it succeeds, fails in a way that must not be retried,
// or runs out of attempts or time, and decodes the answer into out.
func (c *Client) call(ctx context.Context, cl call, out any) (answerMeta, error) {
	mayHaveSent := false // some attempt may have sent the card
	var prev *Error
	for attempt := 1; ; attempt++ {
		meta, e, wrote := c.attempt(ctx, cl, out)
		if e == nil {
			return meta, nil
		}
		if prev != nil && e.Code == ErrCVCNotAvailable {
			// The earlier attempt used up the CVC (a forward that reads it
			// consumes it, even when it then sends nothing): its error,
			// not this consequence, says what went wrong.
			e = prev
		}
		e.Attempts, e.IdempotencyKey = attempt, cl.key
		retry := c.retryable(ctx, cl, e, wrote)
		if cl.forward && !cl.dryRun {
			// The call's outcome is the worst of its attempts': an
			// attempt that may have sent the card is not undone by a
			// later one that did not.
			if e.Outcome == NotSent && mayHaveSent {
				e.Outcome = SentNoResponse
			}
			if e.Outcome != NotSent {
				mayHaveSent = true
			}
		}
		if !retry || attempt >= c.maxAttempts || e == prev {
			return answerMeta{}, e
		}
		prev = e
		wait := c.backoffFor(attempt)
		if e.RetryAfter > 0 {
			if e.RetryAfter > c.maxRetryAfter {
				return answerMeta{}, e
			}
			wait = max(wait, e.RetryAfter)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			return answerMeta{}, e // waiting would only end in the deadline
		}
		if !c.sleep(ctx, wait) {
			return answerMeta{}, e
		}
	}
}

// attempt sends cl once. It returns the answer's headers on success, or
// the failure and whether the request may have reached the gateway.
func (c *Client) attempt(ctx context.Context, cl call, out any) (answerMeta, *Error, bool) {
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{
		// Once the headers are out the gateway may act on the request;
		// before that it cannot have.
		WroteHeaders: func() { wrote.Store(true) },
	}
	method := cl.method
	if method == "" {
		method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), method, c.base+cl.path, bytes.NewReader(cl.body))
	if err != nil {
		return answerMeta{}, c.noAnswer(cl, false, 0, "", err), false
	}
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if cl.key != "" {
		req.Header.Set(headerIdempotencyKey, cl.key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return answerMeta{}, c.noAnswer(cl, wrote.Load(), 0, "", err), wrote.Load()
	}
	defer resp.Body.Close()
	meta := answerMeta{requestID: resp.Header.Get(headerRequestID), replayed: resp.Header.Get(headerReplayed) == "true"}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, c.maxResponseBytes+1))
	if err == nil && int64(len(raw)) > c.maxResponseBytes {
		err = fmt.Errorf("the answer is larger than %d bytes (WithMaxResponseBytes)", c.maxResponseBytes)
	}
	if err != nil {
		return answerMeta{}, c.noAnswer(cl, true, resp.StatusCode, meta.requestID, ctxOr(ctx, err)), true
	}
	if resp.StatusCode == cl.status && out == nil {
		return meta, nil, true // an answer without a body (204)
	}
	if resp.StatusCode == cl.status {
		// From zero: a decode that failed on an earlier attempt may have
		// filled some fields. No decoder error text: it can quote the
		// answer's bytes.
		reflect.ValueOf(out).Elem().SetZero()
		if json.Unmarshal(raw, out) != nil {
			return answerMeta{}, c.noAnswer(cl, true, resp.StatusCode, meta.requestID, ctxOr(ctx, errors.New("the answer is not the expected JSON"))), true
		}
		return meta, nil, true
	}
	var eb errorBody
	if json.Unmarshal(raw, &eb) != nil || eb.Error.Code == "" {
		return answerMeta{}, c.noAnswer(cl, true, resp.StatusCode, meta.requestID,
			ctxOr(ctx, fmt.Errorf("an HTTP %d answer that is not a gateway error", resp.StatusCode))), true
	}
	e := &Error{
		Op:         cl.op,
		Code:       Code(eb.Error.Code),
		Message:    eb.Error.Message,
		Outcome:    eb.Error.Outcome,
		Status:     resp.StatusCode,
		RequestID:  eb.Error.RequestID,
		RetryAfter: parseRetryAfter(resp.Header.Get(headerRetryAfter), time.Now()),
		Replayed:   meta.replayed,
	}
	if e.RequestID == "" {
		e.RequestID = meta.requestID
	}
	switch {
	case !cl.forward:
		e.Outcome = ""
	case cl.dryRun:
		e.Outcome = NotSent // a dry run never sends
	case e.Outcome == "":
		// A forward's error always says; one that does not is taken for
		// the worst.
		e.Outcome = SentNoResponse
	}
	return answerMeta{}, e, true
}

// noAnswer is the *Error of an attempt without a usable answer.
// ctxOr names the context's end as the cause when the context ended:
// a gateway cut off by the caller's deadline can leave a short or empty
// answer behind, and the deadline is what the caller must see.
func ctxOr(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	return err
}

func (c *Client) noAnswer(cl call, wrote bool, status int, requestID string, cause error) *Error {
	e := &Error{Op: cl.op, Status: status, RequestID: requestID, Err: cause}
	if cl.forward {
		e.Outcome = NotSent
		if wrote && !cl.dryRun {
			e.Outcome = SentNoResponse
		}
	}
	return e
}
