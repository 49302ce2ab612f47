package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The result record no longer blocks the answer: the caller is answered
// once it is written to the audit file, and its fsync follows (audit
// AppendWritten). These crash tests SIGKILL the built binary at the two
// moments that matter and read what an auditor would.

// auditKinds returns the kind of every record of forward id in the audit
// file at path, in order.
func auditKindsOf(t *testing.T, path, id string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the audit file: %v", err)
	}
	var kinds []string
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var rec struct {
			Kind      string `json:"kind"`
			ForwardID string `json:"forward_id"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("audit file line %q: %v", line, err)
		}
		if rec.ForwardID == id {
			kinds = append(kinds, rec.Kind)
		}
	}
	return kinds
}

// verifyAudit runs cardgate audit verify on path and returns its output;
// the log must verify whatever the crash left.
func verifyAudit(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command(binary, "audit", "verify", path).CombinedOutput()
	if err != nil {
		t.Fatalf("audit verify after the crash: %v\n%s", err, out)
	}
	return string(out)
}

// TestCrashAfterAnswerKeepsTheResult: SIGKILL right after the caller got
// its answer, before the deferred fsync could run. The result was written
// before the answer, so the file holds it: only a crash of the machine in
// that window of milliseconds could lose it.
func TestCrashAfterAnswerKeepsTheResult(t *testing.T) {
	e := newEnv(t)
	e.signAllowlist(e.allowlistYAML(1))
	e.start()
	c := e.client(billing)
	tok := e.tokenize(c, visa)

	r := e.forward(context.Background(), c, drillBody(tok, "acme-charges", e.procURL))
	if err := e.gw.signal(syscall.SIGKILL); err != nil { // nothing of the process runs after it
		t.Fatal(err)
	}
	if r.status != http.StatusOK || r.outcome != "answered" || r.forwardID == "" {
		t.Fatalf("forward = %v, want 200 answered", r)
	}
	if _, err := e.gw.wait(drillBound); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(e.dir, "audit.log")
	if got := strings.Join(auditKindsOf(t, path, r.forwardID), ","); got != "intent,result" {
		t.Errorf("audit records of the answered forward after SIGKILL: %q, want intent,result", got)
	}
	if out := verifyAudit(t, path); strings.Contains(out, "outcome unknown") {
		t.Errorf("audit verify lists an outcome unknown for an answered forward:\n%s", out)
	}
}

// TestCrashWhileSendingLeavesOutcomeUnknown: SIGKILL while the processor
// holds the card, the worst moment for the record of the outcome. The
// audit file holds the intent and no result; audit verify lists the
// forward as outcome unknown; and a retry with the same Idempotency-Key,
// on the restarted gateway, does not send the card again.
func TestCrashWhileSendingLeavesOutcomeUnknown(t *testing.T) {
	e := newEnv(t)
	held := startUpstream(t, e.procCA)
	e.signAllowlist(e.allowlistYAML(1) + drillEntry("drill-held", held.addr))
	e.start()
	c := e.client(billing)
	tok := e.tokenize(c, visa)
	// The card and the allowlist mark survive the gateway's crash: Redis
	// is not what crashes here.
	body := drillBody(tok, "drill-held", "https://"+held.addr+"/v1/charges")
	key := http.Header{"Idempotency-Key": {"order-crash-1"}}

	done := make(chan result, 1)
	go func() { done <- e.forwardWith(context.Background(), c, body, key) }()
	waitUntil(t, "the processor holds the card", drillBound, func() bool { got, _, _ := held.counts(); return got == 1 })
	if err := e.gw.signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.err == nil {
		t.Errorf("the caller got an answer from a killed gateway: %v", r)
	}
	if _, err := e.gw.wait(drillBound); err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(e.dir, "audit.log")
	intents := auditIntents(t, path)
	if len(intents) != 1 {
		t.Fatalf("audit file holds %d intents, want 1", len(intents))
	}
	var id string
	for id = range intents {
	}
	if got := strings.Join(auditKindsOf(t, path, id), ","); got != "intent" {
		t.Errorf("audit records of the killed forward: %q, want the intent alone", got)
	}
	out := verifyAudit(t, path)
	if !strings.Contains(out, "outcome unknown") || !strings.Contains(out, id) {
		t.Errorf("audit verify does not list forward %s as outcome unknown:\n%s", id, out)
	}

	// Restarted on the same Redis and audit file, the gateway must not
	// send the card again for the same key.
	e.start()
	c = e.client(billing)
	held.Release()
	r := e.forwardWith(context.Background(), c, body, key)
	if r.status == http.StatusOK {
		t.Errorf("retry with the same Idempotency-Key after the crash = %v, want a refusal", r)
	}
	if r.code != "idempotency_in_progress" && r.code != "idempotency_outcome_unknown" {
		t.Errorf("retry with the same Idempotency-Key after the crash = %v, want idempotency_in_progress or idempotency_outcome_unknown", r)
	}
	if got, _, _ := held.counts(); got != 1 {
		t.Errorf("the processor received the card %d times, want once", got)
	}
}
