package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cardCallers permits billing every card operation and payouts reading
// only: the callers section of these tests.
const cardCallers = `callers:
  - caller: "` + billing + `"
    allow: [tokenize, read, update, delete]
  - caller: "` + payouts + `"
    allow: [read]
`

// do sends one request with an optional JSON body and decodes a JSON
// answer, if there is one.
func (e *env) do(c *http.Client, method, path, body string) (int, map[string]any) {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "https://"+e.addr+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			e.t.Fatalf("%s %s: answer is not JSON: %q", method, path, raw)
		}
	}
	e.assertNoCardsIn(method+" "+path+" answer", raw)
	return resp.StatusCode, out
}

// TestCardLifecycleBinary: on the built binary with Redis, a caller the
// configuration does not permit is refused, and after a delete the token
// forwards, reads and deletes as one that never existed; nothing of it is
// left in Redis; the delete is audited; no card data reaches the log.
func TestCardLifecycleBinary(t *testing.T) {
	e := newEnv(t)
	e.writeConfig(cardCallers)
	e.signAllowlist(e.allowlistYAML(1))
	e.start()
	bill, pay := e.client(billing), e.client(payouts)
	tok := e.tokenize(bill, visa)
	future := itoa(time.Now().Year() + 3)

	// Permission refusals, one per operation payouts lacks.
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/v1/cards", `{"number":"` + mastercard + `","exp_month":1,"exp_year":` + future + `}`},
		{"PATCH", "/v1/cards/" + tok, `{"name":"Mallory"}`},
		{"POST", "/v1/cards/" + tok + "/cvc", `{"cvc":"999"}`},
		{"DELETE", "/v1/cards/" + tok, ""},
	} {
		if status, out := e.do(pay, r.method, r.path, r.body); status != http.StatusForbidden || errCode(out) != "operation_not_permitted" {
			t.Errorf("%s %s as payouts = %d %v, want 403 operation_not_permitted", r.method, r.path, status, out)
		}
	}
	if status, out := e.do(pay, "GET", "/v1/cards/"+tok, ""); status != http.StatusOK || out["last4"] != "4242" || out["cvc_held"] != true {
		t.Fatalf("GET as payouts = %d %v, want 200 with last4 4242 and the CVC held", status, out)
	}
	if status, out := e.do(bill, "PATCH", "/v1/cards/"+tok, `{"exp_month":6,"exp_year":`+future+`,"name":"Ann Other"}`); status != http.StatusOK || out["exp_month"] != float64(6) {
		t.Fatalf("PATCH as billing = %d %v, want 200 with exp_month 6", status, out)
	}

	// Delete, then the token is gone everywhere.
	if status, out := e.do(bill, "DELETE", "/v1/cards/"+tok, ""); status != http.StatusNoContent {
		t.Fatalf("DELETE = %d %v, want 204", status, out)
	}
	req := forwardBody(tok)
	req["url"] = e.procURL
	if status, out := e.post(bill, "/v1/forward", req); status != http.StatusNotFound || errCode(out) != "token_not_found" {
		t.Errorf("forward after delete = %d %v, want 404 token_not_found", status, out)
	}
	never := "tok_" + strings.Repeat("a", 32)
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/v1/cards/%s", ""},
		{"DELETE", "/v1/cards/%s", ""},
		{"PATCH", "/v1/cards/%s", `{"name":"X"}`},
	} {
		s1, o1 := e.do(bill, r.method, strings.Replace(r.path, "%s", tok, 1), r.body)
		s2, o2 := e.do(bill, r.method, strings.Replace(r.path, "%s", never, 1), r.body)
		m1, _ := o1["error"].(map[string]any)
		m2, _ := o2["error"].(map[string]any)
		if s1 != http.StatusNotFound || s1 != s2 || errCode(o1) != errCode(o2) || m1["message"] != m2["message"] {
			t.Errorf("%s after delete = %d %v; never existed = %d %v; want the same 404", r.method, s1, o1, s2, o2)
		}
	}
	if n := len(e.processor.received()); n != 0 {
		t.Errorf("processor received %d requests, want 0", n)
	}
	keys, err := e.redis.Client().Keys(context.Background(), "*"+tok+"*").Result()
	if err != nil || len(keys) != 0 {
		t.Errorf("redis keys naming the deleted token: %v, %v; want none", keys, err)
	}

	// Audited by kind and token; never the values.
	audit, err := os.ReadFile(filepath.Join(e.dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(audit, []byte(`"kind":"card_deleted"`)) || !bytes.Contains(audit, []byte(`"kind":"card_updated"`)) || !bytes.Contains(audit, []byte(tok)) {
		t.Errorf("audit log lacks the card_deleted and card_updated records for the token")
	}
	// The chain with the card records in it verifies with the stock command.
	run(t, binary, "audit", "verify", filepath.Join(e.dir, "audit.log"))
	for what, b := range map[string][]byte{"audit log": audit, "gateway log": []byte(e.gw.log())} {
		e.assertNoCardsIn(what, b)
		for _, secret := range []string{"Ann Other", "Mallory", `"exp_year":` + future} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds %q", what, secret)
			}
		}
	}
}

// TestCardDefaultsProduction: without a callers section, production lets
// every caller tokenize (as before the section existed) and refuses the
// other card calls.
func TestCardDefaultsProduction(t *testing.T) {
	e := newEnv(t)
	e.signAllowlist(e.allowlistYAML(1))
	e.start()
	c := e.client(payouts)
	tok := e.tokenize(c, visa)
	for _, method := range []string{"GET", "DELETE"} {
		if status, out := e.do(c, method, "/v1/cards/"+tok, ""); status != http.StatusForbidden || errCode(out) != "operation_not_permitted" {
			t.Errorf("%s without a callers section = %d %v, want 403 operation_not_permitted", method, status, out)
		}
	}
	if !strings.Contains(e.gw.log(), "no callers section") {
		t.Errorf("the gateway did not warn that the callers section is absent")
	}
}
