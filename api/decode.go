package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/cardgate/cardgate/forwarder"
)

// decodeJSON decodes exactly one JSON object into v. It refuses, each
// with a typed error whose message names a field path or a rule but never
// a value or a Go type:
//
//   - a Content-Type other than application/json (any case), a missing
//     one, a parameter other than charset, and a charset other than utf-8;
//   - a body larger than the limit, not UTF-8, not JSON, or with trailing
//     data after the object;
//   - unknown fields, values of the wrong JSON type, and duplicate keys
//     at any depth (encoding/json would keep the last one silently).
func decodeJSON(r *http.Request, v any) error {
	body, err := readJSON(r)
	// The body of /v1/cards holds a card number: the decoded copies are
	// what the handler keeps, so the raw bytes are wiped once decoded.
	defer clear(body)
	if err != nil {
		return err
	}
	return decodeBody(body, v)
}

// decodeForward is decodeJSON for a /v1/forward body: the common shape
// goes through decodeForwardFast, anything else through encoding/json.
func decodeForward(r *http.Request, req *forwarder.Request) error {
	body, err := readJSON(r)
	defer clear(body)
	if err != nil {
		return err
	}
	if decodeForwardFast(body, req) {
		return nil
	}
	return decodeBody(body, req)
}

// readJSON checks the Content-Type and reads the body, which must be
// UTF-8. The caller clears what it returns.
func readJSON(r *http.Request) ([]byte, error) {
	if err := checkContentType(r.Header.Values("Content-Type")); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return body, decodeError(err)
	}
	if !utf8.Valid(body) {
		// encoding/json would replace the bad bytes and carry on; a body
		// in another encoding must not be read as a different request.
		return body, &Error{Code: CodeInvalidJSON, Message: "the body is not valid UTF-8"}
	}
	return body, nil
}

// decodeBody decodes body, valid UTF-8, as exactly one JSON object into v.
func decodeBody(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &Error{Code: CodeInvalidJSON, Message: "the body must hold exactly one JSON object"}
	}
	// After Decode, so that the body is known to be one valid JSON value.
	if path, dup := duplicateKey(body); dup {
		return &Error{Code: CodeInvalidJSON, Message: "duplicate key " + path}
	}
	return nil
}

// checkContentType accepts exactly one Content-Type of application/json
// (media type compared without case, as RFC 9110 §8.3.1 says) with no
// parameter but an optional charset=utf-8 (any case). A request without
// one is refused rather than guessed at: fail closed.
func checkContentType(vals []string) error {
	unsupported := func(msg string) error { return &Error{Code: CodeUnsupportedMediaType, Message: msg} }
	switch len(vals) {
	case 0:
		return unsupported("set Content-Type: application/json")
	case 1:
	default:
		return unsupported("send one Content-Type header")
	}
	mt, params, err := mime.ParseMediaType(vals[0])
	if err != nil {
		return unsupported("the Content-Type header is malformed; send application/json")
	}
	if mt != "application/json" {
		return unsupported("send the request as application/json")
	}
	for k, v := range params { // ParseMediaType lowercases the names
		if k != "charset" {
			return unsupported("application/json takes no parameter but charset=utf-8")
		}
		if !strings.EqualFold(v, "utf-8") {
			return &Error{Code: CodeUnsupportedCharset, Message: "the only charset accepted is utf-8"}
		}
	}
	return nil
}

// decodeError turns encoding/json's errors into messages that name the
// JSON field path and the expected JSON type, never a Go type or a value.
func decodeError(err error) error {
	var tooBig *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		return &Error{Code: CodeRequestTooLarge, Message: fmt.Sprintf("the body is larger than %d bytes", tooBig.Limit)}
	case errors.As(err, &syntax):
		return &Error{Code: CodeInvalidJSON, Message: fmt.Sprintf("malformed JSON at byte %d", syntax.Offset)}
	case errors.As(err, &typ):
		return &Error{Code: CodeInvalidJSON, Message: typeMessage(typ)}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Code: CodeInvalidJSON, Message: "the body is empty or truncated"}
	}
	// encoding/json has no typed error for an unknown field; it reports
	// `json: unknown field "x"`. The name is a key the caller chose (not a
	// value), so it is safe to echo and worth naming.
	const prefix = "json: unknown field "
	if msg := err.Error(); len(msg) > len(prefix) && msg[:len(prefix)] == prefix {
		// Named only when it looks like a field name: a key is caller
		// input too, and could be a card number.
		if name := msg[len(prefix):]; len(name) >= 2 && name[0] == '"' && name[len(name)-1] == '"' && safeKey(name[1:len(name)-1]) {
			return &Error{Code: CodeInvalidJSON, Message: "unknown field " + name}
		}
		return &Error{Code: CodeInvalidJSON, Message: "unknown field"}
	}
	return &Error{Code: CodeInvalidJSON, Message: "the body is not a valid request"}
}

// typeMessage says which field holds a value of the wrong JSON type. Field
// is the path of JSON names from our own struct tags (encoding/json never
// puts a map key in it); Type is a Go type, which is turned into the JSON
// type it decodes; Value starts with the JSON type received and, for a
// number, goes on with its digits, which are dropped: they could be a card
// number sent as a JSON number.
func typeMessage(e *json.UnmarshalTypeError) string {
	want := jsonType(e.Type)
	got, _, _ := strings.Cut(e.Value, " ")
	switch got {
	case "string", "number", "array", "object":
	case "bool":
		got = "boolean"
	default:
		got = ""
	}
	where := "the body"
	if e.Field != "" {
		where = `field "` + e.Field + `"`
		for _, seg := range strings.Split(e.Field, ".") {
			if !safeKey(seg) {
				where = "a field"
				break
			}
		}
	} else if want == "object" {
		return "the body must be a JSON object"
	}
	msg := where + ": expected " + article(want)
	if got != "" {
		msg += ", got " + article(got)
	}
	return msg
}

func article(t string) string {
	if t == "" {
		return "a different type"
	}
	if strings.ContainsRune("aeiou", rune(t[0])) {
		return "an " + t
	}
	return "a " + t
}

// jsonType names the JSON type that values of the Go type t decode from.
func jsonType(t reflect.Type) string {
	if t == nil {
		return ""
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
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
	return ""
}

// safeKey reports whether a JSON key may be named in a message: 1–64
// ASCII letters, '_', '-' and at most four digits, so it cannot hold a
// card number or anything else worth hiding.
func safeKey(k string) bool {
	if len(k) == 0 || len(k) > 64 {
		return false
	}
	digits := 0
	for i := 0; i < len(k); i++ {
		switch c := k[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == '-':
		case c >= '0' && c <= '9':
			digits++
		default:
			return false
		}
	}
	return digits <= 4
}
