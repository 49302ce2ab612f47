package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"go.yaml.in/yaml/v3"

	"github.com/cardgate/cardgate/forwarder"
	"github.com/cardgate/cardgate/vaultclient"
)

// Stand-ins for New's two interfaces; the walk never calls them.
type openapiCards struct{}

func (openapiCards) Tokenize(context.Context, vaultclient.CardInput) (*vaultclient.TokenInfo, error) {
	return nil, errors.New("test: not implemented")
}

type openapiForwarder struct{}

func (openapiForwarder) Forward(context.Context, *forwarder.Request) (*forwarder.Response, error) {
	return nil, errors.New("test: not implemented")
}

func loadOpenAPI(t *testing.T) map[string]any {
	t.Helper()
	raw, err := os.ReadFile("../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Fatalf("openapi.yaml: openapi = %q, want 3.1.x", v)
	}
	return doc
}

// at follows a path of map keys; it fails the test if one is missing.
func at(t *testing.T, v any, keys ...string) any {
	t.Helper()
	for i, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("openapi.yaml: %s is not a mapping", strings.Join(keys[:i], "."))
		}
		if v, ok = m[k]; !ok {
			t.Fatalf("openapi.yaml: no %s", strings.Join(keys[:i+1], "."))
		}
	}
	return v
}

// Every route the router serves is documented with its method, and the
// document describes no route the router lacks.
func TestOpenAPIMatchesRouter(t *testing.T) {
	doc := loadOpenAPI(t)
	h, err := New(Options{Cards: openapiCards{}, Forwarder: openapiForwarder{}})
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	err = chi.Walk(h.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		served[method+" "+route] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(served) == 0 {
		t.Fatal("chi.Walk found no routes")
	}
	documented := map[string]bool{}
	paths, _ := at(t, doc, "paths").(map[string]any)
	for path, item := range paths {
		ops, _ := item.(map[string]any)
		for m := range ops {
			switch m {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				documented[strings.ToUpper(m)+" "+path] = true
			}
		}
	}
	for r := range served {
		if !documented[r] {
			t.Errorf("the router serves %s; openapi.yaml does not document it", r)
		}
	}
	for r := range documented {
		if !served[r] {
			t.Errorf("openapi.yaml documents %s; the router does not serve it", r)
		}
	}
}

// The document's error code enum is exactly api.Codes(), each with the
// status statusByCode gives it.
func TestOpenAPIErrorCodes(t *testing.T) {
	doc := loadOpenAPI(t)
	enum, _ := at(t, doc, "components", "schemas", "ErrorCode", "enum").([]any)
	statuses, _ := at(t, doc, "components", "schemas", "ErrorCode", "x-cardgate-status").(map[string]any)
	inDoc := map[string]bool{}
	for _, v := range enum {
		c, _ := v.(string)
		if inDoc[c] {
			t.Errorf("openapi.yaml lists error code %q twice", c)
		}
		inDoc[c] = true
	}
	codes := Codes()
	slices.Sort(codes)
	for _, c := range codes {
		if !inDoc[c] {
			t.Errorf("error code %q (HTTP %d) is missing from openapi.yaml's ErrorCode enum and x-cardgate-status", c, statusByCode[c])
			continue
		}
		if got, _ := statuses[c].(int); got != statusByCode[c] {
			t.Errorf("openapi.yaml x-cardgate-status.%s = %v, want %d", c, statuses[c], statusByCode[c])
		}
	}
	for c := range inDoc {
		if _, ok := statusByCode[c]; !ok {
			t.Errorf("openapi.yaml lists error code %q, which api.Codes() does not", c)
		}
	}
	for c := range statuses {
		if !inDoc[c] {
			t.Errorf("openapi.yaml x-cardgate-status names %q, which the enum lacks", c)
		}
	}
}

// Every local $ref points at something in the document.
func TestOpenAPIRefsResolve(t *testing.T) {
	doc := loadOpenAPI(t)
	var walk func(v any, where string)
	walk = func(v any, where string) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if !strings.HasPrefix(ref, "#/") {
					t.Errorf("%s: $ref %q is not local", where, ref)
				} else {
					var cur any = doc
					for _, k := range strings.Split(ref[2:], "/") {
						m, _ := cur.(map[string]any)
						if cur = m[k]; cur == nil {
							t.Errorf("%s: $ref %q does not resolve", where, ref)
							break
						}
					}
				}
			}
			for k, c := range v {
				walk(c, where+"."+k)
			}
		case []any:
			for _, c := range v {
				walk(c, where)
			}
		}
	}
	walk(doc, "openapi.yaml")
}

