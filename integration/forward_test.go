// Package integration holds cardgate's end-to-end tests: the built binary,
// a real redis-server, real TLS and mTLS with certificates made in the test,
// allowlists signed with the stock ssh-keygen, and a TLS test processor.
package integration

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func forwardBody(token string) map[string]any {
	return map[string]any{
		"destination": "acme-charges",
		"method":      "POST",
		"card":        token,
		"headers":     map[string][]string{"Content-Type": {"application/json"}},
		"body":        `{"amount":1000,"number":"{{card.number}}","cvc":"{{card.cvc}}","exp":"{{card.exp_month}}/{{card.exp_year}}","name":"{{card.name}}"}`,
	}
}

func TestForward(t *testing.T) {
	e := newEnv(t)
	e.signAllowlist(e.allowlistYAML(1))
	e.start()
	c := e.client(billing)
	tok := e.tokenize(c, visa)
	if !strings.HasPrefix(tok, "tok_") {
		t.Fatalf("token = %q, want a tok_ prefix", tok)
	}

	req := forwardBody(tok)
	req["url"] = e.procURL
	status, out := e.post(c, "/v1/forward", req)
	if status != http.StatusOK {
		t.Fatalf("POST /v1/forward = %d %v, want 200", status, out)
	}

	got := e.processor.received()
	if len(got) != 1 {
		t.Fatalf("processor received %d requests, want 1", len(got))
	}
	var sent map[string]any
	if err := json.Unmarshal([]byte(got[0].Body), &sent); err != nil {
		t.Fatalf("processor received a body that is not JSON (escaping broken?): %v", err)
	}
	wantExp := "12/" + itoa(time.Now().Year()+2)
	if sent["number"] != visa || sent["cvc"] != testCVC || sent["exp"] != wantExp || sent["name"] != `Jane "JJ" Doe & Co` {
		t.Errorf("processor received number=%v… cvc set=%v exp=%v name=%v; want the card filled in and JSON-escaped",
			sent["number"] != nil, sent["cvc"] == testCVC, sent["exp"], sent["name"])
	}

	if out["outcome"] != "answered" || out["status"] != float64(http.StatusCreated) {
		t.Errorf("forward answer outcome=%v status=%v, want answered 201", out["outcome"], out["status"])
	}
	if v, _ := out["allowlist_version"].(float64); v != 1 {
		t.Errorf("allowlist_version = %v, want 1", out["allowlist_version"])
	}
	raw, _ := json.Marshal(out)
	e.assertNoCardsIn("the caller's response", raw)
	if !strings.Contains(string(raw), "4242") {
		t.Errorf("response %s lost the masked number entirely; want its last four kept", raw)
	}
	if strings.Contains(strings.ToLower(string(raw)), "processor-secret") {
		t.Errorf("response %s carries the processor's Set-Cookie", raw)
	}

	// The CVC is transient: its first forward deleted it.
	status, out = e.post(c, "/v1/forward", req)
	if status != http.StatusUnprocessableEntity || errCode(out) != "cvc_not_available" {
		t.Errorf("second forward with {{card.cvc}} = %d %v, want 422 cvc_not_available", status, out)
	}
	req["body"] = `{"number":"{{card.number}}"}`
	if status, out = e.post(c, "/v1/forward", req); status != http.StatusOK {
		t.Errorf("second forward without the CVC = %d %v, want 200", status, out)
	}

	// The store holds ciphertext only.
	e.assertNoCardsIn("the Redis dump", e.redis.Dump())
}

