package api

import (
	"net/http"
	"strings"

	"github.com/cardgate/cardgate/forwarder"
)

// decodeForwardFast decodes the common shape of a /v1/forward body into
// req without reflection (issue 18: encoding/json's reflective decode and
// the duplicate-key pass cost more than the rest of the request's
// validation). It handles a subset of JSON on purpose and declines
// (returns false, req untouched) anything outside it, which decodeJSON's
// generic path then decodes, or refuses with its usual typed errors:
//
//   - one object, JSON whitespace around it, nothing after it;
//   - only the request's own keys, spelt exactly (encoding/json would also
//     match other cases), each at most once;
//   - strings without \u escapes or control characters (the short escapes
//     \" \\ \/ \b \f \n \r \t are read);
//   - "dry_run" as true or false; "headers" as a non-empty object of
//     non-empty arrays of strings; "cards" as a non-empty object of
//     strings; no null anywhere, no number, no duplicate name in
//     "headers" or "cards", and at most maxFastNames names in each.
//
// body must be valid UTF-8 (decodeJSON checks it first), and req the
// zero Request: on success every field is replaced, those the body does
// not name and the json:"-" ones included, where encoding/json would
// leave them as they were. Whatever it accepts, decodeJSON's generic path
// accepts too and decodes to the same Request: FuzzDecodeForwardFast
// checks that against encoding/json on every input the fuzzer finds.
func decodeForwardFast(body []byte, req *forwarder.Request) bool {
	s := fastScanner{b: body}
	defer func() { clear(s.buf) }()
	var out forwarder.Request
	if !s.object(func(key []byte) bool { return s.requestField(key, &out) }) {
		return false
	}
	s.space()
	if s.i != len(s.b) {
		return false
	}
	*req = out
	return true
}

// fastScanner reads JSON from b at i. Every method returns false when the
// input leaves the subset decodeForwardFast handles.
type fastScanner struct {
	b    []byte
	i    int
	seen uint16   // request keys already read
	buf  []byte   // unescaped string under construction
	keys []string // names read in the current headers or cards object
}

// Request keys, as bits of fastScanner.seen.
const (
	keyDestination uint16 = 1 << iota
	keyURL
	keyMethod
	keyCard
	keyHeaders
	keyBody
	keyDryRun
	keyCards
)

// requestField reads the value of the top-level key into out.
func (s *fastScanner) requestField(key []byte, out *forwarder.Request) bool {
	var bit uint16
	var dst *string
	switch string(key) { // no allocation: the compiler compares in place
	case "destination":
		bit, dst = keyDestination, &out.Destination
	case "url":
		bit, dst = keyURL, &out.URL
	case "method":
		bit, dst = keyMethod, &out.Method
	case "card":
		bit, dst = keyCard, &out.Card
	case "body":
		bit, dst = keyBody, &out.Body
	case "headers":
		bit = keyHeaders
	case "dry_run":
		bit = keyDryRun
	case "cards":
		bit = keyCards
	default:
		return false
	}
	if s.seen&bit != 0 {
		return false
	}
	s.seen |= bit
	switch {
	case dst != nil:
		v, ok := s.str()
		*dst = v
		return ok
	case bit == keyDryRun:
		return s.boolean(&out.DryRun)
	case bit == keyHeaders:
		out.Headers = http.Header{}
		return s.names(func(n string) bool {
			vals, ok := s.strings()
			out.Headers[n] = vals
			return ok
		}) && len(out.Headers) > 0
	default: // keyCards
		out.Cards = map[string]string{}
		return s.names(func(n string) bool {
			v, ok := s.str()
			out.Cards[n] = v
			return ok
		}) && len(out.Cards) > 0
	}
}

// names reads an object whose names are headers or cards: value reads
// the value of each name, which newName admits first.
func (s *fastScanner) names(value func(n string) bool) bool {
	return s.object(func(name []byte) bool {
		n := string(name)
		return s.newName(n) && value(n)
	})
}