// TestOpenAPISchemaKeywords: every schema in the document uses only
// keywords the test validator implements or knows to be annotations.
func TestOpenAPISchemaKeywords(t *testing.T) {
	doc := loadOpenAPI(t)
	var walkSchema func(s any, where string)
	walkSchema = func(s any, where string) {
		m, ok := s.(map[string]any)
		if !ok {
			return
		}
		for k, sub := range m {
			if !slices.Contains(validatingKeywords, k) && !slices.Contains(annotationKeywords, k) {
				t.Errorf("%s uses schema keyword %q, which the validator does not implement", where, k)
			}
			switch k {
			case "properties":
				props, _ := sub.(map[string]any)
				for name, ps := range props {
					walkSchema(ps, where+".properties."+name)
				}
			case "items", "additionalProperties", "propertyNames":
				walkSchema(sub, where+"."+k)
			case "oneOf":
				for i, alt := range asList(sub) {
					walkSchema(alt, where+".oneOf["+strconv.Itoa(i)+"]")
				}
			}
		}
	}
	var walk func(v any, where string)
	walk = func(v any, where string) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if k == "schema" {
					walkSchema(c, where+".schema")
				} else {
					walk(c, where+"."+k)
				}
			}
		case []any:
			for i, c := range v {
				walk(c, where+"["+strconv.Itoa(i)+"]")
			}
		}
	}
	walk(doc["paths"], "paths")
	walk(at(t, doc, "components", "parameters"), "components.parameters")
	walk(at(t, doc, "components", "headers"), "components.headers")
	walk(at(t, doc, "components", "responses"), "components.responses")
	for name, s := range at(t, doc, "components", "schemas").(map[string]any) {
		walkSchema(s, "components.schemas."+name)
	}
}

// specCheck validates real requests and answers against openapi.yaml.
type specCheck struct {
	t   *testing.T
	doc map[string]any
	v   *schemaValidator
}

func newSpecCheck(t *testing.T) *specCheck {
	doc := loadOpenAPI(t)
	return &specCheck{t: t, doc: doc, v: &schemaValidator{doc: doc}}
}

func (c *specCheck) deref(v any) map[string]any {
	c.t.Helper()
	m, _ := v.(map[string]any)
	if ref, ok := m["$ref"].(string); ok {
		r, err := c.v.resolve(ref)
		if err != nil {
			c.t.Fatal(err)
		}
		m, _ = r.(map[string]any)
	}
	return m
}

// operation returns the operation object for method and path, or nil.
func (c *specCheck) operation(method, path string) map[string]any {
	paths, _ := c.doc["paths"].(map[string]any)
	item, _ := paths[path].(map[string]any)
	op, _ := item[strings.ToLower(method)].(map[string]any)
	return op
}

func decodeAny(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v: %q", err, b)
	}
	return v
}

// request checks a body the server accepted against the operation's
// request schema: the document must not be stricter than the server.
func (c *specCheck) request(method, path, body string) {
	c.t.Helper()
	op := c.operation(method, path)
	rb := c.deref(op["requestBody"])
	content, _ := rb["content"].(map[string]any)
	media := c.deref(content["application/json"])
	for _, e := range c.v.validate(media["schema"], decodeAny(c.t, []byte(body)), "request") {
		c.t.Errorf("%s %s: the server accepted a body the document refuses: %s\n%s", method, path, e, body)
	}
}