func TestRefusals(t *testing.T) {
	e := newEnv(t)
	e.signAllowlist(e.allowlistYAML(1))
	e.start()
	c := e.client(billing)
	tok := e.tokenize(c, mastercard)

	tests := []struct {
		name     string
		client   *http.Client
		mutate   func(m map[string]any)
		raw      string // sent verbatim instead of the JSON request
		status   int
		wantCode string
	}{
		{"destination not on the allowlist", c, func(m map[string]any) {
			m["destination"] = "exfil"
			m["url"] = "https://collector.attacker.example/x"
		}, "", http.StatusForbidden, "destination_not_allowed"},
		{"url outside the entry", c, func(m map[string]any) {
			m["url"] = strings.Replace(e.procURL, "/v1/charges", "/v2/steal", 1)
		}, "", http.StatusForbidden, "destination_not_allowed"},
		{"another entry's url", c, func(m map[string]any) {
			m["url"] = "https://" + e.processor.addr + "/v1/refunds"
		}, "", http.StatusForbidden, "destination_not_allowed"},
		{"method not allowed", c, func(m map[string]any) { m["method"] = "DELETE" }, "", http.StatusForbidden, "method_not_allowed"},
		{"caller not allowed", e.client(payouts), nil, "", http.StatusForbidden, "caller_not_allowed"},
		{"card field not allowed", c, func(m map[string]any) {
			m["destination"] = "acme-refunds"
			m["url"] = "https://" + e.processor.addr + "/v1/refunds"
		}, "", http.StatusForbidden, "card_field_not_allowed"},
		{"unknown token", c, func(m map[string]any) { m["card"] = "tok_0000000000000000000000000000" }, "", http.StatusNotFound, "token_not_found"},
		{"malformed token", c, func(m map[string]any) { m["card"] = "tok_../../etc" }, "", http.StatusNotFound, "token_not_found"},
		{"card number instead of a token", c, func(m map[string]any) { m["card"] = visa2 }, "", http.StatusUnprocessableEntity, "literal_card_in_request"},
		{"card number typed into the body", c, func(m map[string]any) { m["body"] = `{"number":"` + visa2 + `"}` }, "", http.StatusUnprocessableEntity, "literal_card_in_request"},
		{"unknown placeholder", c, func(m map[string]any) { m["body"] = `{"n":"{{card.pin}}"}` }, "", http.StatusUnprocessableEntity, "invalid_template"},
		{"malformed placeholder", c, func(m map[string]any) { m["body"] = `{"n":"{{card.number"}` }, "", http.StatusUnprocessableEntity, "invalid_template"},
		{"unknown json field", c, func(m map[string]any) { m["proxy"] = "yes" }, "", http.StatusBadRequest, "invalid_json"},
		{"wrong type", c, nil, `{"destination":"acme-charges","card":4242424242424242}`, http.StatusBadRequest, "invalid_json"},
		{"trailing data", c, nil, `{"destination":"acme-charges"} {}`, http.StatusBadRequest, "invalid_json"},
		{"oversized body", c, func(m map[string]any) { m["body"] = strings.Repeat("x", 70000) }, "", http.StatusRequestEntityTooLarge, "request_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.processor.received())
			var status int
			var out map[string]any
			if tt.raw != "" {
				status, out = e.post(tt.client, "/v1/forward", tt.raw)
			} else {
				req := forwardBody(tok)
				req["url"] = e.procURL
				if tt.mutate != nil {
					tt.mutate(req)
				}
				status, out = e.post(tt.client, "/v1/forward", req)
			}
			if status != tt.status || errCode(out) != tt.wantCode {
				t.Errorf("POST /v1/forward = %d %v, want %d %s", status, out, tt.status, tt.wantCode)
			}
			if errOut, _ := out["error"].(map[string]any); errOut["request_id"] == "" || errOut["request_id"] == nil {
				t.Errorf("error %v has no request_id", out)
			}
			if n := len(e.processor.received()); n != before {
				t.Errorf("processor received %d requests, want none", n-before)
			}
			raw, _ := json.Marshal(out)
			e.assertNoCardsIn("the error answer", raw)
		})
	}
}

