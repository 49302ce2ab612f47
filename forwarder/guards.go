package forwarder

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/canary"
)

// Limiter enforces budgets. Allow returns nil when the request is within
// every budget; otherwise an error with ErrorCode "rate_limited", a
// RetryAfter method and, to label the rate_limited metric, a
// RateLimitScope method; or any other error when the budget store failed
// (which refuses the request: budgets are a control, not a hint).
// *ratelimit.Limiter implements it.
type Limiter interface {
	Allow(ctx context.Context, caller, destination string) error
}

// Switch is the operators' kill switch. Check returns nil when the
// destination is enabled, an error with ErrorCode "destination_disabled"
// when an operator disabled it (or everything), and any other error when
// the switch state is not known well enough to say. *killswitch.Watcher
// implements it. Check is on the hot path and must not block on I/O.
type Switch interface {
	Check(destination string) error
}

// Canaries tells canary tokens apart. *canary.Set implements it.
type Canaries interface {
	IsCanary(ctx context.Context, token string) (bool, error)
}

// errCanary is the internal cause of the token_not_found answer to a
// canary token; it reaches the log only.
var errCanary = errors.New("forwarder: canary token")

// retryAfterer is what a rate_limited error implements.
type retryAfterer interface {
	RetryAfter() time.Duration
}

// rateLimitScoper is what a rate_limited error may implement to say which
// budget refused: "caller" or "caller_destination".
type rateLimitScoper interface {
	RateLimitScope() string
}

// checkBudget asks the Limiter. Any failure refuses the request.
func (f *Forwarder) checkBudget(ctx context.Context, r *Request) *Error {
	if f.limiter == nil {
		return nil
	}
	lctx, cancel := context.WithTimeout(ctx, f.checkTO)
	err := f.limiter.Allow(lctx, r.Caller, r.Destination)
	cancel()
	if err == nil {
		return nil
	}
	e := passThrough(err, "the rate limit store is unavailable; nothing was sent")
	if e.Code == CodeInternal {
		e.Code = CodeRateLimitUnavailable
	}
	var ra retryAfterer
	if e.Code == CodeRateLimited && errors.As(err, &ra) {
		e.RetryAfter = ra.RetryAfter()
	}
	if e.Code == CodeRateLimited {
		f.countRateLimited(ctx, r, err)
	}
	return e
}

// checkCanary asks about every token of the request (the card's, or each
// named card's); for each canary it marks fw as a canary use and raises the
// alert: an error log line, a metric and a canary audit record. The request is refused later,
// at the step where an unknown token is refused, so a canary answers
// exactly like a token that does not exist. When the canary set cannot be
// read, the request is refused (store_unavailable), as when the card store
// cannot be read.
func (f *Forwarder) checkCanary(ctx context.Context, fw *forward, r *Request) *Error {
	if f.canaries == nil {
		return nil
	}
	// Every token the request names, the single card's or the named
	// cards'. A value not spelled like a token cannot be one of our
	// canaries, and is refused as token_not_found by the vault anyway.
	// The gateway's canary.Watcher answers from a polled snapshot in
	// memory and never reads its context: a timer per token would cost
	// more than the lookup. Any other Canaries is asked under checkTO.
	_, inMemory := f.canaries.(*canary.Watcher)
	for _, tok := range fw.requestTokens() {
		var is bool
		var err error
		if inMemory {
			is, err = f.canaries.IsCanary(ctx, tok)
		} else {
			cctx, cancel := context.WithTimeout(ctx, f.checkTO)
			is, err = f.canaries.IsCanary(cctx, tok)
			cancel()
		}
		if err != nil {
			return newError(CodeStoreUnavailable, NotSent, "the card store is unavailable; nothing was sent", err)
		}
		if is {
			f.alertCanary(ctx, fw, r, tok)
		}
	}
	return nil
}

// alertCanary marks fw as a canary use and raises the alert for tok. The
// canary record names tok alone, even when the request named other cards.
func (f *Forwarder) alertCanary(ctx context.Context, fw *forward, r *Request, tok string) {
	fw.canary = true
	f.tel.canaryUses.Add(ctx, 1)
	f.log.LogAttrs(ctx, slog.LevelError, "ALERT: canary token used",
		slog.String("forward_id", fw.id),
		slog.String("request_id", r.RequestID),
		slog.String("caller", r.Caller),
		slog.String("destination", fw.destination),
		slog.String("token", tok),
		slog.Bool("dry_run", r.DryRun))
	rec := fw.base(audit.KindCanary)
	rec.Token, rec.Tokens = tok, nil
	// The canary check comes before the allowlist step, which is where a
	// forward learns the live version: record the one in force now.
	if al, err := f.allow.Current(); err == nil && al != nil {
		rec.AllowlistVersion, rec.AllowlistSHA256 = al.Doc.Version, al.SHA256
	}
	rec.Decision = audit.DecisionDeny
	rec.Reason = "canary_token"
	rec.Outcome = audit.OutcomeNotSent
	if err := f.appendRecord(context.WithoutCancel(ctx), rec); err != nil {
		f.log.LogAttrs(ctx, slog.LevelError, "forwarder: audit canary record not written",
			slog.String("forward_id", fw.id), slog.String("cause_class", causeClass(err)))
	}
}
