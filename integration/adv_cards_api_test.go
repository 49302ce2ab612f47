package integration

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCardAPIHostileCaller: odd token spellings in the path answer
// token_not_found or not_found and never reach a log; a caller without
// the permission gets the same answer for a held and an unknown token;
// hostile PATCH and CVC bodies are refused; a CVC cannot be collected for
// a deleted token, and nothing of it reaches the log or audit.
func TestCardAPIHostileCaller(t *testing.T) {
	e := newEnv(t)
	e.writeConfig(cardCallers)
	e.signAllowlist(e.allowlistYAML(1))
	e.start()
	bill, pay := e.client(billing), e.client(payouts)
	tok := e.tokenize(bill, visa)
	never := "tok_" + strings.Repeat("a", 32)
	future := itoa(time.Now().Year() + 3)

	for _, p := range []string{
		"/v1/cards/" + visa, "/v1/cards/" + visa + "/cvc", "/v1/cards/tok_" + visa + "aaaaaaaaaaaaaaaa",
		"/v1/cards/" + strings.ToUpper(tok), "/v1/cards/" + tok + "%2Fcvc", "/v1/cards/..%2F" + tok,
		"/v1/cards/" + tok + "/", "/v1/cards/" + strings.Repeat("tok_", 2000), "/v1/cards/tok_%C3%A9" + strings.Repeat("a", 30),
		"/v1/cards/" + tok[:len(tok)-1] + "%00",
	} {
		status, out := e.do(bill, "GET", p, "")
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed && status != http.StatusRequestURITooLong && status != http.StatusBadRequest {
			t.Errorf("GET %.40s = %d %v, want a refusal", p, status, out)
		}
	}
	// No oracle: payouts may not update; held and unknown tokens answer alike.
	s1, o1 := e.do(pay, "PATCH", "/v1/cards/"+tok, `{"name":"X"}`)
	s2, o2 := e.do(pay, "PATCH", "/v1/cards/"+never, `{"name":"X"}`)
	if s1 != s2 || errCode(o1) != errCode(o2) {
		t.Errorf("PATCH as payouts: held %d %v, unknown %d %v; want the same", s1, o1, s2, o2)
	}
	for _, b := range []string{
		`{"name":"A","name":"B"}`,
		`{"number":"` + mastercard + `"}`,
		`{"name":"` + visa + `"}`,
		`{"name":"4242 4242 4242 4242"}`,
		`{"exp_month":1,"exp_year":2001}`,
		`{"exp_month":13,"exp_year":` + future + `}`,
		`{"exp_month":"6","exp_year":` + future + `}`,
		`{"exp_month":6}`,
		`{}`,
		`{"name":"` + strings.Repeat("x", 70000) + `"}`,
		`{"name":"a\u0000b"}`,
		`{"cvc":"` + testCVC + `"}`,
	} {
		status, out := e.do(bill, "PATCH", "/v1/cards/"+tok, b)
		if status < 400 {
			t.Errorf("PATCH %.40s = %d %v, want a refusal", b, status, out)
		}
	}
	if status, out := e.do(bill, "GET", "/v1/cards/"+tok, ""); status != http.StatusOK || out["exp_month"] == float64(1) {
		t.Errorf("GET after refused PATCHes = %d %v", status, out)
	}
	// Twice, then deleted.
	for i := 0; i < 2; i++ {
		if status, out := e.do(bill, "POST", "/v1/cards/"+tok+"/cvc", `{"cvc":"`+testCVC+`"}`); status != http.StatusOK {
			t.Errorf("CVC #%d = %d %v, want 200", i+1, status, out)
		}
	}
	if status, _ := e.do(bill, "DELETE", "/v1/cards/"+tok, ""); status != http.StatusNoContent {
		t.Fatalf("DELETE = %d", status)
	}
	if status, out := e.do(bill, "POST", "/v1/cards/"+tok+"/cvc", `{"cvc":"`+testCVC+`"}`); status != http.StatusNotFound {
		t.Errorf("CVC after delete = %d %v, want 404", status, out)
	}
	if status, out := e.do(bill, "PATCH", "/v1/cards/"+tok, `{"name":"Zed"}`); status != http.StatusNotFound {
		t.Errorf("PATCH after delete = %d %v, want 404", status, out)
	}
	if status, _ := e.do(bill, "GET", "/v1/cards/"+tok, ""); status != http.StatusNotFound {
		t.Errorf("GET after CVC and PATCH on a deleted token = %d, want 404 (no resurrection)", status)
	}
	audit, _ := os.ReadFile(filepath.Join(e.dir, "audit.log"))
	for what, b := range map[string][]byte{"audit log": audit, "gateway log": []byte(e.gw.log())} {
		e.assertNoCardsIn(what, b)
		for _, s := range []string{"Zed", `"exp_year":` + future, "4242 4242"} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds %q", what, s)
			}
		}
	}
}
