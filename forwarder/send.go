package forwarder

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"time"
	"unicode/utf8"

	"github.com/cardgate/cardgate/allowlist"
)

// sendCard detokenizes, renders, signs, writes the intent record and sends
// to the addresses decide checked, retrying only what certainly was not sent.
func (f *Forwarder) sendCard(ctx context.Context, fw *forward, r *Request, v *validated, al *allowlist.Allowlist, dest *allowlist.Destination, addrs *checkedAddrs) (*Response, *Error) {
	// 9. The credentials the placeholders and the signature use, before
	// the card: one the gateway cannot serve must not cost the CVC.
	var e *Error
	if fw.secrets, e = f.loadSecrets(dest, v); e != nil {
		return nil, e
	}

	// 10. The card, or the named cards (cards.go). A template that uses a
	// card's CVC consumes it in the same store operation as the read, so
	// that two concurrent forwards can never both send it; from here it
	// is gone whatever the outcome.
	cards, e := f.readCards(ctx, fw, r, v)
	if e != nil {
		return nil, e
	}
	sent := sentOf(cards, v)
	defer sent.clear()
	cv := withSecrets{cards, fw.secrets}
	if e := checkFreeFields(v.fields, v.cards, cv); e != nil {
		f.auditDenied(ctx, fw, e.Code)
		return nil, e
	}

	// 11. Render, into a pooled buffer that the request body owns; then
	// sign it as it will be sent (sign.go).
	body, hdr, e := f.render(v, cv)
	if e != nil {
		return nil, e
	}
	if e := f.sign(al.SHA256, dest, v, fw.secrets, hdr, body); e != nil {
		body.close()
		return nil, e
	}

	// 12. The intent record, durable before any byte of the card leaves.
	if e := f.auditIntent(ctx, fw, dest); e != nil {
		body.close()
		return nil, e
	}
	fw.intent = true
	if fw.claimed {
		// From here a crash leaves the key "outcome unknown", never free
		// for a second send.
		ictx, cancel := context.WithTimeout(ctx, f.checkTO)
		err := f.idem.MarkSending(ictx, r.Caller, r.IdempotencyKey, fw.id)
		cancel()
		if err != nil {
			body.close()
			// Whatever the key's state, this forward sent nothing: the
			// result record and the caller must say so.
			e := idempotencyError(err)
			e.Outcome = NotSent
			return nil, e
		}
	}

	// 13. Send and read; retry only a failure that sent nothing. Every
	// attempt dials the addresses checked in step 8, never a new lookup.
	// With MaxTimeout, attempts and backoff all end MaxTimeout after the
	// forward started, so the answer is written before the API server
	// gives up on the caller.
	sctx := withCheckedAddrs(ctx, addrs)
	if f.maxTimeout > 0 {
		var cancel context.CancelFunc
		sctx, cancel = context.WithDeadline(sctx, fw.start.Add(f.maxTimeout))
		defer cancel()
	}
	var resp *Response
	for attempt := 1; ; attempt++ {
		fw.attempts = attempt
		resp, e = f.send(sctx, fw, al.SHA256, v, dest, hdr, body, sent)
		if e == nil || !retryable(e) || attempt >= f.maxAttempts || !f.sleepBackoff(sctx, attempt) {
			break
		}
		if f.beforeRetry != nil {
			f.beforeRetry()
		}
		// The transport closed the last body; render a fresh one, and
		// sign it afresh (a new Date or created is fine).
		if body, hdr, e = f.render(v, cv); e != nil {
			break
		}
		if e = f.sign(al.SHA256, dest, v, fw.secrets, hdr, body); e != nil {
			body.close()
			break
		}
	}
	if e != nil {
		return nil, fw.secrets.scrub(e)
	}
	resp.ForwardID = fw.id
	resp.AllowlistVersion = fw.version
	return resp, nil
}

// render renders the body and the headers. A nil body is valid (no body).
func (f *Forwarder) render(v *validated, cv fieldValues) (*pooledBody, http.Header, *Error) {
	body, e := f.renderBody(v, cv)
	if e != nil {
		return nil, nil, e
	}
	hdr, e := v.renderHeaders(cv)
	if e != nil {
		body.close()
		return nil, nil, e
	}
	return body, hdr, nil
}

// routeFor returns the transport for the entry and host, building it on
// first use. The key includes the host because a wildcard entry admits
// several. Routes belong to one allowlist document: when the document
// changes, the old routes' idle connections are closed and the routes
// dropped, so a connection checked under an old policy is not reused.
func (f *Forwarder) routeFor(al string, d *allowlist.Destination, t *target) (*route, *Error) {
	return f.routeForKey(al, d, t, "")
}

