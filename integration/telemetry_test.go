package integration

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is a minimal OTLP/HTTP trace receiver: it implements the
// protocol's one endpoint (POST /v1/traces, binary protobuf) and keeps
// every request it decodes.
type otlpReceiver struct {
	url  string
	mu   sync.Mutex
	reqs []*coltrace.ExportTraceServiceRequest
	bad  []string
}

func startOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	rc := &otlpReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
		req := &coltrace.ExportTraceServiceRequest{}
		if err == nil {
			err = proto.Unmarshal(b, req)
		}
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" || err != nil {
			rc.bad = append(rc.bad, fmt.Sprintf("%s %s %s: %v", r.Method, r.URL.Path, r.Header.Get("Content-Type"), err))
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		rc.reqs = append(rc.reqs, req)
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(srv.Close)
	rc.url = srv.URL
	return rc
}

func (rc *otlpReceiver) received() []*coltrace.ExportTraceServiceRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]*coltrace.ExportTraceServiceRequest(nil), rc.reqs...)
}

// callerTrace is the W3C trace every request in the leak test continues.
const callerTrace = "0af7651916cd43dd8448eb211c80319c"

// TestTelemetryCarriesNoCards runs the gateway with OTLP trace export to
// an in-test receiver and the admin listener on, sends forwards of every
// test card (and requests that try to smuggle one into the telemetry),
// then reads every span, the Prometheus scrape and the whole log, and
// looks for the card numbers and the CVC.
func TestTelemetryCarriesNoCards(t *testing.T) {
	rc := startOTLPReceiver(t)
	e := newEnv(t)
	e.writeConfig(fmt.Sprintf(`telemetry:
  traces:
    exporter: otlp
    otlp:
      endpoint: %s/v1/traces
admin:
  addr: 127.0.0.1:0
`, rc.url))
	e.signAllowlist(e.allowlistYAML(1))
	e.start()
	adminAddr, err := e.gw.waitForLog("admin listening", "addr", 5*time.Second)
	if err != nil {
		t.Fatalf("no admin listener: %v\n%s", err, e.gw.log())
	}
	c := e.client(billing)

	send := func(path string, v any) (int, []byte) {
		t.Helper()
		b, _ := json.Marshal(v)
		req, err := http.NewRequest(http.MethodPost, "https://"+e.addr+path, bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Traceparent", "00-"+callerTrace+"-b7ad6b7169203331-01")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, raw
	}

	// The happy path, once per test card with a three-digit CVC (the
	// helper's testCVC; American Express needs four).
	happy := []string{visa, visa2, mastercard}
	for _, card := range happy {
		tok := e.tokenize(c, card)
		req := forwardBody(tok)
		req["url"] = e.procURL
		if status, raw := send("/v1/forward", req); status != http.StatusOK {
			t.Fatalf("forward of a %s… card = %d %s, want 200", card[:4], status, raw)
		}
	}
	if n := len(e.processor.received()); n != len(happy) {
		t.Fatalf("processor received %d forwards, want %d", n, len(happy))
	}

	// Requests that put a card number where telemetry might copy it: each
	// is refused, and none of them may leave the number in a span, a
	// metric or the log.
	tok := e.tokenize(c, visa)
	hostile := []struct {
		name   string
		mutate func(m map[string]any)
	}{
		{"card number as the token", func(m map[string]any) { m["card"] = visa2 }},
		{"card number in the url query", func(m map[string]any) { m["url"] = e.procURL + "?pan=" + mastercard }},
		{"card number in a header value", func(m map[string]any) {
			m["headers"] = map[string][]string{"Content-Type": {"application/json"}, "X-Note": {amex}}
		}},
	}
	for _, h := range hostile {
		req := forwardBody(tok)
		req["url"] = e.procURL
		h.mutate(req)
		if status, raw := send("/v1/forward", req); status == http.StatusOK {
			t.Errorf("%s: forward = 200 %s, want a refusal", h.name, raw)
		}
	}

	// Metrics, scraped from the admin listener as Prometheus would.
	resp, err := http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	for _, want := range []string{
		`cardgate_forwarder_forwards_total{`,
		`destination="acme-charges"`,
		`outcome="answered"`,
		`cardgate_forwarder_duration_seconds_bucket{`,
		`cardgate_allowlist_version`,
		`cardgate_vaultclient_key_duration_seconds_bucket{backend="local",operation="decrypt",`,
		`cardgate_vaultclient_store_duration_seconds_bucket{`,
	} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	e.assertNoCardsIn("the Prometheus scrape", metrics)
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + adminAddr + p)
		if err != nil {
			t.Fatalf("GET admin %s: %v", p, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET admin %s = %d, want 200", p, resp.StatusCode)
		}
	}
	resp, err = http.Post("http://"+adminAddr+"/v1/forward", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatalf("POST admin /v1/forward: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST admin /v1/forward = %d, want 404: the admin listener serves no card endpoint", resp.StatusCode)
	}

	// A graceful shutdown flushes the batched spans to the receiver.
	if err := e.gw.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, err := e.gw.wait(20 * time.Second); err != nil || code != 0 {
		t.Fatalf("gateway exit = %d, %v; want 0\n%s", code, err, e.gw.log())
	}

	// Spans: decoded, then rendered as JSON for the search.
	reqs := rc.received()
	if len(reqs) == 0 || len(rc.bad) > 0 {
		t.Fatalf("receiver got %d exports and bad requests %v; want spans flushed on shutdown", len(reqs), rc.bad)
	}
	wantTrace, _ := hex.DecodeString(callerTrace)
	names := map[string]int{}
	inCallerTrace := 0
	var all bytes.Buffer
	for _, r := range reqs {
		for _, rs := range r.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					names[s.Name]++
					if bytes.Equal(s.TraceId, wantTrace) {
						inCallerTrace++
					}
				}
			}
		}
		b, err := protojson.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
		all.WriteByte('\n')
	}
	if names["forwarder.Forward"] < len(happy) || names["POST /v1/forward"] < len(happy) {
		t.Errorf("spans by name %v; want a server span and a forwarder span per forward", names)
	}
	if inCallerTrace == 0 {
		t.Errorf("no span continues the caller's trace %s", callerTrace)
	}
	e.assertNoCardsIn("the exported spans", all.Bytes())

	// Logs: every forward line carries the caller's trace id.
	forwardLines := 0
	sc := bufio.NewScanner(strings.NewReader(e.gw.log()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil || line["msg"] != "forward" {
			continue
		}
		forwardLines++
		if line["trace_id"] != callerTrace || line["span_id"] == nil {
			t.Errorf("forward log line has trace_id %v span_id %v, want the caller's trace %s", line["trace_id"], line["span_id"], callerTrace)
		}
	}
	if forwardLines < len(happy) {
		t.Errorf("%d forward log lines, want at least %d", forwardLines, len(happy))
	}
	// The whole log is checked for cards by start's cleanup.
}

