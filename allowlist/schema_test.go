// The JSON Schema (allowlist.schema.json) held to the parser: whatever
// ParseUnverified accepts, the schema accepts; whatever it refuses for a
// structural reason (an unknown key, a wrong type, a missing required
// key, a value outside an enumeration or a name pattern), the schema
// refuses too. Refusals the schema cannot express (the layout rules,
// cross-field checks, checks that need code) are listed by name in
// schemaBlindSpots, and each listed case must still show the difference,
// so the list cannot go stale.

package allowlist

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

const schemaFile = "allowlist.schema.json"

// loadSchema compiles the schema after checking that it uses only the
// keywords listed here: a misspelt or unsupported keyword would otherwise
// be ignored, and the schema would check less than it says.
func loadSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	raw, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: %v", schemaFile, err)
	}
	checkKeywords(t, doc, "#")
	id, _ := doc.(map[string]any)["$id"].(string)
	if id == "" {
		t.Fatalf("%s has no $id", schemaFile)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(id, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(id)
	if err != nil {
		t.Fatalf("compile %s: %v", schemaFile, err)
	}
	return sch
}

// Keywords the schema may use, by what their value is.
var (
	kwSchema    = map[string]bool{"items": true, "not": true, "if": true, "then": true, "else": true, "propertyNames": true, "additionalProperties": true, "contains": true}
	kwSchemaMap = map[string]bool{"properties": true, "$defs": true}
	kwSchemaArr = map[string]bool{"anyOf": true, "allOf": true}
	kwValue     = map[string]bool{
		"$schema": true, "$id": true, "$ref": true, "title": true, "description": true,
		"type": true, "enum": true, "const": true, "required": true, "pattern": true,
		"minLength": true, "maxLength": true, "minimum": true, "maximum": true,
		"minItems": true, "maxItems": true, "uniqueItems": true, "minProperties": true, "maxProperties": true,
	}
)

func checkKeywords(t *testing.T, v any, at string) {
	t.Helper()
	obj, ok := v.(map[string]any)
	if !ok {
		if _, isBool := v.(bool); !isBool {
			t.Errorf("%s: a schema must be an object or a boolean", at)
		}
		return
	}
	for k, sub := range obj {
		switch {
		case kwSchema[k]:
			checkKeywords(t, sub, at+"/"+k)
		case kwSchemaMap[k]:
			for name, s := range sub.(map[string]any) {
				checkKeywords(t, s, at+"/"+k+"/"+name)
			}
		case kwSchemaArr[k]:
			for i, s := range sub.([]any) {
				checkKeywords(t, s, fmt.Sprintf("%s/%s/%d", at, k, i))
			}
		case kwValue[k]:
		default:
			t.Errorf("%s: keyword %q is not one this test knows the schema may use", at, k)
		}
	}
}

// yamlToJSON decodes raw as YAML and converts it to the values a JSON
// Schema validator (or an editor) sees: YAML's null, booleans and numbers
// as such, every other scalar (timestamps included) as the text written.
// It reads the first document only, as an editor validating a file does.
func yamlToJSON(raw []byte) (any, error) {
	var n yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(raw)).Decode(&n); err != nil {
		return nil, err
	}
	v, err := nodeValue(&n)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(b))
}

func nodeValue(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return nodeValue(n.Content[0])
	case yaml.AliasNode:
		return nodeValue(n.Alias)
	case yaml.SequenceNode:
		list := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := nodeValue(c)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		return list, nil
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: a key that is not a scalar has no JSON form", n.Content[i].Line)
			}
			v, err := nodeValue(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[n.Content[i].Value] = v
		}
		return m, nil
	}
	switch n.ShortTag() {
	case "!!null":
		return nil, nil
	case "!!bool", "!!int", "!!float":
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, err
		}
		if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			return n.Value, nil
		}
		return v, nil
	}
	return n.Value, nil
}

func schemaCheck(sch *jsonschema.Schema, raw []byte) error {
	v, err := yamlToJSON(raw)
	if err != nil {
		return fmt.Errorf("no JSON value: %w", err)
	}
	return sch.Validate(v)
}

