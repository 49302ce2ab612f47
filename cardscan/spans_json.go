package cardscan

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// jsonFrame is one open object or array, and where in it the walk is.
type jsonFrame struct {
	array     bool
	expectKey bool   // object: the next string is a key
	keyRaw    []byte // object: the current member's key as written, when it has no escape
	keyDec    string // object: the current member's key decoded, when it has one
	decoded   bool   // keyDec, not keyRaw, holds the key
	index     int    // array: the index of the current element
	start     int    // offset of its '{' or '['
}

func (f *jsonFrame) keyIs(name string) bool {
	if f.decoded {
		return f.keyDec == name
	}
	return string(f.keyRaw) == name // compared without a copy
}

// findJSON checks body with json.Valid (encoding/json's own grammar, one
// value and nothing after it but whitespace), then walks it: once the
// grammar is known to hold, a walk needs only to tell strings, numbers,
// literals and brackets apart, and keeps exact offsets without the
// allocations of a tokenizer. A container no path can lie in is skipped
// by bracket counting. Keys with an escape or a non-UTF-8 byte are decoded
// as encoding/json decodes them; others are compared as written.
func findJSON(body []byte, paths []Path) ([]Span, *SpanError) {
	if !json.Valid(body) {
		return nil, parseFailed(BodyJSON, -1)
	}
	out := spanList{kind: BodyJSON}
	var stack []jsonFrame
	done := func() {
		if n := len(stack); n > 0 {
			if top := &stack[n-1]; top.array {
				top.index++
			} else {
				top.expectKey = true
			}
		}
	}
	for i := 0; i < len(body); {
		c := body[i]
		switch c {
		case ' ', '\t', '\r', '\n', ',', ':':
			i++
		case '{', '[':
			if len(stack) > 0 && !jsonMayMatch(paths, stack) {
				i = containerEnd(body, i)
				done()
				continue
			}
			stack = append(stack, jsonFrame{array: c == '[', expectKey: c == '{', start: i})
			i++
		case '}', ']':
			stack = stack[:len(stack)-1]
			done()
			i++
		case '"':
			end := stringEnd(body, i)
			if n := len(stack); n > 0 && !stack[n-1].array && stack[n-1].expectKey {
				top := &stack[n-1]
				raw := body[i+1 : end-1]
				top.expectKey, top.decoded, top.keyRaw, top.keyDec = false, false, raw, ""
				if bytes.IndexByte(raw, '\\') >= 0 || !utf8.Valid(raw) {
					var k string
					if json.Unmarshal(body[i:end], &k) != nil {
						return nil, parseFailed(BodyJSON, i) // cannot happen after Valid
					}
					top.decoded, top.keyDec = true, k
				}
			} else {
				if err := addJSON(&out, paths, stack, i+1, end-1, ValueJSONString); err != nil {
					return nil, err
				}
				done()
			}
			i = end
		default: // a number or true, false, null
			end := i
			for end < len(body) && !isJSONDelim(body[end]) {
				end++
			}
			if c == '-' || c >= '0' && c <= '9' {
				if err := addJSON(&out, paths, stack, i, end, ValueJSONNumber); err != nil {
					return nil, err
				}
			}
			done()
			i = end
		}
	}
	return out.spans, nil
}

func isJSONDelim(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', ',', ':', '}', ']':
		return true
	}
	return false
}

// stringEnd returns the offset after the closing quote of the valid JSON
// string that starts at body[i].
func stringEnd(body []byte, i int) int {
	for j := i + 1; j < len(body); j++ {
		switch body[j] {
		case '\\':
			j++ // the escaped byte is never the closing quote
		case '"':
			return j + 1
		}
	}
	return len(body)
}

// containerEnd returns the offset after the bracket that closes the valid
// JSON object or array starting at body[i].
func containerEnd(body []byte, i int) int {
	depth := 0
	for j := i; j < len(body); j++ {
		switch body[j] {
		case '"':
			j = stringEnd(body, j) - 1
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return j + 1
			}
		}
	}
	return len(body)
}

// addJSON records a span for every path that selects the value at the
// place stack describes.
func addJSON(out *spanList, paths []Path, stack []jsonFrame, start, end int, kind ValueKind) *SpanError {
	if len(stack) == 0 {
		return nil // a bare top-level value: every path has a step
	}
	for i := range paths {
		if paths[i].kind == PathJSON && jsonMatch(&paths[i], stack, false) {
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
func jsonMayMatch(paths []Path, stack []jsonFrame) bool {
	for i := range paths {
		if paths[i].kind == PathJSON && jsonMatch(&paths[i], stack, true) {
			return true
		}
	}
	return false
}

// jsonMatch reports whether p's steps spell the place stack describes
// (prefix: or begin with it).
func jsonMatch(p *Path, stack []jsonFrame, prefix bool) bool {
	if len(stack) > len(p.steps) || !prefix && len(stack) != len(p.steps) {
		return false
	}
	for i := range stack {
		fr, st := &stack[i], &p.steps[i]
		switch st.kind {
		case stepKey:
			if fr.array || !fr.keyIs(st.name) {
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
