package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cardgate/cardgate/api"
	"github.com/cardgate/cardgate/config"
	"github.com/cardgate/cardgate/forwarder"
	"github.com/cardgate/cardgate/vaultclient"
)

// Stand-ins for api.New's two interfaces; these tests never reach them.
type nopCards struct{}

func (nopCards) Tokenize(context.Context, vaultclient.CardInput) (*vaultclient.TokenInfo, error) {
	return nil, errors.New("test: not implemented")
}

type nopForwarder struct{}

func (nopForwarder) Forward(context.Context, *forwarder.Request) (*forwarder.Response, error) {
	return nil, errors.New("test: not implemented")
}

func testAPI(t *testing.T) http.Handler {
	t.Helper()
	h, err := api.New(api.Options{Cards: nopCards{}, Forwarder: nopForwarder{}})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// recordingTelemetry is a telemetry whose spans land in memory.
func recordingTelemetry(t *testing.T) (*telemetry, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return &telemetry{tracers: tp, propagator: propagation.TraceContext{}}, exp
}

const (
	callerTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerParent  = "00f067aa0ba902b7"
	testPAN       = "4242424242424242"
)

func TestTraceRequests(t *testing.T) {
	tests := []struct {
		name, method, path string
		traceparent        string
		wantSpan           string // "" means no span
		wantParent         bool
	}{
		{"forward continues the caller's trace", "POST", "/v1/forward", "00-" + callerTraceID + "-" + callerParent + "-01", "POST /v1/forward", true},
		{"tokenize without a caller trace", "POST", "/v1/cards", "", "POST /v1/cards", false},
		{"malformed traceparent starts a new trace", "POST", "/v1/forward", "00-zz-" + callerParent + "-01", "POST /v1/forward", false},
		{"a card number in the path is not recorded", "POST", "/v1/" + testPAN + "?cvc=737", "", "POST other", false},
		{"an unknown method is not recorded", "PR" + testPAN, "/v1/forward", "", "_OTHER /v1/forward", false},
		{"liveness is not traced", "GET", "/healthz", "", "", false},
		{"readiness is not traced", "GET", "/readyz", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tel, exp := recordingTelemetry(t)
			h := tel.traceRequests(testAPI(t))
			r := httptest.NewRequest(tt.method, tt.path, strings.NewReader("{}"))
			if tt.traceparent != "" {
				r.Header.Set("Traceparent", tt.traceparent)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			spans := exp.GetSpans()
			if tt.wantSpan == "" {
				if len(spans) != 0 {
					t.Fatalf("%d spans, want none", len(spans))
				}
				return
			}
			if len(spans) != 1 {
				t.Fatalf("%d spans, want 1", len(spans))
			}
			s := spans[0]
			if s.Name != tt.wantSpan {
				t.Errorf("span name = %q, want %q", s.Name, tt.wantSpan)
			}
			gotParent := s.Parent.IsRemote() && s.SpanContext.TraceID().String() == callerTraceID && s.Parent.SpanID().String() == callerParent
			if gotParent != tt.wantParent {
				t.Errorf("continues the caller's trace = %v, want %v (trace %s, parent %s)", gotParent, tt.wantParent, s.SpanContext.TraceID(), s.Parent.SpanID())
			}
			raw, err := json.Marshal(spans)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(raw, []byte(testPAN)) || bytes.Contains(raw, []byte("cvc")) {
				t.Errorf("span holds the request's path or query: %s", raw)
			}
			var status int64
			for _, a := range s.Attributes {
				if a.Key == "http.response.status_code" {
					status = a.Value.AsInt64()
				}
			}
			if status == 0 {
				t.Errorf("span has no http.response.status_code: %v", s.Attributes)
			}
		})
	}
}

func TestTraceLogHandler(t *testing.T) {
	tel, _ := recordingTelemetry(t)
	var buf bytes.Buffer
	log := withTraceIDs(slog.New(slog.NewJSONHandler(&buf, nil)))
	if withTraceIDs(log) != log {
		t.Errorf("withTraceIDs wrapped an already wrapped logger again")
	}
	ctx, span := tel.tracers.Tracer("test").Start(context.Background(), "op")
	log.With("k", "v").InfoContext(ctx, "inside")
	span.End()
	log.InfoContext(context.Background(), "outside")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2:\n%s", len(lines), buf.String())
	}
	var in, out map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &in); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &out); err != nil {
		t.Fatal(err)
	}
	sc := span.SpanContext()
	if in["trace_id"] != sc.TraceID().String() || in["span_id"] != sc.SpanID().String() || in["k"] != "v" {
		t.Errorf("line inside a span = %v, want trace_id %s, span_id %s and k", in, sc.TraceID(), sc.SpanID())
	}
	if _, ok := out["trace_id"]; ok {
		t.Errorf("line outside a span = %v, want no trace_id", out)
	}
}