// TestTelemetryHostileIdentifiers sends card numbers where the gateway
// copies a caller's string into telemetry: the destination id (span
// attribute, metric label, forward log line) and the request path (the
// API's request log line). The path is safe since api logs the route; the
// destination is safe since forwarder refuses an id that is not spelled
// like an allowlist id or holds a card number, and records it only after.
func TestTelemetryHostileIdentifiers(t *testing.T) {
	rc := startOTLPReceiver(t)
	e := newEnv(t)
	e.writeConfig(fmt.Sprintf("telemetry:\n  traces:\n    exporter: otlp\n    otlp:\n      endpoint: %s/v1/traces\nadmin:\n  addr: 127.0.0.1:0\n", rc.url))
	e.signAllowlist(e.allowlistYAML(1))
	e.start()
	adminAddr, err := e.gw.waitForLog("admin listening", "addr", 5*time.Second)
	if err != nil {
		t.Fatalf("no admin listener: %v", err)
	}
	c := e.client(billing)
	req := forwardBody(e.tokenize(c, visa))
	req["url"] = e.procURL
	req["destination"] = visa2
	if status, out := e.post(c, "/v1/forward", req); status == http.StatusOK {
		t.Errorf("forward to destination %q… = 200 %v, want a refusal", visa2[:4], out)
	}
	if status, _ := e.post(c, "/v1/"+mastercard, map[string]any{}); status != http.StatusNotFound {
		t.Errorf("POST /v1/<card number> = %d, want 404", status)
	}
	resp, err := http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	e.assertNoCardsIn("the Prometheus scrape", metrics)
	if err := e.gw.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := e.gw.wait(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	for _, r := range rc.received() {
		b, _ := protojson.Marshal(r)
		e.assertNoCardsIn("the exported spans", b)
	}
}
