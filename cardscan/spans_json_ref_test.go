package cardscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// refFrame is one open object or array, and where in it the reader is.
type refFrame struct {
	array     bool
	expectKey bool   // object: the next token is a key (or '}')
	key       string // object: the key of the current member
	index     int    // array: the index of the current element
	start     int    // offset of its '{' or '['
}

// findJSONReference is a second, independent reading of a JSON body for
// the tests: encoding/json's tokenizer, with offsets from the decoder's
// InputOffset. It is simple and slow (an allocation per token, and
// encoding/json builds an error to find the end of each skipped value);
// FuzzFindJSONReference checks that findJSON agrees with it.
func findJSONReference(body []byte, paths []Path) ([]Span, *SpanError) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	out := spanList{kind: BodyJSON}
	var stack []refFrame
	var skip json.RawMessage
	rootDone := false

	// done moves the innermost container past the value just read.
	done := func() {
		if len(stack) == 0 {
			rootDone = true
			return
		}
		top := &stack[len(stack)-1]
		if top.array {
			top.index++
		} else {
			top.expectKey = true
		}
	}
	fail := func() ([]Span, *SpanError) { return nil, parseFailed(BodyJSON, int(dec.InputOffset())) }

	for {
		if n := len(stack); n > 0 {
			top := &stack[n-1]
			atValue := !top.array && !top.expectKey || top.array && dec.More()
			if atValue && !refMayMatch(paths, stack) {
				skip = skip[:0]
				if err := dec.Decode(&skip); err != nil {
					return fail()
				}
				done()
				continue
			}
		}
		before := int(dec.InputOffset())
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) && rootDone && len(stack) == 0 {
			break
		}
		if err != nil || rootDone {
			return fail() // a syntax error, or a second value after the first
		}
		end := int(dec.InputOffset())

		if n := len(stack); n > 0 && !stack[n-1].array && stack[n-1].expectKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:n-1]
				done()
				continue
			}
			key, ok := tok.(string)
			if !ok {
				return fail()
			}
			stack[n-1].key, stack[n-1].expectKey = key, false
			continue
		}

		start := refValueStart(body, before)
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, refFrame{expectKey: true, start: start})
			case '[':
				stack = append(stack, refFrame{array: true, start: start})
			default: // '}' is handled above; ']' closes an array
				stack = stack[:len(stack)-1]
				done()
			}
		case string:
			if err := refAddJSON(&out, paths, stack, start+1, end-1, ValueJSONString); err != nil {
				return nil, err
			}
			done()
		case json.Number:
			if err := refAddJSON(&out, paths, stack, start, end, ValueJSONNumber); err != nil {
				return nil, err
			}
			done()
		default: // true, false, null
			done()
		}
	}
	return out.spans, nil
}

// valueStart returns the offset of the token that starts at or after off:
// between tokens JSON holds only whitespace, ':' and ','.
func refValueStart(body []byte, off int) int {
	for off < len(body) {
		switch body[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
			continue
		}
		break
	}
	return off
}

// addJSON records a span for every path that selects the value at the
// place stack describes.
func refAddJSON(out *spanList, paths []Path, stack []refFrame, start, end int, kind ValueKind) *SpanError {
	if len(stack) == 0 {
		return nil // a bare top-level value: every path has a step
	}
	for i := range paths {
		if paths[i].kind == PathJSON && refMatch(&paths[i], stack, false) {
			err := out.add(Span{Start: start, End: end, Path: i, Parent: stack[len(stack)-1].start, Kind: kind})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonMayMatch reports whether some path selects the value at the place
// stack describes or a value inside it.
func refMayMatch(paths []Path, stack []refFrame) bool {
	for i := range paths {
		if paths[i].kind == PathJSON && refMatch(&paths[i], stack, true) {
			return true
		}
	}
	return false
}

// jsonMatch reports whether p's steps spell the place stack describes
// (prefix: or begin with it).
func refMatch(p *Path, stack []refFrame, prefix bool) bool {
	if len(stack) > len(p.steps) || !prefix && len(stack) != len(p.steps) {
		return false
	}
	for i := range stack {
		fr, st := &stack[i], &p.steps[i]
		switch st.kind {
		case stepKey:
			if fr.array || fr.key != st.name {
				return false
			}
		case stepIndex:
			if !fr.array || fr.index != st.index {
				return false
			}
		case stepAny:
			if !fr.array {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// FuzzFindJSONReference: findJSON and the encoding/json tokenizer agree on
// which bodies parse and on every span.
func FuzzFindJSONReference(f *testing.F) {
	f.Add([]byte(`{"a":{"b":"722463149772052"},"c":[1,"x",{"d":74537604221431003881310}]}`), "$.a.b", "$.c[*].d")
	f.Add([]byte(`{"a\u0062":"\u0034","x":[[1],{"y":[]}],"a":[true,null,-0.5e-3]}`), "$.ab", "$.a[2]")
	f.Add([]byte(`[{"\xff":"1"},{"k":{"k":"2"}}] `), "$[0]['\ufffd']", "$[*].k.k")
	f.Add([]byte(`{"a":"1"} {"a":"2"}`), "$.a", "$.b")
	f.Fuzz(func(t *testing.T, body []byte, p1, p2 string) {
		var paths []Path
		for _, s := range []string{p1, p2} {
			if p, err := ParsePath(s); err == nil && p.kind == PathJSON {
				paths = append(paths, p)
			}
		}
		got, gerr := findJSON(body, paths)
		want, werr := findJSONReference(body, paths)
		if (gerr != nil) != (werr != nil) {
			t.Fatalf("findJSON error %v, reference error %v", gerr, werr)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("findJSON spans differ from the reference (-ref +got):\n%s", diff)
		}
	})
}