// response checks one real answer: a documented status for the operation,
// application/json, the documented headers' schemas, and the body schema.
func (c *specCheck) response(method, path string, a answer) {
	c.t.Helper()
	var resp map[string]any
	switch op := c.operation(method, path); {
	case op != nil:
		responses, _ := op["responses"].(map[string]any)
		r, ok := responses[strconv.Itoa(a.status)]
		if !ok {
			c.t.Errorf("%s %s answered %d, which the document does not list: %s", method, path, a.status, a.body)
			return
		}
		resp = c.deref(r)
	case a.status == http.StatusNotFound:
		// No such route: the document has no operation to list it under;
		// the answer must still be an Error.
		resp = c.deref(map[string]any{"$ref": "#/components/responses/Error"})
	case a.status == http.StatusMethodNotAllowed:
		resp = c.deref(map[string]any{"$ref": "#/components/responses/MethodNotAllowed"})
	default:
		c.t.Errorf("%s %s: no operation in the document, and %d is not a routing error", method, path, a.status)
		return
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		c.t.Errorf("%s %s → %d: Content-Type %q, want application/json", method, path, a.status, ct)
	}
	if a.header.Get(RequestIDHeader) == "" {
		c.t.Errorf("%s %s → %d: no %s header", method, path, a.status, RequestIDHeader)
	}
	headers, _ := resp["headers"].(map[string]any)
	for name, h := range headers {
		got := a.header.Get(name)
		if got == "" {
			if name == RequestIDHeader || name == "Retry-After" || name == "Allow" {
				c.t.Errorf("%s %s → %d: documented header %s is missing", method, path, a.status, name)
			}
			continue
		}
		schema := c.deref(h)["schema"]
		var val any = got
		if typ, _ := c.deref(schema)["type"].(string); typ == "integer" {
			val = json.Number(got)
			if _, err := strconv.Atoi(got); err != nil {
				c.t.Errorf("%s %s → %d: header %s = %q, want an integer", method, path, a.status, name, got)
				continue
			}
		}
		for _, e := range c.v.validate(schema, val, "header "+name) {
			c.t.Errorf("%s %s → %d: %s", method, path, a.status, e)
		}
	}
	content, _ := resp["content"].(map[string]any)
	media := c.deref(content["application/json"])
	if media == nil {
		c.t.Errorf("%s %s → %d: the document gives no application/json body", method, path, a.status)
		return
	}
	for _, e := range c.v.validate(media["schema"], decodeAny(c.t, a.body), "body") {
		c.t.Errorf("%s %s → %d: %s\n%s", method, path, a.status, e, a.body)
	}
}

