package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestForwardDecodeFastMatchesGeneric sends each body twice over the
// built binary: as written, in the shape the fast /v1/forward decoder
// reads, and with one letter of the destination written as a \u escape,
// which that decoder leaves to encoding/json. The two decode to the same
// request, so the answers must be the same (status, error code and
// message; a dry run's whole preview; what the processor received), and
// none may quote a card number put in a value, a header or a name.
func TestForwardDecodeFastMatchesGeneric(t *testing.T) {
	e := newEnv(t)
	e.signAllowlist(e.allowlistYAML(1))
	e.start()
	c := e.client(billing)
	tok := e.tokenize(c, visa)
	tok2 := e.tokenize(c, mastercard)

	manyHeaders := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, `,"X-H%d":["v"]`, i)
		}
		return b.String()
	}
	template := `{\"amount\":1000,\"number\":\"{{card.number}}\",\"exp\":\"{{card.exp_month}}/{{card.exp_year}}\"}`
	// {{D}} is the destination, {{U}} the URL, {{T}} the token.
	tests := []struct{ name, body string }{
		{"dry run", `{"destination":"{{D}}","url":"{{U}}","method":"POST","card":"{{T}}","headers":{"Content-Type":["application/json"]},"body":"` + template + `","dry_run":true}`},
		{"sent", `{"destination":"{{D}}","url":"{{U}}","method":"POST","card":"{{T}}","headers":{"Content-Type":["application/json"]},"body":"` + template + `"}`},
		{"short escapes and odd characters in the template", `{"destination":"{{D}}","url":"{{U}}","method":"POST","card":"{{T}}","headers":{"Content-Type":["text/plain"]},"body":"a\tb\\c\/d\"e` + "\u2028\x7f" + ` {{card.number}}","dry_run":true}`},
		{"card number in the template", `{"destination":"{{D}}","url":"{{U}}","method":"POST","card":"{{T}}","headers":{"Content-Type":["application/json"]},"body":"{\"number\":\"` + visa2 + `\"}","dry_run":true}`},
		{"card number in a header value", `{"destination":"{{D}}","url":"{{U}}","method":"POST","card":"{{T}}","headers":{"Content-Type":["application/json"],"X-Ref":["` + visa2 + `"]},"body":"` + template + `","dry_run":true}`},
		{"card number as a header name", `{"destination":"{{D}}","url":"{{U}}","method":"POST","card":"{{T}}","headers":{"` + visa2 + `":["x"]},"body":"` + template + `","dry_run":true}`},
		{"card number for the token", `{"destination":"{{D}}","url":"{{U}}","method":"POST","card":"` + visa2 + `","headers":{"Content-Type":["application/json"]},"body":"` + template + `","dry_run":true}`},
		{"card number in the URL", `{"destination":"{{D}}","url":"{{U}}?n=` + visa2 + `","method":"POST","card":"{{T}}","body":"` + template + `","dry_run":true}`},
		{"card number as a card name", `{"destination":"{{D}}","url":"{{U}}","method":"POST","cards":{"` + visa2 + `":"{{T}}"},"body":"{{cards.primary.number}}","dry_run":true}`},
		{"named cards", `{"destination":"{{D}}","url":"{{U}}","method":"POST","cards":{"primary":"{{T}}","funding":"` + tok2 + `"},"headers":{"Content-Type":["application/json"]},"body":"{\"a\":\"{{cards.primary.number}}\",\"b\":\"{{cards.funding.number}}\"}","dry_run":true}`},
		{"card and cards", `{"destination":"{{D}}","url":"{{U}}","method":"POST","card":"{{T}}","cards":{"primary":"{{T}}"},"body":"` + template + `","dry_run":true}`},
		{"header named twice with a Kelvin sign", `{"destination":"{{D}}","url":"{{U}}","method":"POST","card":"{{T}}","headers":{"K":["` + visa2 + `"],"K":["2"]},"body":"` + template + `","dry_run":true}`},
		{"card named twice with a long s", `{"destination":"{{D}}","url":"{{U}}","method":"POST","cards":{"s":"{{T}}","ſ":"{{T}}"},"body":"` + template + `","dry_run":true}`},
		{"CR LF in a header value", `{"destination":"{{D}}","url":"{{U}}","method":"POST","card":"{{T}}","headers":{"Content-Type":["application/json"],"X-A":["1\r\nX-B: ` + visa2 + `"]},"body":"` + template + `"}`},
		{"CR LF in a header name", `{"destination":"{{D}}","url":"{{U}}","method":"POST","card":"{{T}}","headers":{"Content-Type":["application/json"],"X-A\r\nX-B":["1"]},"body":"` + template + `"}`},
		{"empty header name", `{"destination":"{{D}}","url":"{{U}}","method":"POST","card":"{{T}}","headers":{"":["` + visa2 + `"]},"body":"` + template + `","dry_run":true}`},
		{"32 headers", `{"destination":"{{D}}","url":"{{U}}","method":"POST","card":"{{T}}","headers":{"Content-Type":["application/json"]` + manyHeaders(31) + `},"body":"` + template + `","dry_run":true}`},
		{"33 headers", `{"destination":"{{D}}","url":"{{U}}","method":"POST","card":"{{T}}","headers":{"Content-Type":["application/json"]` + manyHeaders(32) + `},"body":"` + template + `","dry_run":true}`},
		{"more headers than the forwarder takes", `{"destination":"{{D}}","url":"{{U}}","method":"POST","card":"{{T}}","headers":{"Content-Type":["application/json"]` + manyHeaders(100) + `},"body":"` + template + `","dry_run":true}`},
		{"unlisted method", `{"destination":"{{D}}","url":"{{U}}","method":"DELETE","card":"{{T}}","body":"` + template + `","dry_run":true}`},
		{"dry run false, then data", `{"destination":"{{D}}","url":"{{U}}","method":"POST","card":"{{T}}","dry_run":false} {"x":"` + visa2 + `"}`},
		{"repeated key holding a card", `{"destination":"{{D}}","url":"{{U}}","method":"POST","card":"{{T}}","body":"` + visa2 + `","body":"x","dry_run":true}`},
		{"unknown key holding a card", `{"destination":"{{D}}","url":"{{U}}","method":"POST","card":"{{T}}","note":"` + visa2 + `","dry_run":true}`},
	}
	type result struct {
		Status   int
		Answer   map[string]any
		Received []string // bodies the processor got for this request
	}
	send := func(t *testing.T, body string) result {
		before := len(e.processor.received())
		status, raw := postJSON(t, c, "https://"+e.addr+"/v1/forward", body)
		e.assertNoCardsIn("answer", raw)
		var ans map[string]any
		if err := json.Unmarshal(raw, &ans); err != nil {
			t.Fatalf("answer is not JSON: %v", err)
		}
		// One per request.
		delete(ans, "forward_id")
		if eb, ok := ans["error"].(map[string]any); ok {
			delete(eb, "request_id")
		}
		res := result{Status: status, Answer: ans}
		for _, r := range e.processor.received()[before:] {
			res.Received = append(res.Received, r.Body)
		}
		return res
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fill := func(dest string) string {
				return strings.NewReplacer("{{D}}", dest, "{{U}}", e.procURL, "{{T}}", tok).Replace(tt.body)
			}
			fast := send(t, fill("acme-charges"))
			generic := send(t, fill(`\u0061cme-charges`))
			if diff := cmp.Diff(generic, fast); diff != "" {
				t.Errorf("the answers differ (-generic +fast):\n%s", diff)
			}
			t.Logf("%d %s", fast.Status, errCode(fast.Answer))
		})
	}
}
