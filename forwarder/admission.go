package forwarder

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/cardgate/cardgate/allowlist"
)

// Forward checks, fills in and sends r. Errors are *Error, and always say
// whether anything was sent.
func (f *Forwarder) Forward(ctx context.Context, r *Request) (*Response, error) {
	if f == nil || f.allow == nil || f.cards == nil || f.auditor == nil {
		return nil, notSent(CodeInternal, "forwarder is not configured")
	}
	// fw.destination stays empty until validate has checked the caller's
	// string: until then it is recorded as "invalid".
	fw := &forward{id: newForwardID(), req: r, start: time.Now()}
	ctx, span := f.tel.start(ctx, fw)
	resp, ferr := f.forward(ctx, fw, r)
	if fw.intent {
		// Every intent gets its result, whatever the outcome.
		f.auditResult(ctx, fw, resp, ferr)
	}
	f.finish(ctx, span, fw, resp, ferr, time.Since(fw.start))
	if ferr != nil {
		return nil, ferr
	}
	return resp, nil
}

// forward runs the steps that come before the allowlist, and owns the
// idempotency claim: whatever decide returns is stored (or the claim
// released) here.
func (f *Forwarder) forward(ctx context.Context, fw *forward, r *Request) (*Response, *Error) {
	// 1. Validate the request and find every placeholder.
	if r == nil {
		return nil, notSent(CodeInvalidRequest, "request is empty")
	}
	fw.token = auditToken(r.Card)
	fw.tokens = auditTokens(r.Cards)
	v, e := f.validate(r)
	if e != nil {
		if e.Code == CodeLiteralCard {
			// Someone typed a card into a request: a refusal worth an
			// audit record (without the offending value), within the
			// caller's budget so that a flood of them cannot flood the
			// audit log.
			if be := f.checkBudget(ctx, r); be != nil {
				return nil, be
			}
			f.auditDenied(ctx, fw, e.Code)
		}
		return nil, e
	}
	fw.host = v.target.host
	fw.destination = r.Destination

	// 2. Budgets, before anything that writes an audit record or an
	// alert, so that a flood of refused requests (canary uses among them)
	// cannot flood the audit log.
	if e := f.checkBudget(ctx, r); e != nil {
		return nil, e
	}

	// 3. Canary tokens alert on any use within the budget; the refusal
	// comes where an unknown token's would.
	if e := f.checkCanary(ctx, fw, r); e != nil {
		return nil, e
	}

	// 4. Idempotency: a replay returns the stored answer and sends nothing.
	if r.IdempotencyKey == "" || r.DryRun {
		return f.decide(ctx, fw, r, v)
	}
	if f.idem == nil {
		return nil, notSent(CodeIdempotencyNotSupported, "this gateway keeps no idempotency store (single-node bolt mode); send the request without Idempotency-Key")
	}
	resp, e := f.claim(ctx, fw, r)
	if resp != nil || e != nil {
		return resp, e
	}
	resp, e = f.decide(ctx, fw, r, v)
	if fw.intent {
		// The result record goes first, so that a stored answer normally
		// has its result in the audit log. If that record cannot be
		// written, the answer is stored all the same: the card has gone,
		// and a retry under this key must replay, never send it again.
		// The log then shows the intent without a result (outcome
		// unknown), and the failure is logged at error level.
		f.auditResult(ctx, fw, resp, e)
		fw.intent = false
	}
	f.settle(ctx, fw, r, resp, e)
	return resp, e
}