// TestOpenAPIRealResponses drives the real stack into every answer it can
// give without Redis, and checks each against the document. Codes that
// need Redis, a broken key backend or a dying caller are produced by
// TestOpenAPIEveryErrorCode.
func TestOpenAPIRealResponses(t *testing.T) {
	s := newStack(t)
	c := newSpecCheck(t)
	tok := s.tokenize("4242424242424242")
	fwd := func(fields string) string {
		return `{"destination":"acme","url":"https://` + stackHost + ":" + strconv.Itoa(s.procPort) + `/v1/charges","method":"POST","card":"` + tok + `"` + fields + `}`
	}
	fwdTo := func(dest, path, card string) string {
		host := stackHost
		switch dest {
		case "nowhere", "closed", "private":
			host = dest + ".example.com"
		case "untrusted":
			host = "untrusted.example.org"
		}
		port := s.procPort
		if dest == "closed" {
			port = s.allow.al.Doc.Destinations[5].Port
		}
		return `{"destination":"` + dest + `","url":"https://` + host + ":" + strconv.Itoa(port) + path + `","method":"POST","card":"` + card + `",` + jsonBody(`{{card.number}}`) + `}`
	}
	future := strconv.Itoa(time.Now().Year() + 2)
	cvcBody := "," + jsonBody("{{card.cvc}}")
	card := func(fields string) string {
		return `{"number":"4242424242424242","exp_month":12,"exp_year":` + future + fields + `}`
	}
	type tc struct {
		name         string
		method, path string
		body         string
		hdr          map[string]string
		status       int
		code         string // empty for a success
		before       func()
	}
	tests := []tc{
		{name: "healthz", method: "GET", path: "/healthz", status: 200},
		{name: "readyz", method: "GET", path: "/readyz", status: 200},
		{name: "readyz down", method: "GET", path: "/readyz", status: 503, before: func() { s.down.Store(true) }},
		{name: "tokenize", method: "POST", path: "/v1/cards", body: card(`,"cvc":"123","name":"Jane Doe"`), status: 201},
		{name: "tokenize spaced number", method: "POST", path: "/v1/cards", body: `{"number":"4242 4242 4242 4242","exp_month":1,"exp_year":` + future + `}`, status: 201},
		{name: "tokenize with an empty cvc and name", method: "POST", path: "/v1/cards", body: card(`,"cvc":"","name":""`), status: 201},
		{name: "tokenize dashed number", method: "POST", path: "/v1/cards", body: `{"number":" 3782-822463-10005 ","exp_month":1,"exp_year":` + future + `}`, status: 201},
		{name: "forward", method: "POST", path: "/v1/forward", body: fwd(`,"headers":{"Content-Type":["application/json"]},"body":"{\"n\":\"{{card.number}}\",\"cvc\":\"{{card.cvc}}\"}"`), status: 200},
		{name: "dry run", method: "POST", path: "/v1/forward", body: fwd("," + jsonBody("{{card.number}}") + `,"dry_run":true`), status: 200},
		{name: "redirect is answered", method: "POST", path: "/v1/forward", body: fwdTo("acme", "/v1/redirect", tok), status: 200},
		{name: "idempotency key without a store", method: "POST", path: "/v1/forward", body: fwd(``), hdr: map[string]string{IdempotencyKeyHeader: "order-1"}, status: 501, code: "idempotency_not_supported"},
		{name: "bad idempotency key", method: "POST", path: "/v1/forward", body: fwd(``), hdr: map[string]string{IdempotencyKeyHeader: "a b"}, status: 400, code: "invalid_idempotency_key"},

		{name: "duplicate key", method: "POST", path: "/v1/forward", body: `{"destination":"acme","destination":"x"}`, status: 400, code: CodeInvalidJSON},
		{name: "wrong type", method: "POST", path: "/v1/cards", body: `{"exp_month":"1"}`, status: 400, code: CodeInvalidJSON},
		{name: "too large", method: "POST", path: "/v1/forward", body: fwd(`,"body":"` + strings.Repeat("x", 20<<10) + `"`), status: 413, code: CodeRequestTooLarge},
		{name: "no content type", method: "POST", path: "/v1/forward", body: fwd(``), hdr: map[string]string{"Content-Type": "-"}, status: 415, code: CodeUnsupportedMediaType},
		{name: "utf-16", method: "POST", path: "/v1/cards", body: card(``), hdr: map[string]string{"Content-Type": "application/json; charset=utf-16"}, status: 415, code: CodeUnsupportedCharset},
		{name: "header flood", method: "POST", path: "/v1/forward", body: fwd(``), hdr: map[string]string{"X-Flood": strings.Repeat("f", 9<<10)}, status: 431, code: CodeHeadersTooLarge},
		{name: "header flood on healthz", method: "GET", path: "/healthz", hdr: map[string]string{"X-Flood": strings.Repeat("f", 9<<10)}, status: 431, code: CodeHeadersTooLarge},
		{name: "no caller", method: "POST", path: "/v1/forward", body: fwd(``), hdr: map[string]string{DevCallerHeader: "-"}, status: 401, code: CodeUnauthenticated},
		{name: "no route", method: "GET", path: "/v1/nope", status: 404, code: CodeNotFound},
		{name: "wrong method", method: "GET", path: "/v1/forward", status: 405, code: CodeMethodNotAllowed},
		{name: "wrong method on healthz", method: "POST", path: "/healthz", body: `{}`, status: 405, code: CodeMethodNotAllowed},

		{name: "missing field", method: "POST", path: "/v1/forward", body: `{"url":"https://x.example/"}`, status: 400, code: "invalid_request"},
		{name: "bad placeholder", method: "POST", path: "/v1/forward", body: fwd(`,"body":"{{card.pin}}"`), status: 422, code: "invalid_template"},
		{name: "literal card", method: "POST", path: "/v1/forward", body: fwd(`,"body":"4111 1111 1111 1111"`), status: 422, code: "literal_card_in_request"},
		{name: "unknown destination", method: "POST", path: "/v1/forward", body: strings.Replace(fwd(``), `"acme"`, `"ghost"`, 1), status: 403, code: "destination_not_allowed"},
		{name: "private address", method: "POST", path: "/v1/forward", body: fwdTo("private", "/v1/x", tok), status: 403, code: "destination_address_forbidden"},
		{name: "method not on the entry", method: "POST", path: "/v1/forward", body: strings.Replace(fwd(``), `"POST"`, `"PUT"`, 1), status: 403, code: "method_not_allowed"},
		{name: "caller not on the entry", method: "POST", path: "/v1/forward", body: fwd(``), hdr: map[string]string{DevCallerHeader: "payouts"}, status: 403, code: "caller_not_allowed"},
		{name: "card-like caller is masked and refused", method: "POST", path: "/v1/forward", body: fwd(``), hdr: map[string]string{DevCallerHeader: "4242424242424242"}, status: 403, code: "caller_not_allowed"},
		{name: "field not on the entry", method: "POST", path: "/v1/forward", body: strings.Replace(fwd(cvcBody), `"acme"`, `"acme-number-only"`, 1), status: 403, code: "card_field_not_allowed"},
		{name: "unknown token", method: "POST", path: "/v1/forward", body: fwdTo("acme", "/v1/x", "tok_nosuchtokenaaaaaaaaaaaaaaaaaaaa"), status: 404, code: "token_not_found"},
		{name: "cvc used up", method: "POST", path: "/v1/forward", body: fwd(cvcBody), status: 422, code: "cvc_not_available"},
		{name: "dns failure", method: "POST", path: "/v1/forward", body: fwdTo("nowhere", "/v1/x", tok), status: 502, code: "dns_failure"},
		{name: "connection refused", method: "POST", path: "/v1/forward", body: fwdTo("closed", "/v1/x", tok), status: 502, code: "upstream_connect_failed"},
		{name: "untrusted certificate", method: "POST", path: "/v1/forward", body: fwdTo("untrusted", "/v1/x", tok), status: 502, code: "upstream_tls_error"},
		{name: "slow processor", method: "POST", path: "/v1/forward", body: fwdTo("acme-quick", "/v1/slow", tok), status: 504, code: "upstream_timeout"},
		{name: "large answer", method: "POST", path: "/v1/forward", body: fwdTo("acme-small", "/v1/big", tok), status: 502, code: "upstream_response_too_large"},
		{name: "bad card number", method: "POST", path: "/v1/cards", body: strings.Replace(card(``), "4242424242424242", "4242424242424241", 1), status: 422, code: "invalid_card_number"},
		{name: "letters in the number", method: "POST", path: "/v1/cards", body: strings.Replace(card(``), "4242424242424242", "4242x4242x4242x4242", 1), status: 422, code: "invalid_card_number"},
		{name: "bad month", method: "POST", path: "/v1/cards", body: strings.Replace(card(``), `"exp_month":12`, `"exp_month":13`, 1), status: 422, code: "invalid_expiry"},
		{name: "expired", method: "POST", path: "/v1/cards", body: strings.Replace(card(``), future, "2001", 1), status: 422, code: "card_expired"},
		{name: "bad cvc", method: "POST", path: "/v1/cards", body: card(`,"cvc":"12345"`), status: 422, code: "invalid_cvc"},
		{name: "bad name", method: "POST", path: "/v1/cards", body: card(`,"name":"a\u0007b"`), status: 422, code: "invalid_name"},
		{name: "allowlist expired", method: "POST", path: "/v1/forward", body: fwd(``), status: 503, code: "allowlist_expired",
			before: func() { s.allow.set(s.allowlist(time.Now().Add(-time.Minute))) }},
		{name: "no allowlist", method: "POST", path: "/v1/forward", body: fwd(``), status: 503, code: "allowlist_unavailable",
			before: func() { s.allow.set(nil) }},
	}
	triggered := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.t = t
			if tt.before != nil {
				tt.before()
			}
			a := s.send(tt.method, tt.path, tt.body, tt.hdr)
			var eb errorBody
			_ = json.Unmarshal(a.body, &eb)
			if a.status != tt.status || eb.Error.Code != tt.code {
				t.Fatalf("%s %s = %d %q, want %d %q\n%s", tt.method, tt.path, a.status, eb.Error.Code, tt.status, tt.code, a.body)
			}
			triggered[tt.code] = true
			c.response(tt.method, tt.path, a)
			if tt.code == "" && tt.body != "" {
				c.request(tt.method, tt.path, tt.body)
			}
			if bytes.Contains(a.body, []byte("4242424242424242")) || bytes.Contains(a.body, []byte("4111111111111111")) {
				t.Errorf("the answer holds a card number: %s", a.body)
			}
		})
	}
	c.t = t
	var missing []string
	for _, code := range Codes() {
		if !triggered[code] && !slices.Contains(needRedisOrFaults, code) {
			missing = append(missing, code)
		}
	}
	if len(missing) > 0 {
		t.Errorf("codes the real stack can give but the test does not trigger: %v", missing)
	}
}

