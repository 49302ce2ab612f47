package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/cardgate/cardgate/config"
)

// telemetryScope names the spans this package starts itself.
const telemetryScope = "github.com/cardgate/cardgate/cmd/cardgate"

// Bounds for the telemetry shutdown and the admin listener. The admin
// listener only answers small GETs, so its limits are tighter than the
// API's.
const (
	telemetryShutdownTimeout = 5 * time.Second
	adminReadHeaderTimeout   = 5 * time.Second
	adminReadTimeout         = 10 * time.Second
	adminWriteTimeout        = 30 * time.Second
	adminIdleTimeout         = 60 * time.Second
	adminShutdownTimeout     = 5 * time.Second
	adminMaxHeaderBytes      = 8 << 10
	metricsScrapeTimeout     = 10 * time.Second
	metricsMaxInFlight       = 4
)

// telemetry holds the OpenTelemetry providers built from the config. They
// are handed to each package explicitly; nothing here is installed as an
// OpenTelemetry global, so two gateways in one process (the tests) never
// share a provider.
type telemetry struct {
	tracers trace.TracerProvider
	meters  metric.MeterProvider
	// propagator reads a caller's W3C traceparent. It is TraceContext
	// only: baggage is free text chosen by the caller and has no use here.
	propagator propagation.TextMapPropagator
	// metrics serves the Prometheus text format; nil when the admin
	// listener is off, and then the meter provider is a no-op.
	metrics  http.Handler
	shutdown []func(context.Context) error
}

// openTelemetry builds the tracer and meter providers. stdout receives
// spans when the exporter is "stdout". Nothing connects yet: an OTLP
// collector that is down loses spans, never forwards.
func openTelemetry(ctx context.Context, cfg config.Config, stdout io.Writer) (_ *telemetry, err error) {
	t := &telemetry{propagator: propagation.TraceContext{}}
	defer func() {
		if err != nil {
			_ = t.Close()
		}
	}()
	res := resource.NewSchemaless(
		attribute.String("service.name", cfg.Telemetry.ServiceName),
		attribute.String("service.version", version),
		attribute.String("deployment.environment.name", cfg.Environment),
	)

	var exp sdktrace.SpanExporter
	switch tc := cfg.Telemetry.Traces; tc.Exporter {
	case config.ExporterNone:
		t.tracers = tracenoop.NewTracerProvider()
	case config.ExporterStdout:
		exp, err = stdouttrace.New(stdouttrace.WithWriter(stdout))
	case config.ExporterOTLP:
		exp, err = newOTLPExporter(ctx, tc.OTLP)
	default:
		// Validate refuses this; a new exporter name must not fall
		// through to something unexpected.
		return nil, fmt.Errorf("telemetry.traces.exporter: %q is not supported", tc.Exporter)
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry.traces: %w", err)
	}
	if exp != nil {
		tp := sdktrace.NewTracerProvider(
			sdktrace.WithBatcher(exp),
			sdktrace.WithResource(res),
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.Telemetry.Traces.SampleRatio))),
		)
		t.tracers = tp
		t.shutdown = append(t.shutdown, tp.Shutdown)
	}

	if cfg.Admin.Addr == "" {
		t.meters = metricnoop.NewMeterProvider()
		return t, nil
	}
	// A registry of our own, not prometheus.DefaultRegisterer: no global
	// state, and only what this gateway registers is scraped.
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("telemetry: go collector: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("telemetry: process collector: %w", err)
	}
	pexp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(pexp), sdkmetric.WithResource(res))
	t.meters = mp
	t.shutdown = append(t.shutdown, mp.Shutdown)
	t.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Timeout:             metricsScrapeTimeout,
		MaxRequestsInFlight: metricsMaxInFlight,
	})
	return t, nil
}

// newOTLPExporter sends spans over OTLP/HTTP. Validate has checked the URL.
func newOTLPExporter(ctx context.Context, c config.OTLP) (sdktrace.SpanExporter, error) {
	u, err := url.Parse(c.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("otlp.endpoint: %w", err)
	}
	if u.Path == "" {
		u.Path = "/v1/traces"
	}
	// WithEndpointURL sets the scheme both ways, so an
	// OTEL_EXPORTER_OTLP_INSECURE in the environment cannot turn an
	// https endpoint into plain HTTP.
	opts := []otlptracehttp.Option{
		otlptracehttp.WithEndpointURL(u.String()),
		otlptracehttp.WithTimeout(c.Timeout),
	}
	if u.Scheme == "https" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		var err error
		if tc.RootCAs, err = certPool("otlp.ca_file", c.CAFile); err != nil {
			return nil, err
		}
		opts = append(opts, otlptracehttp.WithTLSClientConfig(tc))
	}
	return otlptracehttp.New(ctx, opts...)
}

