package client

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// pendingInSpec are names the client already knows that openapi.yaml does
// not have yet, because the change that adds them to the server is being
// made alongside, each with the reason. Each is accepted only while the
// document lacks it; once the document has it, it is checked like every
// other name, and the entry should go. Keys: "Type.field" or "code NAME".
var pendingInSpec = map[string]string{}

type schema struct {
	Ref                  string             `yaml:"$ref"`
	Type                 any                `yaml:"type"`
	Items                *schema            `yaml:"items"`
	Required             []string           `yaml:"required"`
	Properties           map[string]*schema `yaml:"properties"`
	Enum                 []string           `yaml:"enum"`
	Pattern              string             `yaml:"pattern"`
	XStatus              map[string]int     `yaml:"x-cardgate-status"`
	AdditionalProperties any                `yaml:"additionalProperties"`
}

type openAPI struct {
	Components struct {
		Schemas    map[string]*schema `yaml:"schemas"`
		Parameters map[string]struct {
			Name   string `yaml:"name"`
			Schema schema `yaml:"schema"`
		} `yaml:"parameters"`
	} `yaml:"components"`
}

func loadSpec(t *testing.T) *openAPI {
	t.Helper()
	b, err := os.ReadFile("../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPI
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	return &doc
}

// jsonFields lists a struct's JSON names and whether each is omitempty;
// fields tagged "-" are the client's own and not on the wire.
func jsonFields(t *testing.T, typ reflect.Type) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag, ok := f.Tag.Lookup("json")
		if !ok {
			t.Errorf("%s.%s has no json tag", typ.Name(), f.Name)
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		out[name] = slices.Contains(strings.Split(opts, ","), "omitempty")
	}
	return out
}

// TestTypesMatchOpenAPI compares each wire type's JSON names with its
// schema's properties, each field's JSON type (and an array's item type)
// with the property's, through $ref, and, for request bodies, that every
// required property has a field and every optional one is left out when
// empty.
func TestTypesMatchOpenAPI(t *testing.T) {
	doc := loadSpec(t)
	s := doc.Components.Schemas
	get := func(path ...string) *schema {
		sc := s[path[0]]
		for _, p := range path[1:] {
			if sc == nil {
				break
			}
			sc = sc.Properties[p]
		}
		if sc == nil {
			t.Fatalf("openapi.yaml has no schema %s", strings.Join(path, "."))
		}
		return sc
	}
	tests := []struct {
		name    string
		typ     reflect.Type
		schema  *schema
		request bool
	}{
		{"CardInput", reflect.TypeFor[cardInput](), get("CardInput"), true},
		{"ForwardRequest", reflect.TypeFor[ForwardRequest](), get("ForwardRequest"), true},
		{"TokenInfo", reflect.TypeFor[TokenInfo](), get("TokenInfo"), false},
		{"ForwardResponse", reflect.TypeFor[ForwardResponse](), get("ForwardResponse"), false},
		{"ForwardResponse.dry_run", reflect.TypeFor[Preview](), get("ForwardResponse", "dry_run"), false},
		{"CardMeta", reflect.TypeFor[CardMeta](), get("CardMeta"), false},
		{"CardUpdate", reflect.TypeFor[cardUpdateWire](), get("CardUpdate"), true},
		{"CVCInfo", reflect.TypeFor[CVCInfo](), get("CVCInfo"), false},
		{"Error", reflect.TypeFor[errorBody](), get("Error"), false},
		{"Error.error", reflect.TypeFor[errorDetail](), get("Error", "error"), false},
		{"ReturnedCard", reflect.TypeFor[ReturnedCard](), get("ReturnedCard"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fields := jsonFields(t, tt.typ)
			for name := range fields {
				if _, ok := tt.schema.Properties[name]; ok {
					continue
				}
				if why, ok := pendingInSpec[tt.name+"."+name]; ok {
					t.Logf("%s.%s is not in openapi.yaml yet: %s", tt.name, name, why)
					continue
				}
				t.Errorf("%s has a field %q that openapi.yaml does not", tt.typ.Name(), name)
			}
			for name, prop := range tt.schema.Properties {
				f, ok := fieldByJSON(tt.typ, name)
				if !ok {
					t.Errorf("openapi.yaml's %s has %q; %s has no field for it", tt.name, name, tt.typ.Name())
					continue
				}
				if got, want := jsonType(f.Type), specType(t, s, prop); got != want {
					t.Errorf("%s.%s is a JSON %s (Go %s); openapi.yaml's %s.%s is %s", tt.typ.Name(), f.Name, got, f.Type, tt.name, name, want)
				} else if got == "array" && prop.Items != nil {
					if got, want := jsonType(f.Type.Elem()), specType(t, s, prop.Items); got != want {
						t.Errorf("%s.%s holds JSON %ss (Go %s); openapi.yaml's %s.%s holds %ss", tt.typ.Name(), f.Name, got, f.Type.Elem(), tt.name, name, want)
					}
				}
			}
			for _, name := range tt.schema.Required {
				if _, ok := fields[name]; !ok {
					t.Errorf("openapi.yaml requires %s.%s; %s has no field for it", tt.name, name, tt.typ.Name())
				}
			}
			if !tt.request {
				return
			}
			for name, omitempty := range fields {
				if !slices.Contains(tt.schema.Required, name) && !omitempty {
					t.Errorf("%s.%s is optional in openapi.yaml but always sent: tag it omitempty", tt.typ.Name(), name)
				}
			}
		})
	}
}

