package api

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardgate/cardgate/forwarder"
)

// foldingNames is a headers object of more names than duplicateKey
// compares one by one (fewKeys), some of them equal to an earlier one
// only under Unicode simple folding when last is "K" or "ſ".
func foldingNames(last string) string {
	var b strings.Builder
	b.WriteString(`{"headers":{"k":["1"],"s":["2"]`)
	for i := range fewKeys + 2 {
		b.WriteString(`,"X-` + string(rune('a'+i)) + `":["v"]`)
	}
	b.WriteString(`,"` + last + `":["3"]}}`)
	return b.String()
}

// FuzzDecodeForward: decodeForward, fast path and all, answers every body
// exactly as decodeJSON's generic path alone does: the same error code
// and message, and the same Request, whether the body is accepted or not.
// Unlike FuzzDecodeForwardFast it also runs bodies that are not UTF-8,
// and compares refusals.
func FuzzDecodeForward(f *testing.F) {
	for _, s := range []string{
		benchForward,
		`{"destination":"d","dry_run":true}`,
		`{"dry_run":true,"dry_run":false}`,
		`{"headers":{"K":["1"],"k":["2"]}}`,
		`{"cards":{"ſ":"tok_a","S":"tok_b"}}`,
		`{"body":"\u0041\n"}`,
		`{"card":"4111111111111111","body":"4111111111111111"}`,
		`{"headers":{"4111111111111111":["x"]}}`,
		`{"4111111111111111":"x"}`,
		"{\"body\":\"\xff\"}",
		"\ufeff{\"method\":\"GET\"}",
		`{"method":"GET"} x`,
		foldingNames("K"),
		foldingNames("ſ"),
		foldingNames("Z"),
		namesBody("headers", maxFastNames+1),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		decode := func(fast bool) (forwarder.Request, *Error) {
			r := httptest.NewRequest("POST", "/v1/forward", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			var req forwarder.Request
			var err error
			if fast {
				err = decodeForward(r, &req)
			} else {
				err = decodeJSON(r, &req)
			}
			if err == nil {
				return req, nil
			}
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("%q: error %T, want *Error", body, err)
			}
			return req, e
		}
		gotReq, gotErr := decode(true)
		wantReq, wantErr := decode(false)
		if diff := cmp.Diff(wantErr, gotErr); diff != "" {
			t.Fatalf("%q: decodeForward's error differs from the generic path's (-generic +decodeForward):\n%s", body, diff)
		}
		if diff := cmp.Diff(wantReq, gotReq); diff != "" {
			t.Fatalf("%q: decodeForward's Request differs from the generic path's (-generic +decodeForward):\n%s", body, diff)
		}
	})
}