// schemaBlindSpots are the documents the parser refuses and the schema
// accepts, by case name, with the reason the schema cannot see it.
var schemaBlindSpots = map[string]string{
	"broken/duplicate-nested-key.yaml": "layout: duplicate keys vanish when YAML becomes JSON",
	"broken/flow.yaml":                 "layout: a flow mapping is the same JSON as a block one",
	"broken/two-docs.yaml":             "layout: an editor validates the first document only",

	"layout: flow mapping in an entry":       "layout",
	"layout: anchor on a value":              "layout",
	"layout: explicit tag":                   "layout",
	"layout: block scalar":                   "layout",
	"layout: value on the next line":         "layout",
	"layout: flow list over two lines":       "layout",
	"layout: quoted key":                     "layout",
	"layout: space before the colon":         "layout",
	"layout: tab in a comment":               "layout",
	"layout: empty signing block":            "layout: `signing:` alone is null to YAML",
	"cross-field: expires before issued_at":  "cross-field",
	"cross-field: duplicate id":              "cross-field",
	"cross-field: POST without body digest":  "cross-field: body coverage depends on the methods",
	"cross-field: returned card not sibling": "cross-field",
	"code: url with a query":                 "code: the URL grammar",
	"code: range not a network address":      "code: CIDR masking",
	"code: timeout above 5m":                 "code: duration bounds",
	"code: card header twice in two cases":   "code: case-insensitive duplicates",

	"code: credential header twice in two cases":          "code: case-insensitive duplicates",
	"cross-field: credential headers without credentials": "cross-field: credential_headers needs credentials",

	"credentials.yaml: without line 25 (credentials)": "cross-field: signing.credential must be in credentials",
	"credentials.yaml: without line 50 (credentials)": "cross-field: signing.credential must be in credentials",
	"credentials.yaml: without line 42 (scheme)":      "layout: the signing block is left empty (`signing:` alone)",
	"signing variants: without line 25 (credentials)": "cross-field: signing.credential must be in credentials",
	"signing variants: without line 45 (credentials)": "cross-field: signing.credential must be in credentials",
	"signing variants: without line 77 (credentials)": "cross-field: signing.credential must be in credentials",
	"signing variants: without line 69 (algorithms)":  "layout: the digest block is left empty (`digest:` alone)",
	"docs example: without line 24 (credentials)":     "cross-field: signing.credential must be in credentials",
	"docs example: without line 51 (doctype)":         "layout: the body block is left empty (`body:` alone)",
}

// agreement runs raw through both and reports a disagreement that
// schemaBlindSpots does not name; seen records the names it used.
func agreement(t *testing.T, sch *jsonschema.Schema, name string, raw []byte, seen map[string]bool) {
	t.Helper()
	_, perr := ParseUnverified(raw)
	serr := schemaCheck(sch, raw)
	_, blind := schemaBlindSpots[name]
	seen[name] = true
	switch {
	case perr == nil && serr != nil:
		t.Errorf("%s: the parser accepts it, the schema refuses it:\n%v", name, serr)
	case perr != nil && serr == nil && !blind:
		t.Errorf("%s: the parser refuses it (%v), the schema accepts it; tighten the schema or list the case in schemaBlindSpots", name, perr)
	case blind && (perr == nil || serr != nil):
		t.Errorf("%s: listed in schemaBlindSpots, but parser error %v, schema error %v", name, perr, serr)
	}
}

func TestSchemaAgreesWithParserOnTestdata(t *testing.T) {
	sch := loadSchema(t)
	seen := map[string]bool{}
	good, _ := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	broken, _ := filepath.Glob(filepath.Join("testdata", "broken", "*.yaml"))
	if len(good) < 3 || len(broken) < 10 {
		t.Fatalf("testdata changed: %d documents, %d broken", len(good), len(broken))
	}
	for _, p := range append(good, broken...) {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		name, _ := filepath.Rel("testdata", p)
		_, perr := ParseUnverified(raw)
		if strings.HasPrefix(name, "broken") == (perr == nil) {
			t.Errorf("%s: parser error %v, not what its directory says", name, perr)
		}
		agreement(t, sch, filepath.ToSlash(name), raw, seen)
	}
	agreement(t, sch, "generated docSpec", docSpec{}.yaml(), seen)
}

// keyLine is a "key: value" or "key:" line of a fixture.
var keyLine = regexp.MustCompile(`^( *)(- )?([a-z_][a-z0-9_]*):(?: (.*))?$`)

// mutation is one generated variant of a fixture.
type mutation struct {
	name string
	raw  []byte
}