// Close flushes buffered spans and stops the providers, within
// telemetryShutdownTimeout. It runs after the listeners have drained, when
// no request context is left to derive from.
func (t *telemetry) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), telemetryShutdownTimeout)
	defer cancel()
	var errs []error
	for i := len(t.shutdown) - 1; i >= 0; i-- {
		if err := t.shutdown[i](ctx); err != nil {
			errs = append(errs, fmt.Errorf("telemetry: shutdown: %w", err))
		}
	}
	t.shutdown = nil
	return errors.Join(errs...)
}

// apiRoutes are the only route names a span may carry. The raw path is
// chosen by the caller and could hold anything, a card number included, so
// a path outside this set is named "other".
var apiRoutes = map[string]bool{
	"/v1/cards":   true,
	"/v1/forward": true,
	"/healthz":    true,
	"/readyz":     true,
	// The card lifecycle routes, by pattern (cardRoute): the token is
	// never part of a span name.
	cardTokenRoute: true,
	cardCVCRoute:   true,
}

// spanMethods are the methods a span may name; anything else is "_OTHER",
// as the HTTP semantic conventions say, for the same reason.
var spanMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// traceRequests wraps the API handler: it continues a caller's W3C trace
// context and starts one server span per request, named by method and
// route. The span carries the method, the route and the status only:
// never the raw path, the query, a header value or a body. Health probes
// are not traced; they arrive every few seconds and say nothing.
func (t *telemetry) traceRequests(next http.Handler) http.Handler {
	tracer := t.tracers.Tracer(telemetryScope)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := "other"
		if apiRoutes[r.URL.Path] {
			route = r.URL.Path
		} else if p := cardRoute(r.URL.Path); p != "" {
			route = p
		}
		if route == "/healthz" || route == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		method := "_OTHER"
		if spanMethods[r.Method] {
			method = r.Method
		}
		ctx := t.propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracer.Start(ctx, method+" "+route,
			trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(
				attribute.String("http.request.method", method),
				attribute.String("http.route", route),
			))
		defer span.End()
		sw := &spanStatusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(ctx))
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= http.StatusInternalServerError {
			// The status code only: the body is the caller's business.
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	})
}

type spanStatusWriter struct {
	http.ResponseWriter
	status int
}

func (w *spanStatusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *spanStatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// traceLogHandler adds trace_id and span_id to every record logged with a
// context that holds a span, so a log line and its trace can be joined.
type traceLogHandler struct {
	next slog.Handler
}

func withTraceIDs(log *slog.Logger) *slog.Logger {
	if _, ok := log.Handler().(traceLogHandler); ok {
		return log
	}
	return slog.New(traceLogHandler{next: log.Handler()})
}

func (h traceLogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h traceLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		// Clone: the record's attribute storage may be shared with the
		// caller's copy.
		r = r.Clone()
		r.AddAttrs(
			slog.String("trace_id", sc.TraceID().String()),
			slog.String("span_id", sc.SpanID().String()),
		)
	}
	return h.next.Handle(ctx, r)
}

func (h traceLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceLogHandler{next: h.next.WithAttrs(as)}
}

func (h traceLogHandler) WithGroup(name string) slog.Handler {
	return traceLogHandler{next: h.next.WithGroup(name)}
}

// newAdminServer returns the operators' listener: /metrics, and the API's
// own /healthz and /readyz (so both listeners report the same thing). No
// other route of api is reachable through it. It is nil when admin.addr is
// empty.
func (t *telemetry) newAdminServer(ctx context.Context, cfg config.Config, api http.Handler, log *slog.Logger) *http.Server {
	if cfg.Admin.Addr == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", t.metrics)
	mux.Handle("GET /healthz", api)
	mux.Handle("GET /readyz", api)
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: adminReadHeaderTimeout,
		ReadTimeout:       adminReadTimeout,
		WriteTimeout:      adminWriteTimeout,
		IdleTimeout:       adminIdleTimeout,
		MaxHeaderBytes:    adminMaxHeaderBytes,
		ErrorLog:          stdlog.New(serverLog{log: log}, "", 0), // stdlog.go
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
}

// serveAdmin listens on admin.addr and serves until stop is called; stop
// drains the admin listener within adminShutdownTimeout. With no admin
// listener configured it does nothing.
func (g *gateway) serveAdmin(ctx context.Context) (stop func(), err error) {
	if g.admin == nil {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", g.cfg.Admin.Addr)
	if err != nil {
		return nil, fmt.Errorf("admin.addr: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := g.admin.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("admin listener stopped", slog.String("error", err.Error()))
		}
	}()
	g.log.Info("admin listening", slog.String("addr", ln.Addr().String()))
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), adminShutdownTimeout)
		defer cancel()
		_ = g.admin.Shutdown(sctx)
		<-done
	}, nil
}