// routeForKey is routeFor with the route's key already known (resolveChecked
// computed it for the forward's addresses); "" computes it.
func (f *Forwarder) routeForKey(al string, d *allowlist.Destination, t *target, key string) (*route, *Error) {
	if key == "" {
		key = routeKey(d.ID, t)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sha != al {
		for _, r := range f.routes {
			r.transport.CloseIdleConnections()
		}
		clear(f.routes)
		f.sha = al
	}
	if r, ok := f.routes[key]; ok {
		return r, nil
	}
	if len(f.routes) >= maxRoutes {
		// A wildcard entry admits any number of hosts; do not let them
		// grow the map without bound. In-flight forwards keep their
		// transports; only idle connections are closed.
		for _, r := range f.routes {
			r.transport.CloseIdleConnections()
		}
		clear(f.routes)
	}
	r, e := f.newRoute(t, d)
	if e != nil {
		return nil, e
	}
	f.routes[key] = r
	return r, nil
}

// entryTimeout is the bound on one upstream exchange under entry d: its
// own timeout or the default, capped by MaxTimeout. An auditor-approved
// entry may allow up to five minutes, more than the API server waits to
// write an answer.
func (f *Forwarder) entryTimeout(d *allowlist.Destination) time.Duration {
	t := f.timeout
	if d.Timeout > 0 {
		t = d.Timeout
	}
	if f.maxTimeout > 0 {
		t = min(t, f.maxTimeout)
	}
	return t
}

func (f *Forwarder) entryMaxResp(d *allowlist.Destination) int64 {
	if d.MaxResponseBytes > 0 {
		return d.MaxResponseBytes
	}
	return f.maxResp
}

// send performs one attempt of the exchange under its own span.
func (f *Forwarder) send(ctx context.Context, fw *forward, sha string, v *validated, d *allowlist.Destination, hdr http.Header, body *pooledBody, sent sentCards) (*Response, *Error) {
	ctx, span := f.tel.startUpstream(ctx, fw, d)
	resp, e := f.exchange(ctx, fw, sha, v, d, hdr, body, sent)
	f.tel.endUpstream(span, fw, resp, e)
	return resp, e
}

// exchange performs the exchange and turns the answer into a Response,
// masking card numbers and the CVCs the forward sent. Its steps: the route,
// the traced context, the round trip, the answer's framing, the capped
// read, and the masked Response.
func (f *Forwarder) exchange(ctx context.Context, fw *forward, sha string, v *validated, d *allowlist.Destination, hdr http.Header, body *pooledBody, sent sentCards) (*Response, *Error) {
	key := ""
	if c := checkedAddrsFrom(ctx); c != nil {
		key = c.route // resolveChecked's, for this entry and target
	}
	rt, e := f.routeForKey(sha, d, v.target, key)
	if e != nil {
		body.close()
		return nil, e
	}
	uctx, cancel := context.WithTimeout(ctx, f.entryTimeout(d))
	defer cancel()
	uctx, trace := f.traceUpstream(uctx, fw, body)

	// The request as sign signed it (sign.go).
	req := outboundRequest(v, hdr, body).WithContext(uctx)
	// The transport, not an http.Client: a RoundTrip is one exchange, so a
	// redirect comes back as an answer and is never followed (its target
	// was not checked against the allowlist).
	resp, err := rt.transport.RoundTrip(req)
	if trace.owned != nil {
		trace.owned.settle()
	}
	if err != nil {
		return nil, f.classifySendError(ctx, uctx, fw, err)
	}
	defer resp.Body.Close()
	if resp.TLS != nil {
		fw.setTLS(*resp.TLS)
	}

	maxBytes := f.entryMaxResp(d)
	if e := checkAnswerFraming(resp, maxBytes); e != nil {
		return nil, e
	}
	raw := f.getBuf()
	defer f.putBuf(raw)
	n, e := readAnswer(uctx, raw, resp.Body, maxBytes)
	if e != nil {
		return nil, e
	}
	return f.maskedResponse(ctx, fw, d, resp, (*raw)[:n], sent), nil
}

// upstreamTrace records on fw what the transport does with the request:
// which connection it got (so a failure can say whether anything may have
// been sent) and when the answer began. On an HTTP/1.1 connection it arms
// the one-write sender (onewrite.go) for a request with a body, before the
// request is written; exchange settles it once the transport is done.
// One allocation holds the trace and its state.
type upstreamTrace struct {
	f     *Forwarder
	fw    *forward
	body  *pooledBody
	owned *ownedConn // armed for this request, or nil
	ct    httptrace.ClientTrace
}

func (f *Forwarder) traceUpstream(ctx context.Context, fw *forward, body *pooledBody) (context.Context, *upstreamTrace) {
	t := &upstreamTrace{f: f, fw: fw, body: body}
	t.ct.GotConn = t.gotConn
	t.ct.GotFirstResponseByte = t.gotFirstResponseByte
	return httptrace.WithClientTrace(ctx, &t.ct), t
}

func (t *upstreamTrace) gotConn(ci httptrace.GotConnInfo) {
	t.fw.gotConn.Store(true)
	if ci.Conn == nil {
		return
	}
	if oc, ok := ci.Conn.(*ownedConn); ok && t.body != nil && t.body.len() > 0 {
		oc.arm(t.f, t.body.len())
		t.owned = oc
	}
	t.fw.remote.Store(ci.Conn.RemoteAddr().String())
	if tc, ok := ci.Conn.(interface{ ConnectionState() tls.ConnectionState }); ok {
		t.fw.setTLS(tc.ConnectionState())
	}
}

// gotFirstResponseByte: from here a failure is the answer failing to
// parse, unless it is a network failure (see answerClass).
func (t *upstreamTrace) gotFirstResponseByte() { t.fw.gotAnswer.Store(true) }

// checkAnswerFraming refuses, before reading the body, an answer cardgate
// could not scan (an encoded body) or that announces more than the entry
// allows.
func checkAnswerFraming(resp *http.Response, maxBytes int64) *Error {
	if !identityEncoding(resp.Header) {
		return newError(CodeUpstreamError, Answered, "processor answered with a Content-Encoding that cannot be scanned", nil)
	}
	if resp.ContentLength > maxBytes {
		return newError(CodeUpstreamTooLarge, Answered, "processor response is larger than the entry allows", nil)
	}
	return nil
}

// readAnswer reads the answer's body into raw, up to maxBytes, and names
// why it could not: too large, too late, or cut off.
func readAnswer(uctx context.Context, raw *[]byte, body io.Reader, maxBytes int64) (int, *Error) {
	n, err := readCapped(raw, body, maxBytes)
	if err == nil {
		return n, nil
	}
	var ce *Error
	if errors.As(err, &ce) {
		return 0, ce
	}
	if uctx.Err() != nil {
		e := newError(CodeUpstreamTimeout, Answered, "processor response body did not arrive in time", err)
		e.Class = ClassTimeout
		return 0, e
	}
	e := newError(CodeUpstreamError, Answered, "processor response body was cut off", err)
	if e.Class = answerClass(err); e.Class == ClassMalformedResponse {
		e.Message = "processor response body is not valid HTTP framing"
	}
	return 0, e
}

// maskedResponse builds the caller's Response from the answer: the body
// with card numbers, the CVCs the forward sent and its credentials masked
// (or the entry's response rules applied), and the cleaned headers.
func (f *Forwarder) maskedResponse(ctx context.Context, fw *forward, d *allowlist.Destination, resp *http.Response, raw []byte, sent sentCards) *Response {
	out := &Response{Outcome: Answered, Status: resp.StatusCode}
	red := f.getBuf()
	defer f.putBuf(red)
	if d.Response == nil {
		*red = growZeroed(*red, len(raw)) // masking keeps the length
		*red = sent.redact((*red)[:0], raw)
	} else {
		out.ReturnedCards = f.redactAnswer(ctx, fw, d, resp.Header.Get("Content-Type"), raw, red, sent)
	}
	fw.secrets.maskBuffer(red) // every credential the forward used (secrets.go)
	if utf8.Valid(*red) {
		out.Body = string(*red)
	} else {
		out.Body = base64.StdEncoding.EncodeToString(*red)
		out.BodyEncoding = "base64"
	}
	out.Headers = f.cleanResponseHeaders(resp.Header, sent)
	fw.secrets.maskHeaders(out.Headers)
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		out.Location = out.Headers.Get("Location")
	}
	return out
}