// mutations varies every key line of a valid fixture: an unknown key next
// to it, the line left out, its value in the other shape (a list for a
// scalar, a scalar for a list), and values outside the enumerations and
// patterns of a table of keys.
func mutations(file string, raw []byte) []mutation {
	lines := strings.Split(string(raw), "\n")
	with := func(i int, repl ...string) []byte {
		out := append(append(append([]string{}, lines[:i]...), repl...), lines[i+1:]...)
		return []byte(strings.Join(out, "\n"))
	}
	var out []mutation
	add := func(format string, args ...any) func([]byte) {
		return func(b []byte) { out = append(out, mutation{file + ": " + fmt.Sprintf(format, args...), b}) }
	}
	for i, l := range lines {
		m := keyLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		indent, item, key, value := m[1], m[2], m[3], m[4]
		n := i + 1
		if item != "" {
			add("unknown key after line %d (%s)", n, key)(with(i, l, indent+"  zz_unknown: x"))
		} else {
			add("unknown key before line %d (%s)", n, key)(with(i, indent+"zz_unknown: x", l))
		}
		if value == "" {
			continue // a block follows
		}
		if item == "" {
			add("without line %d (%s)", n, key)(with(i))
		}
		reshaped := "[" + value + "]"
		if strings.HasPrefix(value, "[") {
			first, _, _ := strings.Cut(strings.Trim(value, "[]"), ", ")
			reshaped = first
			if first == "" {
				reshaped = "x"
			}
		}
		add("line %d (%s) reshaped", n, key)(with(i, indent+item+key+": "+reshaped))
		for _, bad := range badValues[key] {
			add("line %d (%s) = %s", n, key, bad)(with(i, indent+item+key+": "+bad))
		}
	}
	return out
}

// badValues are values outside each key's enumeration or pattern; the
// parser refuses every one and so must the schema.
var badValues = map[string][]string{
	"format":              {"cardgate.allowlist/v2"},
	"namespace":           {"git"},
	"environment":         {"Test", `"prod env"`},
	"version":             {"0", `"01"`},
	"issued_at":           {"2026-11-01T00:00:00+01:00", "2026-11-01"},
	"expires":             {"tomorrow"},
	"prev_sha256":         {"abc"},
	"id":                  {"Acme", "-a"},
	"purpose":             {`""`},
	"url":                 {"http://api.acme.example/"},
	"methods":             {"[CONNECT]", "[post]", "[]", "[POST, POST]"},
	"callers":             {`["bill ing"]`, "[]"},
	"fields":              {"[pan]", "[]", "[number, number]"},
	"card_headers":        {"[Host]", "[Cookie]", `["a b"]`},
	"credential_headers":  {"[Host]", "[Idempotency-Key]", "[idempotency-key]", "[X-Forwarded-Auth]", "[X_Api_Key]", `["a b"]`, "[]", "[A, B, C, D, E]"},
	"spki_pins":           {`["sha1/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="]`},
	"ca_bundle":           {"-bad"},
	"client_cert":         {`"a b"`},
	"unsafe_allow_ranges": {"[localhost]"},
	"timeout":             {"30", "[30s]"},
	"max_response_bytes":  {"0", "67108865", `"67108865"`, "1MiB"},
	"credentials":         {"[Stripe_Key]", "[]"},
	"scheme":              {"rsa-sha1"},
	"algorithm":           {"hmac-sha1"},
	"secret_encoding":     {"base32"},
	"headers":             {"[Host, digest]", "[]"},
	"components":          {`["@status", content-digest]`, "[]"},
	"created":             {"maybe"},
	"request_identifiers": {"[1]"},
	"doctype":             {`'<!DOCTYPE a [<!ENTITY x "y">]>'`},
}

func TestSchemaAgreesWithParserOnMutations(t *testing.T) {
	sch := loadSchema(t)
	seen := map[string]bool{}
	var muts []mutation
	for _, f := range []string{"allowlist.yaml", "credentials.yaml", "response_rules.yaml"} {
		muts = append(muts, mutations(f, readFixture(t, f))...)
	}
	muts = append(muts, mutations("signing variants", signingVariants(t))...)
	muts = append(muts, mutations("docs example", docsExample(t))...)
	for _, tt := range handWritten(t) {
		muts = append(muts, tt)
	}
	for _, m := range muts {
		agreement(t, sch, m.name, m.raw, seen)
	}
	for name := range schemaBlindSpots {
		if !seen[name] && !strings.HasPrefix(name, "broken/") {
			t.Errorf("schemaBlindSpots names %q, which no case produced", name)
		}
	}
	t.Logf("%d mutations", len(muts))
}

