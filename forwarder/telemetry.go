package forwarder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/cardgate/cardgate/allowlist"
)

const instrumentationName = "github.com/cardgate/cardgate/forwarder"

// telemetry holds the tracer and instruments. Only identifiers, codes,
// outcomes, statuses and durations are recorded: never a card field, a
// header value, a body or a URL query.
type telemetry struct {
	tracer     trace.Tracer
	forwards   metric.Int64Counter
	duration   metric.Float64Histogram
	canaryUses metric.Int64Counter
	// rateLimited counts refusals by a budget. The forwards counter has
	// them too, under code rate_limited, but not which budget refused,
	// which is what an operator tuning limits needs.
	rateLimited metric.Int64Counter
}

func newTelemetry(tp trace.TracerProvider, mp metric.MeterProvider) (*telemetry, error) {
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	m := mp.Meter(instrumentationName)
	forwards, err := m.Int64Counter("cardgate.forwarder.forwards",
		metric.WithDescription("Forwards by destination, outcome and error code."))
	if err != nil {
		return nil, fmt.Errorf("forwarder: counter: %w", err)
	}
	duration, err := m.Float64Histogram("cardgate.forwarder.duration",
		metric.WithDescription("Forward duration, end to end."), metric.WithUnit("s"))
	if err != nil {
		return nil, fmt.Errorf("forwarder: histogram: %w", err)
	}
	canaryUses, err := m.Int64Counter("cardgate.forwarder.canary_uses",
		metric.WithDescription("Uses of a canary token: each one is an alert."))
	if err != nil {
		return nil, fmt.Errorf("forwarder: counter: %w", err)
	}
	rateLimited, err := m.Int64Counter("cardgate.forwarder.rate_limited",
		metric.WithDescription("Forwards refused by a budget, by scope (caller, caller_destination) and destination."))
	if err != nil {
		return nil, fmt.Errorf("forwarder: counter: %w", err)
	}
	return &telemetry{tracer: tp.Tracer(instrumentationName), forwards: forwards, duration: duration, canaryUses: canaryUses, rateLimited: rateLimited}, nil
}

