package api

import (
	"fmt"
	"math/bits"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/cardgate/cardgate/forwarder"
)

// benchForward is the body bench/run.sh sends.
const benchForward = `{"destination":"bench-upstream","url":"https://127.0.0.1:8443/v1/charges","method":"POST","card":"tok_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","headers":{"Content-Type":["application/json"]},"body":"{\"amount\":1000,\"currency\":\"usd\",\"number\":\"{{card.number}}\",\"exp\":\"{{card.exp_month}}/{{card.exp_year}}\"}"}`

// decodeGeneric is decodeJSON's generic path on body.
func decodeGeneric(body string) (forwarder.Request, error) {
	var req forwarder.Request
	err := decodeBody([]byte(body), &req)
	return req, err
}

// TestDecodeForwardFast: the common request shapes take the fast path and
// decode exactly as encoding/json decodes them.
func TestDecodeForwardFast(t *testing.T) {
	tests := []struct {
		name string
		body string
		want forwarder.Request
	}{
		{"bench", benchForward, forwarder.Request{
			Destination: "bench-upstream", URL: "https://127.0.0.1:8443/v1/charges", Method: "POST",
			Card: "tok_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", Headers: http.Header{"Content-Type": {"application/json"}},
			Body: `{"amount":1000,"currency":"usd","number":"{{card.number}}","exp":"{{card.exp_month}}/{{card.exp_year}}"}`,
		}},
		{"whitespace everywhere", " \t\r\n{ \"destination\" : \"d\" ,\n\"dry_run\" : true , \"method\":\"GET\" } \n",
			forwarder.Request{Destination: "d", DryRun: true, Method: "GET"}},
		{"dry run false", `{"dry_run":false,"card":"tok_x"}`, forwarder.Request{Card: "tok_x"}},
		{"short escapes", `{"body":"a\"b\\c\/d\be\ff\ng\rh\ti"}`, forwarder.Request{Body: "a\"b\\c/d\be\ff\ng\rh\ti"}},
		{"named cards and repeated headers", `{"cards":{"primary":"tok_a","funding":"tok_b"},"headers":{"X-A":["1","2"],"X-B":["3"]}}`,
			forwarder.Request{Cards: map[string]string{"primary": "tok_a", "funding": "tok_b"}, Headers: http.Header{"X-A": {"1", "2"}, "X-B": {"3"}}}},
		{"empty strings", `{"destination":"","body":""}`, forwarder.Request{}},
		{"non-ASCII", `{"body":"Zoë – 東京 😀"}`, forwarder.Request{Body: "Zoë – 東京 😀"}},
		{"a header with an empty name", `{"headers":{"":["x"]}}`, forwarder.Request{Headers: http.Header{"": {"x"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got forwarder.Request
			if !decodeForwardFast([]byte(tt.body), &got) {
				t.Fatalf("declined %s", tt.body)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("fast decode (-want +got):\n%s", diff)
			}
			ref, err := decodeGeneric(tt.body)
			if err != nil {
				t.Fatalf("encoding/json refused what the fast path took: %v", err)
			}
			if !reflect.DeepEqual(ref, got) {
				t.Errorf("fast %#v, encoding/json %#v", got, ref)
			}
		})
	}
}

// TestDecodeForwardFastDeclines: every shape outside the fast path's
// subset goes to encoding/json, which decodes it or refuses it with the
// usual typed error.
func TestDecodeForwardFastDeclines(t *testing.T) {
	tests := []struct{ name, body string }{
		{"another case of a key", `{"Destination":"d"}`},
		{"unknown key", `{"destination":"d","extra":"x"}`},
		{"repeated key", `{"destination":"a","destination":"b"}`},
		{"header named twice in two cases", `{"headers":{"X-A":["1"],"x-a":["2"]}}`},
		{"header named twice with a folding rune", `{"headers":{"K":["1"],"K":["2"]}}`},
		{"card named twice", `{"cards":{"a":"tok_a","A":"tok_b"}}`},
		{"null value", `{"body":null}`},
		{"null header values", `{"headers":{"X":null}}`},
		{"null in header values", `{"headers":{"X":["a",null]}}`},
		{"unicode escape", `{"body":"\u0041"}`},
		{"unicode escape in a key", `{"dest\u0069nation":"d"}`},
		{"escape in a key", `{"head\ners":{"X":["1"]}}`},
		{"bad escape", `{"body":"\x"}`},
		{"number", `{"body":1}`},
		{"number in headers", `{"headers":{"X":[1]}}`},
		{"empty object", `{}`},
		{"empty headers", `{"headers":{}}`},
		{"empty cards", `{"cards":{}}`},
		{"empty header values", `{"headers":{"X":[]}}`},
		{"object in headers", `{"headers":{"X":{"a":"b"}}}`},
		{"array at the top", `[{"destination":"d"}]`},
		{"trailing data", `{"destination":"d"}{}`},
		{"trailing comma", `{"destination":"d",}`},
		{"missing colon", `{"destination" "d"}`},
		{"truex", `{"dry_run":truex}`},
		{"quoted bool", `{"dry_run":"true"}`},
		{"control character in a string", "{\"body\":\"a\tb\"}"},
		{"unterminated string", `{"body":"abc`},
		{"unterminated object", `{"body":"abc"`},
		{"string for headers", `{"headers":"X: 1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got forwarder.Request
			if decodeForwardFast([]byte(tt.body), &got) {
				t.Errorf("took %s: %#v", tt.body, got)
			}
			if !reflect.DeepEqual(got, forwarder.Request{}) {
				t.Errorf("declined, but wrote %#v", got)
			}
		})
	}
}

// namesBody is a body whose "headers" (or "cards") object holds n
// distinct names.
func namesBody(field string, n int) string {
	var b strings.Builder
	b.WriteString(`{"` + field + `":{`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		if field == "headers" {
			fmt.Fprintf(&b, `"X-%x":["v"]`, i)
		} else {
			fmt.Fprintf(&b, `"c%x":"tok_x"`, i)
		}
	}
	b.WriteString("}}")
	return b.String()
}

// TestDecodeForwardFastManyNames: the fast path compares each name in
// "headers" and "cards" with every earlier one, so it reads at most
// maxFastNames of them; a body with more (a hostile one holds tens of
// thousands, which cost seconds of CPU at quadratic time) is left to the
// generic path, which decodes it to the same Request.
func TestDecodeForwardFastManyNames(t *testing.T) {
	tests := []struct {
		name  string
		field string
		names int
		fast  bool
	}{
		{"headers at the bound", "headers", maxFastNames, true},
		{"headers past the bound", "headers", maxFastNames + 1, false},
		{"headers filling the default body limit", "headers", 20000, false},
		{"cards at the bound", "cards", maxFastNames, true},
		{"cards past the bound", "cards", maxFastNames + 1, false},
		{"cards filling the default body limit", "cards", 20000, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := namesBody(tt.field, tt.names)
			var got forwarder.Request
			if fast := decodeForwardFast([]byte(body), &got); fast != tt.fast {
				t.Fatalf("decodeForwardFast(%d %s names) = %v, want %v", tt.names, tt.field, fast, tt.fast)
			}
			if !tt.fast {
				if !reflect.DeepEqual(got, forwarder.Request{}) {
					t.Fatalf("declined, but wrote %#v", got)
				}
			}
			ref, err := decodeGeneric(body)
			if err != nil {
				t.Fatalf("encoding/json refused %d %s names: %v", tt.names, tt.field, err)
			}
			if tt.fast && !reflect.DeepEqual(ref, got) {
				t.Errorf("fast %#v, encoding/json %#v", got, ref)
			}
		})
	}
}

// FuzzDecodeForwardFast: whatever the fast path takes, encoding/json (with
// decodeJSON's checks: one object, no unknown or repeated key) takes too,
// with the same Request. An input it declines is left to encoding/json,
// and the Request untouched.
func FuzzDecodeForwardFast(f *testing.F) {
	for _, s := range []string{
		benchForward,
		`{"destination":"d","dry_run":true}`,
		`{"cards":{"primary":"tok_a","funding":"tok_b"},"headers":{"X-A":["1","2"]}}`,
		`{"body":"a\"b\\c\/d\be\ff\ng\rh\ti"}`,
		`{"headers":{"K":["1"],"k":["2"]}}`,
		`{"Body":"x"}`,
		` {"method" : "POST" } `,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if !utf8.ValidString(body) {
			return // refused before either decoder runs
		}
		var got forwarder.Request
		if !decodeForwardFast([]byte(body), &got) {
			if !reflect.DeepEqual(got, forwarder.Request{}) {
				t.Fatalf("%q: declined, but wrote %#v", body, got)
			}
			return
		}
		ref, err := decodeGeneric(body)
		if err != nil {
			t.Fatalf("encoding/json refused %q, which the fast path took: %v", body, err)
		}
		if !reflect.DeepEqual(ref, got) {
			t.Fatalf("%q: fast %#v, encoding/json %#v", body, got, ref)
		}
	})
}

// BenchmarkDecodeForward: the fast path against encoding/json with the
// duplicate-key pass, on the benchmark's request.
func BenchmarkDecodeForward(b *testing.B) {
	body := []byte(benchForward)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var req forwarder.Request
			if !decodeForwardFast(body, &req) {
				b.Fatal("declined")
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var req forwarder.Request
			if err := decodeBody(body, &req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestFastScannerBufferNeverGrows: a string with escapes is unescaped
// into one buffer sized for it. Grown by append instead, the buffer would
// leave the bytes already copied (of a body template, a header value) in
// an abandoned array that nothing clears; so a long string must cost no
// more allocations than a short one.
func TestFastScannerBufferNeverGrows(t *testing.T) {
	long := strings.Repeat("4111111111111111 ", 512)
	tests := []struct{ name, short, long string }{
		{"escape first", `"\nab"`, `"\n` + long + `"`},
		{"escape last", `"ab\n"`, `"` + long + `\n"`},
		{"escapes throughout", `"\"\\"`, `"` + strings.Repeat(`\"\\`, 2048) + `"`},
	}
	allocs := func(str string) float64 {
		raw := []byte(str)
		return testing.AllocsPerRun(20, func() {
			s := fastScanner{b: raw}
			if _, ok := s.rawStr(); !ok {
				t.Fatalf("rawStr(%.20q…) declined", str)
			}
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if short, long := allocs(tt.short), allocs(tt.long); long != short {
				t.Errorf("rawStr made %v allocations for a %d-byte string, %v for a %d-byte one; want the same", long, len(tt.long), short, len(tt.short))
			}
		})
	}
}

// TestDecodeForwardFastKnowsEveryField: the fast path spells the
// request's JSON keys out by hand, so a field added to forwarder.Request,
// or renamed, must not leave it reading a key encoding/json now refuses
// (or refusing one it takes). Each JSON field of the struct is read by the
// fast path to the value encoding/json gives, and there are as many of
// them as the fast path has key bits: it reads no other key.
func TestDecodeForwardFastKnowsEveryField(t *testing.T) {
	values := map[reflect.Type]string{
		reflect.TypeFor[string]():            `"x"`,
		reflect.TypeFor[bool]():              `true`,
		reflect.TypeFor[http.Header]():       `{"X-A":["1"]}`,
		reflect.TypeFor[map[string]string](): `{"primary":"tok_a"}`,
	}
	rt := reflect.TypeFor[forwarder.Request]()
	fields := 0
	for i := range rt.NumField() {
		f := rt.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		fields++
		if name == "" {
			name = f.Name
		}
		t.Run(name, func(t *testing.T) {
			v, ok := values[f.Type]
			if !ok {
				t.Fatalf("field %s has type %v, which this test has no value for", f.Name, f.Type)
			}
			body := `{"` + name + `":` + v + `}`
			var got forwarder.Request
			if !decodeForwardFast([]byte(body), &got) {
				t.Fatalf("decodeForwardFast(%s) declined", body)
			}
			ref, err := decodeGeneric(body)
			if err != nil {
				t.Fatalf("encoding/json refused %s: %v", body, err)
			}
			if diff := cmp.Diff(ref, got); diff != "" {
				t.Errorf("decodeForwardFast(%s) (-encoding/json +fast):\n%s", body, diff)
			}
		})
	}
	if keys := bits.Len16(keyCards); fields != keys {
		t.Errorf("forwarder.Request has %d JSON fields, the fast path reads %d keys", fields, keys)
	}
}

// TestDecodeForwardFastFoldsEveryRune: past fewKeys names duplicateKey
// compares folded keys in a map, while the fast path compares every pair
// with strings.EqualFold. For every pair of runes that Unicode simple
// folding makes equal, a headers object naming both, after more than
// fewKeys other names, is refused by the generic path and declined by the
// fast one; a rune next to it that does not fold with it makes two names
// that both paths take, to the same Request.
func TestDecodeForwardFastFoldsEveryRune(t *testing.T) {
	var filler strings.Builder
	for i := range fewKeys + 1 {
		fmt.Fprintf(&filler, `"X-%d":["v"],`, i)
	}
	body := func(a, b rune) string {
		return `{"headers":{` + filler.String() + `"n` + string(a) + `":["1"],"n` + string(b) + `":["2"]}}`
	}
	pairs := 0
	for r := rune(0x20); r <= unicode.MaxRune; r++ {
		if !utf8.ValidRune(r) || r == '"' || r == '\\' || r == 0x7f {
			continue
		}
		f := unicode.SimpleFold(r)
		if f == r || f < r {
			continue // no folding, or seen from f's side
		}
		for ; f != r; f = unicode.SimpleFold(f) {
			pairs++
			b := body(r, f)
			var got forwarder.Request
			if decodeForwardFast([]byte(b), &got) {
				t.Errorf("fast path took names %q and %q, which fold together", string(r), string(f))
			}
			if _, err := decodeGeneric(b); err == nil {
				t.Errorf("generic path took names %q and %q, which fold together", string(r), string(f))
			}
		}
		for _, n := range []rune{r - 1, r + 1} {
			if !utf8.ValidRune(n) || n < 0x20 || n == '"' || n == '\\' || n == 0x7f || strings.EqualFold(string(r), string(n)) {
				continue
			}
			b := body(r, n)
			var got forwarder.Request
			if !decodeForwardFast([]byte(b), &got) {
				t.Errorf("fast path declined names %q and %q, which do not fold together", string(r), string(n))
				continue
			}
			ref, err := decodeGeneric(b)
			if err != nil {
				t.Errorf("generic path refused names %q and %q, which the fast path took: %v", string(r), string(n), err)
				continue
			}
			if !reflect.DeepEqual(ref, got) {
				t.Errorf("names %q and %q: fast %#v, encoding/json %#v", string(r), string(n), got, ref)
			}
		}
	}
	if pairs < 1000 {
		t.Errorf("checked %d folding pairs, want the whole Unicode table", pairs)
	}
}