func TestTokenizeRefusals(t *testing.T) {
	e := newEnv(t)
	e.signAllowlist(e.allowlistYAML(1))
	e.start()
	c := e.client(billing)
	year := time.Now().Year()
	tests := []struct {
		name     string
		body     map[string]any
		wantCode string
	}{
		{"luhn failure", map[string]any{"number": "4242424242424241", "exp_month": 1, "exp_year": year + 1}, "invalid_card_number"},
		{"too short", map[string]any{"number": "424242424242", "exp_month": 1, "exp_year": year + 1}, "invalid_card_number"},
		{"expired", map[string]any{"number": visa2, "exp_month": 1, "exp_year": year - 1}, "card_expired"},
		{"bad month", map[string]any{"number": visa2, "exp_month": 13, "exp_year": year + 1}, "invalid_expiry"},
		{"bad cvc", map[string]any{"number": visa2, "exp_month": 1, "exp_year": year + 1, "cvc": "12"}, "invalid_cvc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := e.post(c, "/v1/cards", tt.body)
			if status != http.StatusUnprocessableEntity || errCode(out) != tt.wantCode {
				t.Errorf("POST /v1/cards = %d %v, want 422 %s", status, out, tt.wantCode)
			}
			raw, _ := json.Marshal(out)
			e.assertNoCardsIn("the error answer", raw)
		})
	}
	// Only the allowlist's rollback mark may be there; no card record.
	keys, err := e.redis.Client().Keys(t.Context(), "*").Result()
	if err != nil {
		t.Fatalf("KEYS: %v", err)
	}
	for _, k := range keys {
		if !strings.Contains(k, "allowlist:state:") {
			t.Errorf("Redis holds key %q after refused tokenizations, want no card record", k)
		}
	}
}

func TestCallerWithoutCertificateIsRefused(t *testing.T) {
	e := newEnv(t)
	e.signAllowlist(e.allowlistYAML(1))
	e.start()
	_, err := e.client("").Get("https://" + e.addr + "/v1/forward")
	if err == nil {
		t.Fatal("a caller without a client certificate got an answer; want the TLS handshake refused")
	}
}

func TestGatewayRefusesToStart(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(e *env)
	}{
		{"altered after signing", func(e *env) {
			e.signAllowlist(e.allowlistYAML(1))
			p := filepath.Join(e.dir, "allowlist.yaml")
			b, _ := os.ReadFile(p)
			b = []byte(strings.Replace(string(b), "methods: [POST]", "methods: [POST, GET]", 1))
			os.WriteFile(p, b, 0o600)
		}},
		{"unsigned", func(e *env) {
			e.write("allowlist.yaml", []byte(e.allowlistYAML(1)))
			os.MkdirAll(filepath.Join(e.dir, "allowlist.sigs"), 0o700)
		}},
		{"signed by an unknown key", func(e *env) {
			other := filepath.Join(e.dir, "intruder")
			run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other)
			e.signKey = other
			e.signAllowlist(e.allowlistYAML(1))
		}},
		{"wrong namespace", func(e *env) {
			p := e.write("allowlist.yaml", []byte(e.allowlistYAML(1)))
			run(t, "ssh-keygen", "-q", "-Y", "sign", "-f", e.signKey, "-n", "file", p)
			sig, _ := os.ReadFile(p + ".sig")
			os.Remove(p + ".sig")
			e.write("allowlist.sigs/auditor.sig", sig)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			tt.prepare(e)
			p, err := startProcess(t, binary, "serve", "-config", filepath.Join(e.dir, "cardgate.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			code, err := p.wait(15 * time.Second)
			if err != nil {
				t.Fatalf("gateway %v; want it to refuse to start\nlog:\n%s", err, p.log())
			}
			if code == 0 {
				t.Errorf("gateway exited 0; want a failure")
			}
			if strings.Contains(p.log(), "cardgate listening") {
				t.Errorf("gateway listened before refusing:\n%s", p.log())
			}
		})
	}
}

func TestSIGTERMExitsCleanly(t *testing.T) {
	e := newEnv(t)
	e.signAllowlist(e.allowlistYAML(1))
	e.start()
	if err := e.gw.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, err := e.gw.wait(15 * time.Second)
	if err != nil || code != 0 {
		t.Errorf("after SIGTERM: exit %d, %v; want exit 0\nlog:\n%s", code, err, e.gw.log())
	}
	if !strings.Contains(e.gw.log(), `"msg":"audit chain head"`) || !strings.Contains(e.gw.log(), `"final":true`) {
		t.Errorf("no final audit chain head in the log after SIGTERM:\n%s", e.gw.log())
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