// handWritten are the cases a line-by-line generator cannot make:
// variants YAML types differently that the parser accepts, and the
// layout, cross-field and code-only refusals of schemaBlindSpots.
func handWritten(t *testing.T) []mutation {
	base := string(readFixture(t, "allowlist.yaml"))
	creds := string(readFixture(t, "credentials.yaml"))
	replace := func(doc, old, new string) []byte {
		if !strings.Contains(doc, old) {
			t.Fatalf("fixture changed: %q not found", old)
		}
		return []byte(strings.Replace(doc, old, new, 1))
	}
	const timeout = "    timeout: 30s\n"
	cards := "    fields: []\n    cards:\n      primary: [number]\n"
	return []mutation{
		{"accepted: id as a YAML number", replace(base, "  - id: acme-charges\n", "  - id: 123\n")},
		{"accepted: purpose as a YAML number", replace(base, "    purpose: card payments for subscriptions\n", "    purpose: 2026\n")},
		{"accepted: owner as a YAML boolean", replace(base, "    owner: billing@example.com\n", "    owner: true\n")},
		{"accepted: caller as a YAML number", replace(base, "    callers: [billing]\n", "    callers: [billing, 42]\n")},
		{"accepted: quoted version", replace(base, "version: 1\n", "version: \"1\"\n")},
		{"accepted: version 2 with prev_sha256", replace(base, "version: 1\nissued_at: 2026-11-01T00:00:00Z\nexpires: 2027-01-15T00:00:00Z\nprev_sha256: \"\"\n",
			"version: 2\nissued_at: 2026-11-01T00:00:00Z\nexpires: 2027-01-15T00:00:00Z\nprev_sha256: "+strings.Repeat("ab", 32)+"\n")},
		{"accepted: prev_sha256 null", replace(base, "prev_sha256: \"\"\n", "prev_sha256: null\n")},
		{"accepted: quoted timestamp", replace(base, "issued_at: 2026-11-01T00:00:00Z\n", "issued_at: \"2026-11-01T00:00:00Z\"\n")},
		{"accepted: fractional-second timestamp", replace(base, "issued_at: 2026-11-01T00:00:00Z\n", "issued_at: 2026-11-01T00:00:00.5Z\n")},
		{"accepted: quoted max_response_bytes", replace(base, "    max_response_bytes: 1048576\n", "    max_response_bytes: \"67108864\"\n")},
		{"accepted: largest max_response_bytes", replace(base, "    max_response_bytes: 1048576\n", "    max_response_bytes: 67108864\n")},
		{"accepted: null timeout", replace(base, timeout, "    timeout: null\n")},
		{"accepted: null card_headers", replace(base, "    card_headers: [X-Card-Token]\n", "    card_headers: ~\n")},
		{"accepted: compound timeout", replace(base, timeout, "    timeout: 1m30.5s\n")},
		{"accepted: empty fields with cards", replace(base, "    fields: [number, exp_month, exp_year, cvc]\n", cards)},
		{"accepted: no destinations", []byte(base[:strings.Index(base, "destinations:")])},
		{"accepted: empty destinations", []byte(base[:strings.Index(base, "destinations:")] + "destinations: []\n")},
		{"accepted: created yes", replace(creds, "        created: true\n", "        created: yes\n")},
		{"accepted: null list item", replace(base, "    callers: [billing]\n", "    callers: [billing, null]\n")},
		{"accepted: null destination", replace(base, "destinations:\n", "destinations:\n  - null\n")},
		{"accepted: repeated unsafe range", replace(base, "[127.0.0.0/8]", "[127.0.0.0/8, 127.0.0.0/8]")},

		{"layout: flow mapping in an entry", replace(base, "    timeout: 30s\n", "    tls: {ca_bundle: acme}\n")},
		{"layout: anchor on a value", replace(base, "    purpose: card payments for subscriptions\n", "    purpose: &p card payments\n")},
		{"layout: explicit tag", replace(base, "    purpose: card payments for subscriptions\n", "    purpose: !!str card payments\n")},
		{"layout: block scalar", replace(base, "    purpose: card payments for subscriptions\n", "    purpose: |\n      card payments\n")},
		{"layout: value on the next line", replace(base, "    purpose: card payments for subscriptions\n", "    purpose:\n      card payments\n")},
		{"layout: flow list over two lines", replace(base, "    methods: [POST]\n", "    methods: [POST,\n      GET]\n")},
		{"layout: quoted key", replace(base, "    timeout: 30s\n", "    \"timeout\": 30s\n")},
		{"layout: space before the colon", replace(base, "    timeout: 30s\n", "    timeout : 30s\n")},
		{"layout: tab in a comment", replace(base, "    timeout: 30s\n", "    timeout: 30s # \tbounded\n")},
		{"layout: empty signing block", replace(creds, "    signing:\n      scheme: content-digest\n", "    signing:\n")},
		{"cross-field: expires before issued_at", replace(base, "expires: 2027-01-15T00:00:00Z\n", "expires: 2026-01-15T00:00:00Z\n")},
		{"cross-field: duplicate id", replace(base, "  - id: acme-wild\n", "  - id: acme-charges\n")},
		{"scheme: digest with a key", replace(creds, "      scheme: content-digest\n", "      scheme: content-digest\n      credential: stripe-secret-key\n")},
		{"scheme: cavage block under hmac", replace(creds, "      scheme: cavage\n", "      scheme: hmac\n")},
		{"cross-field: POST without body digest", replace(creds, "[host, date, request-target, digest, v-c-merchant-id]", "[host, date, request-target, v-c-merchant-id]")},
		{"cross-field: returned card not sibling", replace(string(readFixture(t, "response_rules.yaml")), "$.accountUpdate.card.expirationMonth", "$.other.expirationMonth")},
		{"code: url with a query", replace(base, "https://api.acme.example/v1/charges", "https://api.acme.example/v1/charges?x=1")},
		{"code: range not a network address", replace(base, "[127.0.0.0/8]", "[127.0.0.1/8]")},
		{"code: timeout above 5m", replace(base, timeout, "    timeout: 6m\n")},
		{"code: card header twice in two cases", replace(base, "[X-Card-Token]", "[X-Card-Token, x-card-token]")},
		{"code: credential header twice in two cases", replace(creds, "[X-API-Key]", "[X-API-Key, x-api-key]")},
		{"cross-field: credential headers without credentials", replace(creds, "    credentials: [stripe-secret-key]\n", "    credential_headers: [Authorization]\n")},
	}
}