// jsonBody is a forward's headers and body fields for a JSON body template
// holding one placeholder.
func jsonBody(placeholder string) string {
	return `"headers":{"Content-Type":["application/json"]},"body":"{\"v\":\"` + placeholder + `\"}"`
}

// needRedisOrFaults are the codes the real stack above cannot give: they
// need Redis (budgets, the kill switch, idempotency state), a failing
// store, key backend or audit sink, a caller that goes away, a bug, a
// gateway credentials store (the credential and signing codes) or a
// retired key version (key_retired). TestOpenAPIEveryErrorCode checks
// their shape through a stand-in forwarder.
var needRedisOrFaults = []string{"card_not_allowed", "invalid_update", "operation_not_permitted", "signing_failed", "credential_unavailable", "credential_not_allowed", "key_retired",
	"rate_limited", "rate_limit_unavailable", "destination_disabled", "killswitch_unavailable",
	"idempotency_key_reused", "idempotency_in_progress", "idempotency_outcome_unknown", "idempotency_unavailable",
	"store_unavailable", "key_backend_unavailable", "audit_unavailable", "upstream_error", "request_canceled", CodeInternal}

// TestOpenAPIEveryErrorCode: every code, as the handler answers it on
// /v1/forward (the operation that can give them all), has a status the
// operation documents and the documented shape.
func TestOpenAPIEveryErrorCode(t *testing.T) {
	c := newSpecCheck(t)
	for _, code := range Codes() {
		if code == CodeMethodNotAllowed {
			continue // the router's alone, with its Allow header: TestOpenAPIRealResponses
		}
		t.Run(code, func(t *testing.T) {
			c.t = t
			g := &guardForwarder{}
			g.err = &forwarder.Error{Code: code, Message: "public text", Outcome: forwarder.NotSent, RetryAfter: time.Second}
			h, err := New(Options{Cards: g, Forwarder: g, DevCallers: true})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			req, _ := http.NewRequest("POST", srv.URL+"/v1/forward", strings.NewReader(`{"destination":"d"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(DevCallerHeader, "billing")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != statusByCode[code] {
				t.Errorf("status %d, want %d", resp.StatusCode, statusByCode[code])
			}
			c.response("POST", "/v1/forward", answer{resp.StatusCode, resp.Header, body})
		})
	}
}

// TestOpenAPIMethodEnum: the forward methods the document lists are
// exactly those the server takes; any other is invalid_request.
func TestOpenAPIMethodEnum(t *testing.T) {
	doc := loadOpenAPI(t)
	enum, _ := at(t, doc, "components", "schemas", "ForwardRequest", "properties", "method", "enum").([]any)
	s := newStack(t)
	tok := s.tokenize("4242424242424242")
	try := func(m string) (int, string) {
		a := s.send("POST", "/v1/forward", `{"destination":"acme","url":"https://`+stackHost+":"+strconv.Itoa(s.procPort)+
			`/v1/x","method":"`+m+`","card":"`+tok+`","dry_run":true}`, nil)
		var eb errorBody
		_ = json.Unmarshal(a.body, &eb)
		return a.status, eb.Error.Code
	}
	listed := map[string]bool{}
	for _, e := range enum {
		m, _ := e.(string)
		listed[m] = true
		// The entry lists POST only: the others pass validation and are
		// refused by the allowlist.
		if status, code := try(m); code == "invalid_request" {
			t.Errorf("method %s is in the document's enum, but the server answers %d %s", m, status, code)
		}
	}
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "post", "PROPFIND"} {
		if listed[m] {
			continue
		}
		if status, code := try(m); status != 400 || code != "invalid_request" {
			t.Errorf("method %s is not in the document's enum, but the server answers %d %s, not 400 invalid_request", m, status, code)
		}
	}
}

// The API listener asks for a verified client certificate in the TLS
// handshake, before any route is chosen (cmd/cardgate's callerTLS), so no
// operation may claim it needs no authentication there; the health
// endpoints say where they are open (the admin listener) instead.
func TestOpenAPIHealthSecurity(t *testing.T) {
	doc := loadOpenAPI(t)
	paths, _ := at(t, doc, "paths").(map[string]any)
	for path, item := range paths {
		ops, _ := item.(map[string]any)
		for m, op := range ops {
			o, _ := op.(map[string]any)
			if sec, ok := o["security"].([]any); ok && len(sec) == 0 {
				t.Errorf("openapi.yaml: %s %s says security: [], but the mTLS listener refuses a handshake without a client certificate", m, path)
			}
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		servers, _ := at(t, doc, "paths", path, "get", "servers").([]any)
		var admin bool
		for _, s := range servers {
			d, _ := s.(map[string]any)["description"].(string)
			admin = admin || strings.Contains(d, "admin.addr")
		}
		if !admin {
			t.Errorf("openapi.yaml: GET %s does not list the admin listener, where it is served without authentication", path)
		}
	}
}
