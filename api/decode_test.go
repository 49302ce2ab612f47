package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/cardgate/cardgate/cardscan"
)

// doCT posts body to /v1/forward as the dev caller with the given
// Content-Type header values (none when nil).
func doCT(h http.Handler, body string, contentTypes []string) (*httptest.ResponseRecorder, errorBody) {
	r := httptest.NewRequest("POST", "/v1/forward", strings.NewReader(body))
	r.RemoteAddr = "127.0.0.1:5555"
	r.Header.Set(DevCallerHeader, "billing")
	for _, ct := range contentTypes {
		r.Header.Add("Content-Type", ct)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var eb errorBody
	_ = json.Unmarshal(w.Body.Bytes(), &eb)
	return w, eb
}

func TestContentType(t *testing.T) {
	tests := []struct {
		name string
		ct   []string
		code string // empty: accepted
	}{
		{"plain", []string{"application/json"}, ""},
		{"upper case", []string{"APPLICATION/JSON"}, ""},
		{"mixed case with charset", []string{"Application/Json; Charset=UTF-8"}, ""},
		{"charset utf-8 quoted", []string{`application/json; charset="utf-8"`}, ""},
		{"spaces", []string{"application/json ;charset=utf-8"}, ""},
		{"missing", nil, CodeUnsupportedMediaType},
		{"empty", []string{""}, CodeUnsupportedMediaType},
		{"two headers", []string{"application/json", "application/json"}, CodeUnsupportedMediaType},
		{"form", []string{"application/x-www-form-urlencoded"}, CodeUnsupportedMediaType},
		{"json suffix", []string{"application/problem+json"}, CodeUnsupportedMediaType},
		{"text", []string{"text/json"}, CodeUnsupportedMediaType},
		{"malformed", []string{"application/json; charset"}, CodeUnsupportedMediaType},
		{"prefix only", []string{"application/jsonx"}, CodeUnsupportedMediaType},
		{"other parameter", []string{"application/json; profile=x"}, CodeUnsupportedMediaType},
		{"utf-16", []string{"application/json; charset=utf-16"}, CodeUnsupportedCharset},
		{"UTF-16LE", []string{"application/json; charset=UTF-16LE"}, CodeUnsupportedCharset},
		{"latin-1", []string{"application/json; charset=iso-8859-1"}, CodeUnsupportedCharset},
		{"utf8 without the dash", []string{"application/json; charset=utf8"}, CodeUnsupportedCharset},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			h := newHandler(t, rec, Options{DevCallers: true})
			w, eb := doCT(h, `{"destination":"d"}`, tt.ct)
			if tt.code == "" {
				if w.Code != http.StatusOK || rec.calls != 1 {
					t.Errorf("Content-Type %q = %d %s, want 200", tt.ct, w.Code, w.Body)
				}
				return
			}
			if w.Code != http.StatusUnsupportedMediaType || eb.Error.Code != tt.code || rec.calls != 0 {
				t.Errorf("Content-Type %q = %d %q (forwarder calls %d), want 415 %s", tt.ct, w.Code, eb.Error.Code, rec.calls, tt.code)
			}
		})
	}
}

// A UTF-16 body is refused even when it is not declared as such.
func TestBodyMustBeUTF8(t *testing.T) {
	h := newHandler(t, &recorder{}, Options{DevCallers: true})
	utf16 := "\xff\xfe{\x00\"\x00d\x00\"\x00:\x001\x00}\x00"
	for _, body := range []string{utf16, "{\"destination\":\"\xe9\"}"} {
		w, eb := doCT(h, body, []string{"application/json"})
		if w.Code != 400 || eb.Error.Code != CodeInvalidJSON || eb.Error.Message != "the body is not valid UTF-8" {
			t.Errorf("POST %q = %d %q %q, want 400 invalid_json (not valid UTF-8)", body, w.Code, eb.Error.Code, eb.Error.Message)
		}
	}
}