// signingVariants is credentials.yaml with every signing setting the
// fixture leaves out: an hmac entry, digest algorithms, and the optional
// rfc9421 and cavage keys.
func signingVariants(t *testing.T) []byte {
	doc := string(readFixture(t, "credentials.yaml"))
	for _, r := range [][2]string{
		{"    signing:\n      scheme: content-digest\n", `    credentials: [hmac-key]
    signing:
      scheme: hmac
      credential: hmac-key
      secret_encoding: hex
      hmac:
        hash: sha256
        parts: [method, path+query, "header:X-Merchant", body-sha256-hex, timestamp]
        separator: "\n"
        header: X-Signature
        prefix: "v1="
        encoding: hex
        timestamp_header: X-Timestamp
        timestamp_format: unix
  - id: digest-both
    purpose: a processor that wants two body digests
    owner: billing@example.com
    url: https://api.digest.example/v2
    methods: [PUT]
    callers: [billing]
    fields: [number]
    signing:
      scheme: digest
      digest:
        algorithms: [sha-256, sha-512]
`},
		{"        expires: 5m\n", "        expires: 5m\n        label: sig-b\n        nonce: true\n        tag: app\n        include_alg: false\n        content_digest: [sha-512]\n"},
		{"        headers: [host, date, request-target, digest, v-c-merchant-id]\n", "        headers: [host, date, request-target, digest, v-c-merchant-id]\n        key_id_param: keyId\n        header: authorization\n        digest_algorithm: sha-512\n        empty_body_digest: true\n"},
	} {
		if !strings.Contains(doc, r[0]) {
			t.Fatalf("fixture changed: %q not found", r[0])
		}
		doc = strings.Replace(doc, r[0], r[1], 1)
	}
	if _, err := ParseUnverified([]byte(doc)); err != nil {
		t.Fatalf("signing variants: %v", err)
	}
	return []byte(doc)
}

