package api

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// schemaValidator checks JSON values against the schemas of openapi.yaml.
// It implements the part of JSON Schema 2020-12 the document uses, and
// refuses any other keyword (TestOpenAPISchemaKeywords): a keyword it
// silently skipped would make the check pass on anything.
type schemaValidator struct {
	doc map[string]any
}

// validatingKeywords are the assertions the validator applies.
var validatingKeywords = []string{"$ref", "type", "required", "properties", "additionalProperties",
	"enum", "const", "pattern", "items", "minimum", "maximum", "maxLength", "minLength",
	"oneOf", "minProperties", "maxProperties", "propertyNames"}

// annotationKeywords carry no assertion (format is an annotation by
// default in 2020-12; the document's own x- extensions are checked by
// other tests).
var annotationKeywords = []string{"description", "examples", "example", "format", "title", "x-cardgate-status"}

// resolve follows a local $ref ("#/components/schemas/X").
func (v *schemaValidator) resolve(ref string) (any, error) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, fmt.Errorf("$ref %q is not local", ref)
	}
	var cur any = v.doc
	for _, k := range strings.Split(ref[2:], "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("$ref %q does not resolve", ref)
		}
		if cur, ok = m[k]; !ok {
			return nil, fmt.Errorf("$ref %q does not resolve", ref)
		}
	}
	return cur, nil
}

// validate returns every way value (as encoding/json decodes into any,
// with UseNumber) breaks schema; where is the JSON path for messages.
func (v *schemaValidator) validate(schema any, value any, where string) []string {
	s, ok := schema.(map[string]any)
	if !ok {
		if b, isBool := schema.(bool); isBool {
			if !b {
				return []string{where + ": no value is allowed here"}
			}
			return nil
		}
		return []string{where + ": the schema is not an object"}
	}
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, where+": "+fmt.Sprintf(format, args...)) }
	for k := range s {
		if !slices.Contains(validatingKeywords, k) && !slices.Contains(annotationKeywords, k) {
			fail("the schema uses %q, which the test validator does not implement", k)
		}
	}
	if ref, ok := s["$ref"].(string); ok {
		target, err := v.resolve(ref)
		if err != nil {
			fail("%v", err)
			return errs
		}
		// 2020-12: $ref applies alongside its siblings.
		errs = append(errs, v.validate(target, value, where)...)
	}
	if t, ok := s["type"]; ok {
		types := []string{}
		switch t := t.(type) {
		case string:
			types = append(types, t)
		case []any:
			for _, e := range t {
				s, _ := e.(string)
				types = append(types, s)
			}
		}
		if !slices.ContainsFunc(types, func(t string) bool { return hasType(value, t) }) {
			fail("%s is not of type %s", kind(value), strings.Join(types, " or "))
			return errs // the other keywords would only repeat it
		}
	}
	if e, ok := s["enum"].([]any); ok && !slices.ContainsFunc(e, func(x any) bool { return equalJSON(x, value) }) {
		fail("%s is not one of %v", short(value), e)
	}
	if c, ok := s["const"]; ok && !equalJSON(c, value) {
		fail("%s is not %v", short(value), c)
	}
	if str, ok := value.(string); ok {
		if p, ok := s["pattern"].(string); ok {
			re, err := regexp.Compile(p)
			if err != nil {
				fail("pattern %q: %v", p, err)
			} else if !re.MatchString(str) {
				fail("%s does not match %s", short(value), p)
			}
		}
		if n, ok := s["maxLength"].(int); ok && utf8.RuneCountInString(str) > n {
			fail("longer than %d characters", n)
		}
		if n, ok := s["minLength"].(int); ok && utf8.RuneCountInString(str) < n {
			fail("shorter than %d characters", n)
		}
	}
	if num, ok := value.(json.Number); ok {
		f, _ := num.Float64()
		if m, ok := s["minimum"].(int); ok && f < float64(m) {
			fail("%s is below %d", num, m)
		}
		if m, ok := s["maximum"].(int); ok && f > float64(m) {
			fail("%s is above %d", num, m)
		}
	}
	if alts := asList(s["oneOf"]); len(alts) > 0 {
		valid := 0
		for _, alt := range alts {
			if len(v.validate(alt, value, where)) == 0 {
				valid++
			}
		}
		if valid != 1 {
			fail("matches %d of the oneOf schemas, want exactly 1", valid)
		}
	}
	if obj, ok := value.(map[string]any); ok {
		if n, ok := s["minProperties"].(int); ok && len(obj) < n {
			fail("has %d properties, fewer than %d", len(obj), n)
		}
		if n, ok := s["maxProperties"].(int); ok && len(obj) > n {
			fail("has %d properties, more than %d", len(obj), n)
		}
		if pn, ok := s["propertyNames"]; ok {
			for k := range obj {
				errs = append(errs, v.validate(pn, k, where+" (property name)")...)
			}
		}
		for _, r := range asList(s["required"]) {
			if _, ok := obj[r.(string)]; !ok {
				fail("required property %q is missing", r)
			}
		}
		props, _ := s["properties"].(map[string]any)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if ps, ok := props[k]; ok {
				errs = append(errs, v.validate(ps, obj[k], where+"."+k)...)
			} else if ap, ok := s["additionalProperties"]; ok {
				errs = append(errs, v.validate(ap, obj[k], where+"."+k)...)
			}
		}
	}
	if arr, ok := value.([]any); ok {
		if items, ok := s["items"]; ok {
			for i, e := range arr {
				errs = append(errs, v.validate(items, e, where+"["+strconv.Itoa(i)+"]")...)
			}
		}
	}
	return errs
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// hasType reports whether value is of the JSON Schema type t.
func hasType(value any, t string) bool {
	switch value := value.(type) {
	case nil:
		return t == "null"
	case bool:
		return t == "boolean"
	case string:
		return t == "string"
	case json.Number:
		if t == "number" {
			return true
		}
		f, err := value.Float64()
		return t == "integer" && err == nil && f == math.Trunc(f)
	case []any:
		return t == "array"
	case map[string]any:
		return t == "object"
	}
	return false
}

