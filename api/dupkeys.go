package api

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode"
)

// duplicateKey reports whether some object in body, at any depth, holds a
// key twice, and the path of the second one ("headers.Authorization",
// "items[2].name"). body must be one valid JSON value: decodeJSON runs it
// after encoding/json accepted the body, so this scanner only finds where
// strings, keys and containers are; it does not validate. On bytes that
// are not valid JSON it reports no duplicate.
//
// Keys are compared as encoding/json matches them to struct fields: after
// unescaping, and without case (its fold is bytes.EqualFold's), since
// {"destination":"a","Destination":"b"} sets one field twice just as a
// repeated key does. In headers, names that differ in case are one HTTP
// header, so the same rule holds there too.
//
// A key that could hold a card number, or anything not shaped like a
// field or header name, is shown as "?": keys are caller input.
//
// It is a byte scanner rather than a loop over json.Decoder.Token, which
// allocates for every token: see BenchmarkDecode. The test compares the
// two on random documents (FuzzDuplicateKey).
func duplicateKey(body []byte) (path string, found bool) {
	var stack []frame
	for i := 0; i < len(body); {
		var top *frame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		switch c := body[i]; c {
		case ' ', '\t', '\r', '\n', ':':
			i++
		case ',':
			if top != nil && top.object {
				top.wantKey = true
			}
			i++
		case '{', '[':
			top.element()
			stack = append(stack, frame{object: c == '{', wantKey: c == '{', index: -1})
			i++
		case '}', ']':
			if top == nil {
				return "", false
			}
			stack = stack[:len(stack)-1]
			i++
		case '"':
			end := stringEnd(body, i)
			if end < 0 {
				return "", false
			}
			if top != nil && top.object && top.wantKey {
				k := body[i+1 : end]
				if bytes.IndexByte(k, '\\') >= 0 {
					var s string
					if json.Unmarshal(body[i:end+1], &s) != nil {
						return "", false
					}
					k = []byte(s)
				}
				if top.seen(k) {
					return render(stack, k), true
				}
				top.key, top.wantKey = k, false
			} else {
				top.element()
			}
			i = end + 1
		default: // a number, true, false or null
			top.element()
			for i < len(body) && !endsScalar(body[i]) {
				i++
			}
		}
	}
	return "", false
}

func endsScalar(c byte) bool {
	switch c {
	case ',', ']', '}', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}

// stringEnd returns the index of the quote that closes the string opening
// at body[start], or -1.
func stringEnd(body []byte, start int) int {
	for i := start + 1; i < len(body); i++ {
		switch body[i] {
		case '\\':
			i++ // the escaped byte; \uXXXX's hex digits are plain bytes
		case '"':
			return i
		}
	}
	return -1
}

// frame is one open object or array.
type frame struct {
	object  bool
	wantKey bool   // object: the next string is a key
	key     []byte // object: the last key, for paths
	index   int    // array: the index of the current element
	few     [][]byte
	keys    map[string]struct{} // folded keys, once there are more than fewKeys
}

// fewKeys is how many keys an object holds before a map is made; most
// request objects are smaller, and comparing a few keys costs less than
// folding them.
const fewKeys = 16

// element counts a value starting in f (nil: the top level).
func (f *frame) element() {
	if f != nil && !f.object {
		f.index++
	}
}

// seen records k and reports whether a key equal to it without case was
// already there.
func (f *frame) seen(k []byte) bool {
	if f.keys == nil {
		for _, o := range f.few {
			if bytes.EqualFold(o, k) {
				return true
			}
		}
		if len(f.few) < fewKeys {
			f.few = append(f.few, k)
			return false
		}
		f.keys = make(map[string]struct{}, 4*fewKeys)
		for _, o := range f.few {
			f.keys[foldKey(o)] = struct{}{}
		}
	}
	fk := foldKey(k)
	if _, ok := f.keys[fk]; ok {
		return true
	}
	f.keys[fk] = struct{}{}
	return false
}

// foldKey maps k to one representative of its case-folding class: two keys
// get the same foldKey exactly when bytes.EqualFold says they are equal,
// since each rune becomes the smallest rune of its simple-folding orbit.
func foldKey(k []byte) string {
	var b strings.Builder
	b.Grow(len(k))
	for _, r := range string(k) {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		b.WriteRune(least)
	}
	return b.String()
}

// render writes the path to key k in the innermost object of stack.
func render(stack []frame, k []byte) string {
	var b strings.Builder
	for i, f := range stack {
		if !f.object {
			b.WriteString("[" + strconv.Itoa(f.index) + "]")
			continue
		}
		key := f.key
		if i == len(stack)-1 {
			key = k
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		if safeKey(string(key)) {
			b.Write(key)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}