// TestSchemaOnFuzzCorpus runs the fuzz corpus (testdata/fuzz/FuzzParse;
// FuzzParse's other seeds are the testdata documents above) through both:
// they must accept and refuse the same inputs, but for the blind spots
// schemaBlindSpots names by file.
func TestSchemaOnFuzzCorpus(t *testing.T) {
	sch := loadSchema(t)
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzParse", "*"))
	if len(files) == 0 {
		t.Fatal("no fuzz corpus in testdata/fuzz/FuzzParse")
	}
	accepted := 0
	seen := map[string]bool{}
	for _, p := range files {
		raw := readCorpusEntry(t, p)
		if _, err := ParseUnverified(raw); err == nil {
			accepted++
		}
		name, _ := filepath.Rel("testdata", p)
		agreement(t, sch, filepath.ToSlash(name), raw, seen)
	}
	if accepted == 0 || accepted == len(files) {
		t.Errorf("%d of %d corpus inputs accepted by the parser; want both kinds", accepted, len(files))
	}
	t.Logf("%d corpus inputs, %d accepted by the parser", len(files), accepted)
}

// TestSchemaAcceptsRandomVariants edits the fixtures at random (a fixed
// seed, so a failure replays): lines dropped, repeated or swapped, values
// replaced by scalars YAML types in different ways. Most variants are
// refused; every one the parser accepts must pass the schema.
func TestSchemaAcceptsRandomVariants(t *testing.T) {
	sch := loadSchema(t)
	var docs [][]string
	for _, raw := range [][]byte{readFixture(t, "allowlist.yaml"), readFixture(t, "credentials.yaml"),
		readFixture(t, "response_rules.yaml"), signingVariants(t), docsExample(t)} {
		docs = append(docs, strings.Split(string(raw), "\n"))
	}
	values := []string{"null", "~", "true", "yes", "1", "0", "-1", "0x10", "1.5", "1e3", `""`, "[]", "x",
		"2026-11-01T00:00:00Z", "2026-11-01", "30s", "[POST]", "[number]", `"1"`, ".inf", "[null]", "[1, 2]"}
	rng := rand.New(rand.NewPCG(15, 3))
	accepted := 0
	for i := 0; i < 4000; i++ {
		lines := slices.Clone(docs[rng.IntN(len(docs))])
		for range 1 + rng.IntN(2) {
			j, k := rng.IntN(len(lines)), rng.IntN(len(lines))
			switch rng.IntN(4) {
			case 0:
				lines = slices.Delete(lines, j, j+1)
			case 1:
				lines = slices.Insert(lines, j, lines[k])
			case 2:
				lines[j], lines[k] = lines[k], lines[j]
			default:
				if m := keyLine.FindStringSubmatch(lines[j]); m != nil && m[4] != "" {
					lines[j] = m[1] + m[2] + m[3] + ": " + values[rng.IntN(len(values))]
				}
			}
		}
		raw := []byte(strings.Join(lines, "\n"))
		if _, err := ParseUnverified(raw); err != nil {
			continue
		}
		accepted++
		if err := schemaCheck(sch, raw); err != nil {
			t.Errorf("variant %d: the parser accepts it, the schema refuses it:\n%s\n%v", i, raw, err)
		}
	}
	t.Logf("4000 variants, %d accepted by the parser", accepted)
}

// readCorpusEntry reads a "go test fuzz v1" file holding one []byte.
func readCorpusEntry(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	head, rest, ok := strings.Cut(string(b), "\n")
	rest = strings.TrimSpace(rest)
	if !ok || head != "go test fuzz v1" || !strings.HasPrefix(rest, "[]byte(") || !strings.HasSuffix(rest, ")") {
		t.Fatalf("%s: not a go test fuzz v1 file with one []byte", path)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(rest, "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(s)
}

// TestDocsExampleParses keeps the complete example of docs/allowlist.md
// valid: the parser and the schema both accept it.
func TestDocsExampleParses(t *testing.T) {
	example := docsExample(t)
	doc, err := ParseUnverified(example)
	if err != nil {
		t.Fatalf("ParseUnverified(docs example) = %v", err)
	}
	if len(doc.Destinations) != 2 || doc.Destinations[0].Signing == nil || doc.Destinations[1].Body == nil {
		t.Errorf("docs example parsed to %d entries, want 2 with signing and body", len(doc.Destinations))
	}
	if err := schemaCheck(loadSchema(t), example); err != nil {
		t.Errorf("the schema refuses the docs example:\n%v", err)
	}
}

// docsExample returns the complete example of docs/allowlist.md.
func docsExample(t *testing.T) []byte {
	t.Helper()
	md, err := os.ReadFile(filepath.Join("..", "docs", "allowlist.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(md), "<!-- schema-test: example -->\n```yaml\n")
	example, _, closed := strings.Cut(after, "```\n")
	if !ok || !closed {
		t.Fatal("docs/allowlist.md: the example block marked schema-test is missing")
	}
	return []byte(example)
}