// decide asks the kill switch and the allowlist, then either previews (dry
// run) or sends.
func (f *Forwarder) decide(ctx context.Context, fw *forward, r *Request, v *validated) (*Response, *Error) {
	// 5. The kill switch: an operator's "stop" overrides the allowlist.
	if f.switches != nil {
		if err := f.switches.Check(r.Destination); err != nil {
			e := passThrough(err, "kill switch state unavailable")
			if e.Code == CodeInternal {
				e.Code, e.Message = CodeKillSwitchUnavailable, "the kill switch state could not be read recently enough; forwards are refused until it can"
			}
			f.auditDenied(ctx, fw, e.Code)
			return nil, e
		}
	}

	// 6. The live allowlist, and the entry this request may use.
	al, err := f.allow.Current()
	if err != nil {
		e := passThrough(err, "allowlist unavailable")
		f.auditDenied(ctx, fw, e.Code)
		return nil, e
	}
	if al == nil {
		return nil, notSent(CodeInternal, "allowlist unavailable")
	}
	fw.version, fw.sha = al.Doc.Version, al.SHA256
	dest, err := al.Match(allowlist.Query{
		DestinationID: r.Destination,
		Caller:        r.Caller,
		Method:        r.Method,
		URL:           v.target.URL(),
		Fields:        v.fields,
		Cards:         v.cards,
		Now:           f.now(),
	})
	if err != nil {
		e := passThrough(err, "allowlist match failed")
		f.auditDenied(ctx, fw, e.Code)
		return nil, e
	}
	if dest == nil {
		return nil, notSent(CodeInternal, "allowlist match returned no entry")
	}
	// Match decided; check again what the dial depends on, so that a bug
	// there cannot send a card somewhere this package did not verify.
	if e := recheck(dest, r, v); e != nil {
		f.auditDenied(ctx, fw, e.Code)
		return nil, e
	}
	if e := f.checkEntryRules(dest, v); e != nil {
		f.auditDenied(ctx, fw, e.Code)
		return nil, e
	}
	if e := v.checkHeaderSlots(dest); e != nil {
		return nil, e
	}
	if e := v.checkBody(dest); e != nil {
		return nil, e
	}
	// Credentials: a {{secret.NAME}} the entry does not grant is refused
	// here, before anything is read, like a card field it does not allow.
	if e := checkCredentialGrants(dest, v); e != nil {
		f.auditDenied(ctx, fw, e.Code)
		return nil, e
	}

	// 7. A dry run stops here: nothing is read from the vault or sent.
	if r.DryRun {
		return f.preview(fw, v)
	}

	// 8. Resolve the host once and check every answer, before the card is
	// read: nothing is decrypted, and no intent is recorded, for a forward
	// that cannot go out. The send dials exactly these addresses.
	addrs, e := f.resolveChecked(ctx, dest, v.target)
	if e != nil {
		f.auditDenied(ctx, fw, e.Code)
		return nil, e
	}
	if fw.canary {
		// The same answer as for a token that does not exist, at the step
		// where it would come, so that the holder cannot tell a canary
		// from a stale token.
		return nil, newError(CodeTokenNotFound, NotSent, "token not found", errCanary)
	}
	return f.sendCard(ctx, fw, r, v, al, dest, addrs)
}

// recheck repeats the parts of the allowlist decision that the dial and the
// render depend on: same entry, the URL rule (allowlist's Admits, the one
// Match applies) on the exact host, port and path that will be dialled and
// sent, method, caller and fields.
func recheck(d *allowlist.Destination, r *Request, v *validated) *Error {
	deny := func(msg string) *Error { return notSent(CodeDestinationNotAllowed, msg) }
	if d.ID != r.Destination {
		return deny("destination does not match the allowlist entry")
	}
	if d.Host == "" || d.Port < 1 || d.Port > 65535 {
		return deny("allowlist entry has no host or port")
	}
	t := v.target
	if err := d.Admits(t.host, t.port, t.path); err != nil {
		var ue *allowlist.URLError
		errors.As(err, &ue) // every Admits error is one; without it the default refuses
		var part allowlist.URLPart
		if ue != nil {
			part = ue.Part
		}
		switch {
		case part == allowlist.URLHost && t.ip.IsValid():
			return notSent(CodeAddressForbidden, "url: an IP address is allowed only when the entry names that exact address")
		case part == allowlist.URLHost:
			return deny("url: host is not the entry's host")
		case part == allowlist.URLPort:
			return deny("url: port is not the entry's port")
		case part == allowlist.URLPath:
			return deny("url: path is outside the entry's path prefix")
		default:
			return deny("url: outside the entry")
		}
	}
	if !slices.Contains(d.Methods, r.Method) {
		return deny("method is not allowed for this destination")
	}
	if !slices.Contains(d.Callers, r.Caller) {
		return deny("caller is not allowed for this destination")
	}
	for _, fl := range v.fields {
		if !slices.Contains(d.Fields, fl) {
			return deny("card field " + string(fl) + " is not allowed for this destination")
		}
	}
	return recheckCards(d, v)
}