func TestDuplicateKeys(t *testing.T) {
	tests := []struct {
		name, body, path string // path empty: no duplicate
	}{
		{"none", `{"destination":"a","url":"u","headers":{"A":["1"],"B":["2"]}}`, ""},
		{"top level", `{"destination":"a","destination":"b"}`, "destination"},
		{"differs in case", `{"destination":"a","Destination":"b"}`, "Destination"},
		{"escaped", `{"destination":"a","\u0064estination":"b"}`, "destination"},
		{"kelvin sign folds to k", `{"headers":{"k":[],"\u212a":[]}}`, "headers.?"},
		{"in headers", `{"headers":{"X-Api-Key":["a"],"X-Api-Key":["b"]}}`, "headers.X-Api-Key"},
		{"header names differ in case", `{"headers":{"Authorization":["a"],"authorization":["b"]}}`, "headers.authorization"},
		{"key not shown when card-like", `{"headers":{"4242424242424242":["a"],"4242424242424242":["b"]}}`, "headers.?"},
		{"in an object in an array", `{"x":[1,{"a":1},{"b":1,"b":2}]}`, "x[2].b"},
		{"nested arrays", `{"x":[[{"a":1}],[{"c":1,"c":2}]]}`, "x[1][0].c"},
		{"same key in sibling objects is fine", `{"a":{"k":1},"b":{"k":1},"c":[{"k":1},{"k":2}]}`, ""},
		{"same key at different depths is fine", `{"k":{"k":{"k":1}}}`, ""},
		{"after a nested object", `{"a":{"x":1},"b":2,"a":3}`, "a"},
		{"string values are not keys", `{"a":"a","b":"a","c":["a","a"]}`, ""},
		{"many keys", `{` + manyKeys(100) + `,"k37":1}`, "k37"},
		{"many keys, differs in case", `{` + manyKeys(100) + `,"K99":1}`, "K99"},
		{"many keys, none twice", `{` + manyKeys(100) + `}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, found := duplicateKey([]byte(tt.body))
			if found != (tt.path != "") || path != tt.path {
				t.Errorf("duplicateKey(%s) = %q, %v; want %q", tt.body, path, found, tt.path)
			}
		})
	}
}

func manyKeys(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":%d`, i, i)
	}
	return b.String()
}

// Every request body refuses duplicate keys, whatever the route, and the
// message names the path but never a value.
func TestDuplicateKeysRefused(t *testing.T) {
	rec := &recorder{}
	h := newHandler(t, rec, Options{DevCallers: true})
	tests := []struct{ path, body, msg string }{
		{"/v1/forward", `{"destination":"acme","destination":"evil"}`, "duplicate key destination"},
		{"/v1/forward", `{"destination":"acme","headers":{"Authorization":["Bearer a"],"Authorization":["Bearer b"]}}`, "duplicate key headers.Authorization"},
		{"/v1/cards", `{"number":"4242424242424242","number":"4111111111111111"}`, "duplicate key number"},
	}
	for _, tt := range tests {
		w, eb := do(h, "POST", tt.path, tt.body, devCaller)
		if w.Code != 400 || eb.Error.Code != CodeInvalidJSON || eb.Error.Message != tt.msg {
			t.Errorf("POST %s %s = %d %q %q, want 400 invalid_json %q", tt.path, tt.body, w.Code, eb.Error.Code, eb.Error.Message, tt.msg)
		}
		for _, v := range []string{"acme", "evil", "Bearer", "4242", "4111"} {
			if strings.Contains(w.Body.String(), v) {
				t.Errorf("the answer quotes a value (%s): %s", v, w.Body)
			}
		}
	}
	if rec.calls != 0 {
		t.Errorf("a request with a duplicate key was passed on %d times", rec.calls)
	}
}

// invalid_json messages name JSON field paths and JSON types, never a Go
// type or package, and never a value.
func TestDecodeErrorMessages(t *testing.T) {
	tests := []struct{ path, body, msg string }{
		{"/v1/cards", `[]`, "the body must be a JSON object"},
		{"/v1/cards", `"4242424242424242"`, "the body must be a JSON object"},
		{"/v1/cards", `{"exp_month":"12"}`, `field "exp_month": expected an integer, got a string`},
		{"/v1/cards", `{"exp_month":1.5}`, `field "exp_month": expected an integer, got a number`},
		{"/v1/cards", `{"number":4242424242424242}`, `field "number": expected a string, got a number`},
		{"/v1/forward", `{"headers":[]}`, `field "headers": expected an object, got an array`},
		{"/v1/forward", `{"headers":{"A":"x"}}`, `field "headers": expected an array, got a string`},
		{"/v1/forward", `{"headers":{"A":[1]}}`, `field "headers": expected a string, got a number`},
		{"/v1/forward", `{"dry_run":"yes"}`, `field "dry_run": expected a boolean, got a string`},
		{"/v1/forward", `{"destination":true}`, `field "destination": expected a string, got a boolean`},
		{"/v1/forward", `{"destination":"a"`, "the body is empty or truncated"},
		{"/v1/forward", `{"destination" "a"}`, "malformed JSON at byte 16"},
		{"/v1/forward", `{"proxy":1}`, `unknown field "proxy"`},
	}
	h := newHandler(t, &recorder{}, Options{DevCallers: true})
	for _, tt := range tests {
		w, eb := do(h, "POST", tt.path, tt.body, devCaller)
		if w.Code != 400 || eb.Error.Code != CodeInvalidJSON || eb.Error.Message != tt.msg {
			t.Errorf("POST %s %s = %d %q %q, want 400 invalid_json %q", tt.path, tt.body, w.Code, eb.Error.Code, eb.Error.Message, tt.msg)
		}
		if goName.MatchString(eb.Error.Message) || strings.Contains(eb.Error.Message, "4242") {
			t.Errorf("POST %s %s: message %q names a Go type or quotes a value", tt.path, tt.body, eb.Error.Message)
		}
	}
}