func kind(value any) string {
	for _, t := range []string{"null", "boolean", "string", "integer", "number", "array", "object"} {
		if hasType(value, t) {
			return t
		}
	}
	return fmt.Sprintf("%T", value)
}

// equalJSON compares a YAML-decoded schema value with a JSON-decoded one.
func equalJSON(schemaVal, value any) bool {
	switch s := schemaVal.(type) {
	case int:
		n, ok := value.(json.Number)
		return ok && n.String() == strconv.Itoa(s)
	case string, bool, nil:
		return schemaVal == value
	}
	return false
}

func short(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 60 {
		return string(b[:60]) + "…"
	}
	return string(b)
}

// TestSchemaValidator checks the validator itself, so that a pass of the
// response test means something.
func TestSchemaValidator(t *testing.T) {
	doc := map[string]any{"components": map[string]any{"schemas": map[string]any{
		"Code": map[string]any{"type": "string", "enum": []any{"a", "b"}},
	}}}
	v := &schemaValidator{doc: doc}
	schema := map[string]any{
		"type":                 "object",
		"required":             []any{"code", "n"},
		"additionalProperties": false,
		"properties": map[string]any{
			"code": map[string]any{"$ref": "#/components/schemas/Code"},
			"n":    map[string]any{"type": "integer", "minimum": 1, "maximum": 9},
			"s":    map[string]any{"type": "string", "pattern": "^tok_", "maxLength": 8},
			"l":    map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
			"m":    map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "boolean"}},
			"c":    map[string]any{"const": "ok"},
		},
	}
	tests := []struct {
		name, body string
		ok         bool
	}{
		{"valid", `{"code":"a","n":3,"s":"tok_1","l":["x"],"m":{"k":true},"c":"ok"}`, true},
		{"missing required", `{"code":"a"}`, false},
		{"bad enum through $ref", `{"code":"z","n":1}`, false},
		{"not an integer", `{"code":"a","n":1.5}`, false},
		{"below minimum", `{"code":"a","n":0}`, false},
		{"above maximum", `{"code":"a","n":10}`, false},
		{"pattern", `{"code":"a","n":1,"s":"x"}`, false},
		{"maxLength", `{"code":"a","n":1,"s":"tok_12345"}`, false},
		{"items", `{"code":"a","n":1,"l":[1]}`, false},
		{"additionalProperties schema", `{"code":"a","n":1,"m":{"k":"yes"}}`, false},
		{"additionalProperties false", `{"code":"a","n":1,"extra":1}`, false},
		{"const", `{"code":"a","n":1,"c":"nope"}`, false},
		{"null is not an object", `null`, false},
		{"unknown keyword", `{"code":"a","n":1,"u":1}`, false},
	}
	schema["properties"].(map[string]any)["u"] = map[string]any{"multipleOf": 2}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec := json.NewDecoder(strings.NewReader(tt.body))
			dec.UseNumber()
			var val any
			if err := dec.Decode(&val); err != nil {
				t.Fatal(err)
			}
			if errs := v.validate(schema, val, "$"); (len(errs) == 0) != tt.ok {
				t.Errorf("validate(%s) = %v, want ok=%v", tt.body, errs, tt.ok)
			}
		})
	}
}