// classifySendError maps a failed exchange to a code and an outcome. Before
// a connection was handed to the request nothing can have been written;
// after it we assume the processor may have the card.
func (f *Forwarder) classifySendError(parent, uctx context.Context, fw *forward, err error) *Error {
	var ce *Error
	if errors.As(err, &ce) {
		return ce // from dialTLS: DNS, address policy, connect, TLS; all not_sent
	}
	timedOut := uctx.Err() == context.DeadlineExceeded || isTimeout(err)
	canceled := parent.Err() == context.Canceled
	if clientCertRefused(err) {
		return newError(CodeUpstreamTLSError, NotSent, "processor refused the gateway's client certificate", fmt.Errorf("forwarder: tls: %w", err))
	}
	// The class follows the code where the code already says it.
	class := func(e *Error, c string) *Error { e.Class = c; return e }
	if !fw.gotConn.Load() {
		switch {
		case canceled:
			return class(newError(CodeCanceled, NotSent, "request canceled before anything was sent", err), ClassCanceled)
		case timedOut:
			return class(newError(CodeUpstreamConnectFailed, NotSent, "timed out connecting to the destination", err), ClassTimeout)
		}
		return newError(CodeUpstreamConnectFailed, NotSent, "could not connect to the destination", err)
	}
	switch {
	case canceled:
		return class(newError(CodeCanceled, SentNoResponse, "request canceled after it may have been sent", err), ClassCanceled)
	case timedOut:
		return class(newError(CodeUpstreamTimeout, SentNoResponse, "processor did not answer in time", err), ClassTimeout)
	}
	e := newError(CodeUpstreamError, SentNoResponse, "connection failed after the request may have been sent", err)
	if fw.gotAnswer.Load() {
		if e.Class = answerClass(err); e.Class == ClassMalformedResponse {
			e.Message = "processor answered with bytes that are not valid HTTP"
		}
	}
	return e
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// emptyBody is a request body with nothing in it that net/http cannot
// replay (see send).
type emptyBody struct{}

func (emptyBody) Read([]byte) (int, error) { return 0, io.EOF }
func (emptyBody) Close() error             { return nil }