// goName matches what Go type names look like in encoding/json's errors.
var goName = regexp.MustCompile(`\b(vaultclient|forwarder|CardInput|Request|u?int(8|16|32|64)?|float(32|64)|bool|interface)\b|map\[|\[\]|\.[A-Z]`)

// A header flood gets the JSON 431, not net/http's plain text, over a real
// server configured as cmd/cardgate configures it.
func TestHeaderFloodIsJSON(t *testing.T) {
	const limit = 4 << 10
	h := newHandler(t, &recorder{}, Options{DevCallers: true, MaxHeaderBytes: limit})
	srv := httptest.NewUnstartedServer(h)
	srv.Config.MaxHeaderBytes = ServerMaxHeaderBytes(limit)
	srv.Start()
	defer srv.Close()
	tests := []struct {
		name   string
		flood  int
		status int
	}{
		{"under the limit", limit / 2, 200},
		{"just over the limit", limit, 431},
		{"a flood", 3 * limit, 431},
		{"many headers", -1, 431},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", srv.URL+"/v1/forward", strings.NewReader(`{"destination":"d"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(DevCallerHeader, "billing")
			if tt.flood > 0 {
				req.Header.Set("X-Flood", strings.Repeat("a", tt.flood))
			} else {
				for i := range 400 {
					req.Header.Set(fmt.Sprintf("X-Flood-%d", i), "4242424242424242")
				}
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var eb errorBody
			err = json.NewDecoder(resp.Body).Decode(&eb)
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "application/json" || err != nil {
				t.Fatalf("status %d, Content-Type %q, decode %v; want %d application/json", resp.StatusCode, resp.Header.Get("Content-Type"), err, tt.status)
			}
			if tt.status == 431 && (eb.Error.Code != CodeHeadersTooLarge || eb.Error.RequestID == "") {
				t.Errorf("error = %+v, want %s with a request id", eb.Error, CodeHeadersTooLarge)
			}
		})
	}
}

// The size headerBytes counts is the size of the header block on the wire.
func TestHeaderBytesMatchesTheWire(t *testing.T) {
	req, _ := http.NewRequest("POST", "http://gw.example:8443/v1/forward?x=1", nil)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Add("X-A", "1")
	req.Header.Add("X-A", "22")
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		t.Fatal(err)
	}
	// What the server sees, read back from the wire.
	srvReq, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(wire.Bytes())))
	if err != nil {
		t.Fatal(err)
	}
	// Write adds User-Agent and Content-Length; both were sent, so both count.
	if got, want := headerBytes(srvReq), bytes.Index(wire.Bytes(), []byte("\r\n\r\n"))+4; got != want {
		t.Errorf("headerBytes = %d, want %d (the wire's header block)\n%q", got, want, wire.String())
	}
}

func TestMethodNotAllowedListsAllow(t *testing.T) {
	h := newHandler(t, &recorder{}, Options{DevCallers: true})
	for path, allow := range map[string]string{"/v1/forward": "POST", "/v1/cards": "POST", "/healthz": "GET", "/readyz": "GET"} {
		for _, m := range []string{"PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"} {
			w, eb := do(h, m, path, "", devCaller)
			if w.Code != 405 || eb.Error.Code != CodeMethodNotAllowed && m != "HEAD" || w.Header().Get("Allow") != allow {
				t.Errorf("%s %s = %d %q Allow %q, want 405 %s Allow %q", m, path, w.Code, eb.Error.Code, w.Header().Get("Allow"), CodeMethodNotAllowed, allow)
			}
		}
	}
	if w, _ := do(h, "PUT", "/v1/forward/4242424242424242", "", devCaller); w.Code != 404 || cardscan.ContainsString(w.Body.String()) {
		t.Errorf("PUT under /v1/forward = %d %s, want 404 without the path", w.Code, w.Body)
	}
}