func TestOpenTelemetryStdoutFlushesOnClose(t *testing.T) {
	cfg := config.Default()
	cfg.Environment = "test"
	cfg.Telemetry.Traces.Exporter = config.ExporterStdout
	var out bytes.Buffer
	tel, err := openTelemetry(context.Background(), cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	if tel.metrics != nil {
		t.Errorf("metrics handler built with the admin listener off")
	}
	_, span := tel.tracers.Tracer("test").Start(context.Background(), "flushed-span")
	span.End()
	if err := tel.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if !strings.Contains(out.String(), `"Name":"flushed-span"`) {
		t.Errorf("stdout after Close = %q, want the batched span flushed", out.String())
	}
	if !strings.Contains(out.String(), `"service.name"`) {
		t.Errorf("stdout span carries no service.name resource: %q", out.String())
	}
}

func TestOpenTelemetryOTLPAndNone(t *testing.T) {
	got := make(chan string, 8)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r.Method + " " + r.URL.Path + " " + r.Header.Get("Content-Type") + " " + string(b)
	}))
	defer collector.Close()

	cfg := config.Default()
	cfg.Environment = "test"
	cfg.Telemetry.Traces.Exporter = config.ExporterOTLP
	cfg.Telemetry.Traces.OTLP.Endpoint = collector.URL // no path: /v1/traces is added
	tel, err := openTelemetry(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	_, span := tel.tracers.Tracer("test").Start(context.Background(), "exported-span")
	span.End()
	if err := tel.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	select {
	case req := <-got:
		if !strings.HasPrefix(req, "POST /v1/traces application/x-protobuf ") || !strings.Contains(req, "exported-span") {
			t.Errorf("collector got %.120q, want a protobuf POST to /v1/traces holding the span", req)
		}
	default:
		t.Errorf("collector got nothing; Close must flush")
	}

	cfg.Telemetry.Traces.Exporter = config.ExporterNone
	tel, err = openTelemetry(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, span := tel.tracers.Tracer("test").Start(context.Background(), "x"); span.SpanContext().IsValid() {
		t.Errorf("exporter none records spans")
	}
	if err := tel.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}

	cfg.Telemetry.Traces.Exporter = "zipkin"
	if _, err := openTelemetry(context.Background(), cfg, io.Discard); err == nil {
		t.Errorf("openTelemetry accepted an unknown exporter")
	}
}

func TestAdminServer(t *testing.T) {
	cfg := config.Default()
	cfg.Environment = "test"
	cfg.Admin.Addr = "127.0.0.1:0"
	tel, err := openTelemetry(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Close()
	counter, err := tel.meters.Meter("test").Int64Counter("cardgate.test.events")
	if err != nil {
		t.Fatal(err)
	}
	counter.Add(context.Background(), 3)

	srv := tel.newAdminServer(context.Background(), cfg, testAPI(t), slog.New(slog.DiscardHandler))
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 || srv.MaxHeaderBytes <= 0 {
		t.Errorf("admin server limits not all set: %+v", srv)
	}
	tests := []struct {
		method, path string
		want         int
		body         string
	}{
		{"GET", "/metrics", 200, "cardgate_test_events_total"},
		{"GET", "/metrics", 200, "go_goroutines"},
		{"GET", "/healthz", 200, `"status":"ok"`},
		{"GET", "/readyz", 200, `"status":"ready"`},
		{"POST", "/v1/forward", 404, ""},
		{"POST", "/v1/cards", 404, ""},
		{"GET", "/debug/pprof/", 404, ""},
		{"POST", "/metrics", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			srv.Handler.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.want || !strings.Contains(rec.Body.String(), tt.body) {
				t.Errorf("%s %s = %d %.200q, want %d with %q", tt.method, tt.path, rec.Code, rec.Body.String(), tt.want, tt.body)
			}
		})
	}

	cfg.Admin.Addr = ""
	if srv := tel.newAdminServer(context.Background(), cfg, testAPI(t), slog.New(slog.DiscardHandler)); srv != nil {
		t.Errorf("admin server built with admin.addr empty")
	}
}

// Every route the API serves must have a span name of its own, or it
// would be traced as "other".
func TestAPIRoutesNamed(t *testing.T) {
	seen := map[string]bool{}
	err := chi.Walk(testAPI(t).(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		seen[route] = true
		if !apiRoutes[route] {
			t.Errorf("route %s %s is missing from apiRoutes", method, route)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for r := range apiRoutes {
		if !seen[r] {
			t.Errorf("apiRoutes names %s, which the API no longer serves", r)
		}
	}
}

func TestProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.Write([]byte("ok"))
			return
		}
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	tests := []struct {
		name    string
		args    []string
		wantErr bool
	}{
		{"healthy", []string{srv.URL + "/healthz"}, false},
		{"unavailable", []string{srv.URL + "/readyz"}, true},
		{"https refused", []string{"https://127.0.0.1:1/healthz"}, true},
		{"no url", nil, true},
		{"nothing listening", []string{"-timeout", "1s", "http://127.0.0.1:1/healthz"}, true},
		{"not loopback", []string{"-timeout", "1s", "http://10.0.0.1:9464/healthz"}, true},
		{"a name", []string{"-timeout", "1s", "http://processor.example:80/"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := runProbe(context.Background(), tt.args, io.Discard, io.Discard)
			if (err != nil) != tt.wantErr {
				t.Errorf("probe %v = %v, want error %v", tt.args, err, tt.wantErr)
			}
		})
	}
}
