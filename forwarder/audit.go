package forwarder

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/vaultclient"
)

// Auditor appends records to the audit log. *audit.Log implements it; it
// must return only once the record is durable, and an error otherwise.
type Auditor interface {
	Append(ctx context.Context, rec audit.Record) (audit.Record, error)
}

// writtenAuditor is an Auditor that can also append a record of what
// already happened without waiting for it to be durable: it returns once
// the record is in the chain and written, and makes it durable shortly
// after (by group commit). *audit.Log implements it (AppendWritten). The
// forwarder uses it for result records only, so that the one fsync on a
// forward's critical path is its intent's.
type writtenAuditor interface {
	AppendWritten(ctx context.Context, rec audit.Record) (audit.Record, error)
}

// deniedCodes are the refusals that are policy decisions, and so get a
// denied record. Caller mistakes (a malformed request or template) and
// outages do not: they say nothing about what a caller tried to reach.
var deniedCodes = map[string]bool{
	string(allowlist.ReasonDestinationNotAllowed): true,
	string(allowlist.ReasonMethodNotAllowed):      true,
	string(allowlist.ReasonCallerNotAllowed):      true,
	string(allowlist.ReasonFieldNotAllowed):       true,
	string(allowlist.ReasonCardNotAllowed):        true,
	string(allowlist.ReasonAllowlistExpired):      true,
	string(allowlist.ReasonAllowlistUnavailable):  true,
	CodeAddressForbidden:                          true,
	CodeLiteralCard:                               true,
	CodeInvalidName:                               true, // a card number hidden in the name: a way around the entry's fields
	CodeDestinationDisabled:                       true,
	CodeKillSwitchUnavailable:                     true,
	CodeCredentialNotAllowed:                      true,
}

// auditToken returns s if it is spelled like a vault token, else "".
// Anything else is caller input that could be a card number, and stays out
// of the audit log.
func auditToken(s string) string {
	if !vaultclient.ValidToken(s) {
		return ""
	}
	return s
}

// base is the part of every record this forward writes.
func (fw *forward) base(kind audit.Kind) audit.Record {
	reqID, caller := fw.id, ""
	if fw.req != nil {
		caller = fw.req.Caller
		if fw.req.RequestID != "" {
			reqID = fw.req.RequestID
		}
	}
	return audit.Record{
		Kind:             kind,
		RequestID:        reqID,
		ForwardID:        fw.id,
		Caller:           caller,
		Token:            fw.token,
		Tokens:           fw.tokens,
		Destination:      fw.destination,
		AllowlistVersion: fw.version,
		AllowlistSHA256:  fw.sha,
	}
}

// appendRecord writes rec under the audit timeout. A record refused as
// invalid is retried once without the fields the caller chose (token and
// destination), which are the only ones that can fail the audit log's
// format or card checks through caller input.
func (f *Forwarder) appendRecord(ctx context.Context, rec audit.Record) error {
	return f.appendWith(ctx, f.auditor.Append, rec)
}

// appendWith is appendRecord with the append to call.
func (f *Forwarder) appendWith(ctx context.Context, appendFn func(context.Context, audit.Record) (audit.Record, error), rec audit.Record) error {
	actx, cancel := context.WithTimeout(ctx, f.auditTO)
	defer cancel()
	_, err := appendFn(actx, rec)
	if errors.Is(err, audit.ErrInvalid) && rec.Kind != audit.KindIntent && (rec.Token != "" || rec.Tokens != nil || rec.Destination != "") {
		rec.Token, rec.Tokens, rec.Destination = "", nil, ""
		_, err = appendFn(actx, rec)
	}
	return err
}

// auditIntent writes the intent record. It is the last step before the
// card is sent: if it fails the forward is refused.
func (f *Forwarder) auditIntent(ctx context.Context, fw *forward, d *allowlist.Destination) *Error {
	rec := fw.base(audit.KindIntent)
	rec.Destination = d.ID
	rec.Decision = audit.DecisionAllow
	err := f.appendRecord(ctx, rec)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, audit.ErrInvalid):
		// Every field is ours or checked; this is a bug, not an outage.
		return newError(CodeInternal, NotSent, "the audit record was refused", err)
	default:
		return newError(CodeAuditUnavailable, NotSent, "the audit log is unavailable; nothing was sent", err)
	}
}

// auditResult writes the result record after a forward that had an intent
// record. The card may be gone already, so a caller that hangs up cannot
// stop it; a failure is logged at error level, since it leaves an intent
// without its result.
//
// When the Auditor can (writtenAuditor), the caller is answered once the
// result is written, and its fsync follows behind the answer: a machine
// crash in that window of milliseconds leaves the intent without its
// result, which is what an auditor already reads as "outcome unknown"
// (AUDITING.md). A forward holding an idempotency claim waits for the
// fsync: its answer is stored for replay, so a stored answer has its
// result on disk unless the write itself failed (see forward's step 4).
func (f *Forwarder) auditResult(ctx context.Context, fw *forward, resp *Response, e *Error) {
	rec := fw.base(audit.KindResult)
	rec.Decision = audit.DecisionAllow
	rec.DurationMS = time.Since(fw.start).Milliseconds()
	switch {
	case e != nil:
		rec.Outcome = audit.Outcome(e.Outcome)
		rec.Reason = e.Code
	case resp != nil:
		rec.Outcome = audit.Outcome(resp.Outcome)
		rec.UpstreamStatus = resp.Status
	}
	if rec.Outcome == "" {
		rec.Outcome = audit.OutcomeNotSent
	}
	if rec.Outcome != audit.OutcomeAnswered {
		rec.UpstreamStatus = 0
	}
	if remote, _ := fw.remote.Load().(string); remote != "" {
		if ap, err := netip.ParseAddrPort(remote); err == nil {
			rec.ResolvedIP = ap.Addr().Unmap().String()
		}
	}
	rec.TLSVersion, rec.PeerCertSHA256 = fw.tlsInfo()
	appendFn := f.auditor.Append
	if wa, ok := f.auditor.(writtenAuditor); ok && !fw.claimed {
		appendFn = wa.AppendWritten
	}
	if err := f.appendWith(context.WithoutCancel(ctx), appendFn, rec); err != nil {
		f.log.LogAttrs(ctx, slog.LevelError, "forwarder: audit result record not written",
			slog.String("forward_id", fw.id), slog.String("outcome", string(rec.Outcome)),
			slog.String("cause_class", causeClass(err)))
	}
}

// auditDenied writes a denied record for a policy refusal. The refusal
// stands whether or not the record is written; a failure is logged.
func (f *Forwarder) auditDenied(ctx context.Context, fw *forward, code string) {
	if !deniedCodes[code] {
		return
	}
	rec := fw.base(audit.KindDenied)
	rec.Decision = audit.DecisionDeny
	rec.Reason = code
	rec.Outcome = audit.OutcomeNotSent
	rec.DurationMS = time.Since(fw.start).Milliseconds()
	if err := f.appendRecord(context.WithoutCancel(ctx), rec); err != nil {
		f.log.LogAttrs(ctx, slog.LevelError, "forwarder: audit denied record not written",
			slog.String("forward_id", fw.id), slog.String("reason", code), slog.String("cause_class", causeClass(err)))
	}
}