func (t *telemetry) start(ctx context.Context, fw *forward) (context.Context, trace.Span) {
	// The destination is not known to be safe to record yet: finish adds
	// it once validate has checked it.
	attrs := []attribute.KeyValue{attribute.String("cardgate.forward_id", fw.id)}
	if fw.req != nil {
		// Set by the API from the authenticated identity, never the body.
		attrs = append(attrs, attribute.String("cardgate.caller", fw.req.Caller))
	}
	return t.tracer.Start(ctx, "forwarder.Forward", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// startUpstream starts the span of one attempt at the upstream exchange,
// a child of the forward's span. It records the entry id and the attempt
// number; endUpstream adds what the connection and the answer told us.
// Never the URL (its query is the caller's), headers or bodies.
func (t *telemetry) startUpstream(ctx context.Context, fw *forward, d *allowlist.Destination) (context.Context, trace.Span) {
	return t.tracer.Start(ctx, "forwarder.upstream", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("cardgate.destination", d.ID),
		attribute.Int("cardgate.attempt", fw.attempts),
	))
}

// endUpstream records the address the connection went to (the one that
// was checked), the TLS version, the status and, on failure, the code.
func (t *telemetry) endUpstream(span trace.Span, fw *forward, resp *Response, e *Error) {
	if remote, _ := fw.remote.Load().(string); remote != "" {
		if ap, err := netip.ParseAddrPort(remote); err == nil {
			span.SetAttributes(
				attribute.String("network.peer.address", ap.Addr().Unmap().String()),
				attribute.Int("network.peer.port", int(ap.Port())))
		}
	}
	if v, _ := fw.tlsInfo(); v != "" {
		span.SetAttributes(attribute.String("tls.protocol.version", strings.TrimPrefix(v, "TLS ")))
	}
	if resp != nil {
		span.SetAttributes(attribute.Int("http.response.status_code", resp.Status))
	}
	if e != nil {
		span.SetAttributes(attribute.String("error.type", e.Code), attribute.String("cardgate.outcome", string(e.Outcome)))
		if e.Class != "" {
			span.SetAttributes(attribute.String("cardgate.cause_class", e.Class))
		}
		// The code only, as on the forward's span: the cause's text can
		// quote what the processor sent.
		span.SetStatus(codes.Error, e.Code)
	}
	span.End()
}

// finish writes the one log line, ends the span and records the metrics.
func (f *Forwarder) finish(ctx context.Context, span trace.Span, fw *forward, resp *Response, e *Error, d time.Duration) {
	outcome, code, status := NotSent, "", 0
	if resp != nil {
		outcome, status = resp.Outcome, resp.Status
	}
	if e != nil {
		outcome, code = e.Outcome, e.Code
	}
	remote, _ := fw.remote.Load().(string)
	reqID, caller := "", ""
	if fw.req != nil {
		reqID, caller = fw.req.RequestID, fw.req.Caller
	}

	dest := fw.destinationLabel()
	span.SetAttributes(
		attribute.String("cardgate.destination", dest),
		attribute.Int64("cardgate.allowlist_version", int64(fw.version)),
		attribute.String("cardgate.outcome", string(outcome)),
		attribute.Int("http.response.status_code", status),
	)
	if e != nil {
		span.SetAttributes(attribute.String("error.type", code))
		if e.Class != "" {
			span.SetAttributes(attribute.String("cardgate.cause_class", e.Class))
		}
		// The span status carries the code only, never the cause's text
		// (see Error).
		span.SetStatus(codes.Error, code)
	}
	span.End()

	mattrs := metric.WithAttributes(
		attribute.String("destination", f.metricDestination(fw)),
		attribute.String("outcome", string(outcome)),
		attribute.String("code", code),
	)
	f.tel.forwards.Add(ctx, 1, mattrs)
	f.tel.duration.Record(ctx, d.Seconds(), mattrs)

	attrs := []slog.Attr{
		slog.String("forward_id", fw.id),
		slog.String("request_id", reqID),
		slog.String("caller", caller),
		slog.String("destination", dest),
		slog.Uint64("allowlist_version", fw.version),
		slog.String("host", fw.host),
		slog.String("resolved_addr", remote),
		slog.String("outcome", string(outcome)),
		slog.Int("status", status),
		slog.Duration("duration", d),
		slog.Int("attempts", fw.attempts),
		slog.Bool("replayed", fw.replayed),
		slog.Bool("dry_run", fw.req != nil && fw.req.DryRun),
	}
	level := slog.LevelInfo
	if e != nil {
		level = slog.LevelWarn
		if e.Code == CodeInternal {
			level = slog.LevelError
		}
		// Error() holds the code and the public message only. The cause
		// is logged as its class, never as its text, which can quote what
		// the processor sent: a malformed header line echoing the
		// request's CVC, expiry and name (see Error).
		attrs = append(attrs, slog.String("code", e.Code), slog.String("error", e.Error()))
		if e.Class != "" {
			attrs = append(attrs, slog.String("cause_class", e.Class))
		}
		var ae *addressError
		if errors.As(e.Err, &ae) {
			attrs = append(attrs, slog.String("forbidden_range", ae.Range()))
		}
	}
	f.log.LogAttrs(ctx, level, "forward", attrs...)
}

// Destination labels for requests whose destination string is not an entry.
const (
	destInvalid  = "invalid"  // refused by validate: never recorded as sent
	destUnlisted = "unlisted" // well-formed, but no entry of the live allowlist has it
)

// destinationLabel is the destination as the log line and the span record
// it: the caller's string once validate accepted it (an allowlist id that
// holds no card number), else "invalid".
func (fw *forward) destinationLabel() string {
	if fw.destination == "" {
		return destInvalid
	}
	return fw.destination
}

// metricDestination is the destination metric label. Only ids of the live
// allowlist are used, so callers cannot grow the label set without bound
// by inventing well-formed ids.
func (f *Forwarder) metricDestination(fw *forward) string {
	if fw.destination == "" {
		return destInvalid
	}
	return f.listedDestination(fw.destination)
}

// listedDestination is id if an entry of the live allowlist has it, else
// "unlisted": safe as a label for any string, even one that failed
// validation, since only ids that auditors signed come out.
func (f *Forwarder) listedDestination(id string) string {
	al, err := f.allow.Current()
	if err != nil || al == nil {
		return destUnlisted
	}
	for i := range al.Doc.Destinations {
		if al.Doc.Destinations[i].ID == id {
			return id
		}
	}
	return destUnlisted
}

// Scopes of the rate_limited metric; a Limiter that does not say which
// budget refused, or names another, is counted as "unknown" so that the
// label set stays closed.
const (
	scopeCaller            = "caller"
	scopeCallerDestination = "caller_destination"
	scopeUnknown           = "unknown"
)

// countRateLimited records one refusal by a budget. err is the Limiter's.
func (f *Forwarder) countRateLimited(ctx context.Context, r *Request, err error) {
	scope := scopeUnknown
	var s rateLimitScoper
	if errors.As(err, &s) {
		switch v := s.RateLimitScope(); v {
		case scopeCaller, scopeCallerDestination:
			scope = v
		}
	}
	f.tel.rateLimited.Add(ctx, 1, metric.WithAttributes(
		attribute.String("scope", scope),
		attribute.String("destination", f.listedDestination(r.Destination)),
	))
}
