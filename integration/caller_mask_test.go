package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCardLikeCallerIsMasked runs the gateway in dev mode and sends a
// forward as `Cardgate-Dev-Caller: 4242424242424242`. The request goes on
// as the masked identity dev:************4242, which no entry lists: it is
// refused as caller_not_allowed, the denied audit record is written (with
// the masked caller, and `audit verify` accepts it), and neither the log,
// the spans (stdout exporter, in the same output) nor the answer holds the
// number.
func TestCardLikeCallerIsMasked(t *testing.T) {
	e := newEnv(t)
	auditFile := filepath.Join(e.dir, "audit.log")
	e.write("cardgate.yaml", fmt.Appendf(nil, `mode: dev
environment: integration
listen:
  addr: 127.0.0.1:0
allowlist:
  path: %[1]s/allowlist.yaml
  signatures_dir: %[1]s/allowlist.sigs
  allowed_signers: %[1]s/allowed_signers
  threshold: 1
  state_file: %[1]s/allowlist.state
store:
  backend: bolt
  bolt:
    path: %[1]s/cards.db
keys:
  backend: local
  local:
    path: %[1]s/keyring.json
egress:
  ca_file: %[1]s/processor-ca.pem
  timeout: 5s
audit:
  file: %[2]s
telemetry:
  traces:
    exporter: stdout
    sample_ratio: 1
log:
  level: debug
`, e.dir, auditFile))
	// The env's allowlist, for the dev identity of billing.
	e.signAllowlist(strings.ReplaceAll(e.allowlistYAML(1), billing, "dev:billing"))

	gw, err := startProcess(t, binary, "serve", "-config", filepath.Join(e.dir, "cardgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	addr, err := gw.waitForLog("cardgate listening", "addr", 15*time.Second)
	if err != nil {
		t.Fatalf("gateway did not start: %v\nlog:\n%s", err, gw.log())
	}
	base := "http://" + addr
	c := &http.Client{Timeout: 15 * time.Second}
	send := func(caller, path string, v any) (int, []byte) {
		t.Helper()
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Cardgate-Dev-Caller", caller)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, raw
	}
	waitUntil(t, "the gateway is ready", 10*time.Second, func() bool {
		resp, err := c.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	status, raw := send("billing", "/v1/cards", map[string]any{"number": visa2, "exp_month": 12, "exp_year": time.Now().Year() + 2, "cvc": testCVC})
	var info struct{ Token string }
	if err := json.Unmarshal(raw, &info); status != http.StatusCreated || err != nil {
		t.Fatalf("POST /v1/cards = %d %s", status, raw)
	}
	fwd := forwardBody(info.Token)
	fwd["url"] = e.procURL
	fwd["body"] = `{"number":"{{card.number}}"}`
	// The listed dev caller forwards: the setup works.
	if status, raw := send("billing", "/v1/forward", fwd); status != http.StatusOK {
		t.Fatalf("forward as dev:billing = %d %s, want 200", status, raw)
	}

	status, raw = send(visa, "/v1/forward", fwd)
	var out struct {
		Error struct{ Code, Message, Outcome string }
	}
	if err := json.Unmarshal(raw, &out); status != http.StatusForbidden || err != nil || out.Error.Code != "caller_not_allowed" || out.Error.Outcome != "not_sent" {
		t.Errorf("forward as a card-like caller = %d %s, want 403 caller_not_allowed not_sent", status, raw)
	}
	e.assertNoCardsIn("the answer", raw)

	// Stop the gateway so that every span is flushed to its output.
	if err := gw.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, err := gw.wait(20 * time.Second); err != nil || code != 0 {
		t.Fatalf("gateway exit = %d, %v\nlog:\n%s", code, err, gw.log())
	}
	output := gw.log()
	e.assertNoCardsIn("the gateway log and spans", []byte(output))
	if !strings.Contains(output, `"caller":"dev:************4242"`) {
		t.Errorf("the log does not name the masked caller:\n%s", output)
	}
	if !strings.Contains(output, `"cardgate.caller"`) {
		t.Errorf("no span with a caller attribute reached the output; the span check above proves nothing:\n%s", output)
	}
	if strings.Contains(output, "card-like") || strings.Contains(output, "audit: field") {
		t.Errorf("a record was refused by the audit log:\n%s", output)
	}

	rawAudit, err := os.ReadFile(auditFile)
	if err != nil {
		t.Fatal(err)
	}
	e.assertNoCardsIn("the audit file", rawAudit)
	var denied int
	for _, line := range bytes.Split(bytes.TrimSpace(rawAudit), []byte("\n")) {
		var r struct{ Kind, Caller, Reason string }
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if r.Kind == "denied" {
			denied++
			if r.Caller != "dev:************4242" || r.Reason != "caller_not_allowed" {
				t.Errorf("denied record caller %q reason %q, want dev:************4242 caller_not_allowed", r.Caller, r.Reason)
			}
		}
	}
	if denied != 1 {
		t.Errorf("the audit file holds %d denied records, want 1:\n%s", denied, rawAudit)
	}
	run(t, binary, "audit", "verify", auditFile)
}