// fieldByJSON finds typ's field whose JSON name is name.
func fieldByJSON(typ reflect.Type, name string) (reflect.StructField, bool) {
	for i := range typ.NumField() {
		f := typ.Field(i)
		if n, _, _ := strings.Cut(f.Tag.Get("json"), ","); n == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// jsonType is the JSON type encoding/json writes for a value of Go type t.
func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeFor[time.Time]() {
		return "string" // RFC 3339
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	}
	return "unknown " + t.Kind().String()
}

// specType is the type of a property of the document, through its $ref.
func specType(t *testing.T, schemas map[string]*schema, sc *schema) string {
	t.Helper()
	for sc.Ref != "" {
		name, ok := strings.CutPrefix(sc.Ref, "#/components/schemas/")
		if !ok || schemas[name] == nil {
			t.Fatalf("openapi.yaml: $ref %q names no schema", sc.Ref)
		}
		sc = schemas[name]
	}
	typ, ok := sc.Type.(string)
	if !ok {
		t.Fatalf("openapi.yaml: a property without one type: %v", sc.Type)
	}
	return typ
}

// TestCodesMatchOpenAPI: the Code constants are exactly the ErrorCode
// enum, the Outcome constants the Outcome enum, and every retried code is
// one whose status says "try again" (429, 502, 503) or the in-progress 409.
func TestCodesMatchOpenAPI(t *testing.T) {
	doc := loadSpec(t)
	codes := constantsOfType(t, "errors.go", "Code")
	enum := doc.Components.Schemas["ErrorCode"].Enum
	if len(enum) == 0 {
		t.Fatal("openapi.yaml has no ErrorCode enum")
	}
	for _, c := range enum {
		if !slices.Contains(codes, c) {
			t.Errorf("openapi.yaml's code %q has no Code constant", c)
		}
	}
	for _, c := range codes {
		if !slices.Contains(enum, c) {
			if why, ok := pendingInSpec["code "+c]; ok {
				t.Logf("code %s is not in openapi.yaml yet: %s", c, why)
				continue
			}
			t.Errorf("Code constant %q is not in openapi.yaml", c)
		}
	}
	outcomes := constantsOfType(t, "errors.go", "Outcome")
	if want := doc.Components.Schemas["Outcome"].Enum; !sameSet(outcomes, want) {
		t.Errorf("Outcome constants = %q, openapi.yaml's Outcome = %q", outcomes, want)
	}
	status := doc.Components.Schemas["ErrorCode"].XStatus
	for _, set := range []map[Code]bool{retryNotSent, retryTokenize} {
		for c := range set {
			if s := status[string(c)]; s != 429 && s != 502 && s != 503 {
				t.Errorf("retried code %s has status %d, want 429, 502 or 503", c, s)
			}
		}
	}
}

// TestIdempotencyKeyPattern: the client's key check is the document's
// pattern, over keys near every edge of it.
func TestIdempotencyKeyPattern(t *testing.T) {
	p := loadSpec(t).Components.Parameters["Idempotency-Key"]
	if p.Name != headerIdempotencyKey || p.Schema.Pattern == "" {
		t.Fatalf("openapi.yaml's Idempotency-Key parameter: %+v", p)
	}
	re := regexp.MustCompile(p.Schema.Pattern)
	samples := []string{"", "a", "A-Z_a.z:0-9", strings.Repeat("k", 128), strings.Repeat("k", 129), "a b", "a/b", "a+b", "é", "a\n", NewIdempotencyKey()}
	for _, k := range samples {
		if got, want := ValidIdempotencyKey(k), re.MatchString(k); got != want {
			t.Errorf("ValidIdempotencyKey(%q) = %v, openapi.yaml's pattern says %v", k, got, want)
		}
	}
}

// constantsOfType reads file and returns the values of its string
// constants declared with type typ.
func constantsOfType(t *testing.T, file, typ string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != typ {
				continue
			}
			for _, v := range vs.Values {
				if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					out = append(out, strings.Trim(lit.Value, `"`))
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s declares no constants of type %s", file, typ)
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestOperationsMatchOpenAPI: every operation of openapi.yaml but the
// operators' health checks has a client call, and each call sends the
// operation's method and path and takes its success status.
func TestOperationsMatchOpenAPI(t *testing.T) {
	b, err := os.ReadFile("../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"` // a method's operation, or the path's parameters
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	ctx := context.Background()
	calls := map[string]struct {
		answer string // a body of the success status
		call   func(c *Client) error
	}{
		"tokenize": {tokenizeOK, func(c *Client) error {
			_, err := c.Tokenize(ctx, Card{Number: testCard, ExpMonth: 12, ExpYear: 2030})
			return err
		}},
		"forward": {forwardOK, func(c *Client) error { _, err := c.Forward(ctx, sampleForward()); return err }},
		"getCard": {metaOK, func(c *Client) error { _, err := c.Card(ctx, testToken); return err }},
		"updateCard": {metaOK, func(c *Client) error {
			_, err := c.UpdateCard(ctx, testToken, CardUpdate{ExpMonth: 1, ExpYear: 2031})
			return err
		}},
		"collectCVC": {`{"token":"tok_abc123","cvc_held":true,"cvc_expires_at":"2026-03-10T13:00:00Z"}`, func(c *Client) error {
			_, err := c.CollectCVC(ctx, testToken, "321")
			return err
		}},
		"deleteCard": {"", func(c *Client) error { return c.DeleteCard(ctx, testToken) }},
	}
	operators := map[string]bool{"healthz": true, "readyz": true} // not a caller's: the admin listener serves them too
	found := 0
	for path, ops := range doc.Paths {
		for method, node := range ops {
			var op struct {
				OperationID string         `yaml:"operationId"`
				Responses   map[string]any `yaml:"responses"`
			}
			if method == "parameters" {
				continue
			}
			if err := node.Decode(&op); err != nil {
				t.Fatalf("openapi.yaml: %s %s: %v", method, path, err)
			}
			if operators[op.OperationID] {
				continue
			}
			found++
			t.Run(op.OperationID, func(t *testing.T) {
				c, ok := calls[op.OperationID]
				if !ok {
					t.Fatalf("openapi.yaml's %s (%s %s) has no client call", op.OperationID, strings.ToUpper(method), path)
				}
				var success []int
				for code := range op.Responses {
					if n, err := strconv.Atoi(code); err == nil && n >= 200 && n < 300 {
						success = append(success, n)
					}
				}
				if len(success) != 1 {
					t.Fatalf("%s has success statuses %v, want one", op.OperationID, success)
				}
				s := startScripted(t, false, step{status: success[0], body: c.answer})
				cl, _ := s.client(t, WithRetries(1, time.Millisecond, time.Millisecond))
				if err := c.call(cl); err != nil {
					t.Errorf("%s answered %d: %v", op.OperationID, success[0], err)
				}
				got := s.received()
				wantPath := strings.ReplaceAll(path, "{token}", testToken)
				var sent []string
				for _, r := range got {
					sent = append(sent, r.method+" "+r.path)
				}
				if want := []string{strings.ToUpper(method) + " " + wantPath}; !slices.Equal(sent, want) {
					t.Errorf("%s sent %q, want %q", op.OperationID, sent, want)
				}
			})
		}
	}
	if found != len(calls) {
		t.Errorf("openapi.yaml has %d caller operations, the test knows %d calls", found, len(calls))
	}
}

// TestCodesMatchErrorsDoc: the Code constants are exactly the codes of
// docs/errors.md's table, so that the doc a caller reads and the
// constants it branches on name the same codes.
func TestCodesMatchErrorsDoc(t *testing.T) {
	raw, err := os.ReadFile("../docs/errors.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(raw), "\n| code | HTTP | who failed | meaning |\n|---|---|---|---|\n")
	if !ok {
		t.Fatal("docs/errors.md has no code table")
	}
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\| ([0-9]{3}) \\|")
	var documented []string
	for _, line := range strings.Split(table, "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			break // the table's end
		}
		documented = append(documented, m[1])
	}
	codes := constantsOfType(t, "errors.go", "Code")
	if !sameSet(codes, documented) {
		t.Errorf("Code constants and docs/errors.md's codes differ:\nconstants not documented: %q\ndocumented without a constant: %q",
			missingFrom(codes, documented), missingFrom(documented, codes))
	}
}

// missingFrom returns the elements of a that b lacks.
func missingFrom(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