// maxFastNames bounds the names in a "headers" or "cards" object that
// this path reads. newName compares each name with every earlier one, so
// without a bound a hostile caller's body of thousands of short names
// costs quadratic time: 26,000 distinct header names in a 256 KiB body
// took 1.5 s here against encoding/json's 0.09 s. A request with more
// names is left to the generic path, whose duplicateKey switches to a
// map of folded keys past a few.
const maxFastNames = 32

// newName reports whether n may be read as a new name in the object being
// read, and records it: false if the object already had n, or already
// had maxFastNames names. Names are compared without case, as
// duplicateKey compares them (a header named twice in two cases is one
// header sent twice). Up to maxFastNames, a slice beats a map.
func (s *fastScanner) newName(n string) bool {
	if len(s.keys) >= maxFastNames {
		return false
	}
	for _, k := range s.keys {
		if strings.EqualFold(k, n) {
			return false
		}
	}
	s.keys = append(s.keys, n)
	return true
}

func (s *fastScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// expect consumes c after optional whitespace.
func (s *fastScanner) expect(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// object reads an object, calling member with each name, positioned at
// the name's value. The name is valid only during the call. An empty
// object is declined: encoding/json keeps an empty map, and this path
// need not decide what that means.
func (s *fastScanner) object(member func(name []byte) bool) bool {
	if !s.expect('{') {
		return false
	}
	s.keys = s.keys[:0]
	for {
		s.space()
		name, ok := s.rawStr()
		if !ok || !s.expect(':') {
			return false
		}
		s.space()
		if !member(name) {
			return false
		}
		s.space()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// strings reads a non-empty array of strings.
func (s *fastScanner) strings() ([]string, bool) {
	if !s.expect('[') {
		return nil, false
	}
	var out []string
	for {
		s.space()
		v, ok := s.str()
		if !ok {
			return nil, false
		}
		out = append(out, v)
		s.space()
		if s.i >= len(s.b) {
			return nil, false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return out, true
		default:
			return nil, false
		}
	}
}

func (s *fastScanner) boolean(dst *bool) bool {
	rest := s.b[s.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		*dst = true
		s.i += 4
	case len(rest) >= 5 && string(rest[:5]) == "false":
		*dst = false
		s.i += 5
	default:
		return false
	}
	// "truex" is not JSON: the next byte must end the value.
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r', ',', '}':
		default:
			return false
		}
	}
	return true
}

// str reads a string value.
func (s *fastScanner) str() (string, bool) {
	raw, ok := s.rawStr()
	return string(raw), ok
}

// rawStr reads a string at i and returns its unescaped bytes, which stay
// valid until the next call. A string without escapes is returned in
// place; one with short escapes is unescaped into buf, which is zeroed
// before it is reused or replaced, and never grown by append, which would
// leave a copy behind in the old array (a body template may hold a
// cardholder's details).
func (s *fastScanner) rawStr() ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		c := s.b[j]
		switch {
		case c == '"':
			s.i = j + 1
			return s.b[start:j], true
		case c == '\\':
			return s.escaped(start, j)
		case c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// escaped finishes a string whose first escape is at j.
func (s *fastScanner) escaped(start, j int) ([]byte, bool) {
	// Unescaping only shortens a string, so a buffer of its raw length
	// is never outgrown.
	end := j
	for ; end < len(s.b) && s.b[end] != '"'; end++ {
		if s.b[end] == '\\' {
			end++
		}
	}
	if end >= len(s.b) {
		return nil, false
	}
	clear(s.buf)
	if cap(s.buf) < end-start {
		s.buf = make([]byte, 0, end-start)
	}
	buf := append(s.buf[:0], s.b[start:j]...)
	defer func() { s.buf = buf }()
	for ; j < len(s.b); j++ {
		c := s.b[j]
		switch {
		case c == '"':
			s.i = j + 1
			return buf, true
		case c < 0x20:
			return nil, false
		case c != '\\':
			buf = append(buf, c)
			continue
		}
		j++
		if j >= len(s.b) {
			return nil, false
		}
		switch s.b[j] {
		case '"', '\\', '/':
			buf = append(buf, s.b[j])
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		default: // \u, and anything that is not JSON
			return nil, false
		}
	}
	return nil, false
}
