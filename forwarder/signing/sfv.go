package signing

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// This file holds the subset of Structured Field Values (RFC 8941, now RFC
// 9651) that Signature-Input, Signature and Content-Digest need: a
// Dictionary whose members are Items or Inner Lists, with Parameters, and
// Items that are Integers, Strings, Tokens, Byte Sequences or Booleans.
// Decimals, Dates and Display Strings are refused: none of these fields
// uses them.

type sfKind byte

const (
	sfInteger sfKind = iota + 1
	sfString
	sfToken
	sfBytes
	sfBool
)

type sfItem struct {
	kind    sfKind
	num     int64
	str     string // String and Token
	bytes   []byte
	boolean bool
}

type sfParam struct {
	key string
	val sfItem
}

type sfInner struct {
	item   sfItem
	params []sfParam
}

type sfMember struct {
	key    string
	inner  bool
	item   sfItem
	list   []sfInner
	params []sfParam
}

var errSF = errors.New("signing: malformed structured field")

type sfParser struct {
	s string
	i int
}

// parseDictionary parses a Dictionary (RFC 8941 §4.2.2). A key given
// twice keeps its last value, as the RFC says.
func parseDictionary(s string) ([]sfMember, error) {
	p := &sfParser{s: s}
	p.skipSP()
	var out []sfMember
	for p.i < len(p.s) {
		key, err := p.key()
		if err != nil {
			return nil, err
		}
		m := sfMember{key: key}
		if p.peek() == '=' {
			p.i++
			if p.peek() == '(' {
				m.inner = true
				if m.list, err = p.innerList(); err != nil {
					return nil, err
				}
			} else if m.item, err = p.bareItem(); err != nil {
				return nil, err
			}
		} else {
			m.item = sfItem{kind: sfBool, boolean: true}
		}
		if m.params, err = p.params(); err != nil {
			return nil, err
		}
		replaced := false
		for j := range out {
			if out[j].key == key {
				out[j], replaced = m, true
			}
		}
		if !replaced {
			out = append(out, m)
		}
		p.skipOWS()
		if p.i >= len(p.s) {
			return out, nil
		}
		if p.s[p.i] != ',' {
			return nil, errSF
		}
		p.i++
		p.skipOWS()
		if p.i >= len(p.s) {
			return nil, errSF // trailing comma
		}
	}
	return out, nil
}

func (p *sfParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *sfParser) skipSP() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *sfParser) skipOWS() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *sfParser) key() (string, error) {
	start := p.i
	if c := p.peek(); !(c >= 'a' && c <= 'z' || c == '*') {
		return "", errSF
	}
	for p.i < len(p.s) {
		c := p.s[p.i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '*') {
			break
		}
		p.i++
	}
	return p.s[start:p.i], nil
}

func (p *sfParser) innerList() ([]sfInner, error) {
	p.i++ // '('
	var out []sfInner
	for p.i < len(p.s) {
		p.skipSP()
		if p.peek() == ')' {
			p.i++
			return out, nil
		}
		it, err := p.bareItem()
		if err != nil {
			return nil, err
		}
		params, err := p.params()
		if err != nil {
			return nil, err
		}
		out = append(out, sfInner{item: it, params: params})
		if c := p.peek(); c != ' ' && c != ')' {
			return nil, errSF
		}
	}
	return nil, errSF
}

func (p *sfParser) params() ([]sfParam, error) {
	var out []sfParam
	for p.peek() == ';' {
		p.i++
		p.skipSP()
		key, err := p.key()
		if err != nil {
			return nil, err
		}
		val := sfItem{kind: sfBool, boolean: true}
		if p.peek() == '=' {
			p.i++
			if val, err = p.bareItem(); err != nil {
				return nil, err
			}
		}
		replaced := false
		for j := range out {
			if out[j].key == key {
				out[j].val, replaced = val, true
			}
		}
		if !replaced {
			out = append(out, sfParam{key: key, val: val})
		}
	}
	return out, nil
}

func (p *sfParser) bareItem() (sfItem, error) {
	c := p.peek()
	switch {
	case c == '-' || c >= '0' && c <= '9':
		start := p.i
		if c == '-' {
			p.i++
		}
		digits := p.i
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		if p.i == digits || p.i-digits > 15 || p.peek() == '.' {
			return sfItem{}, errSF // no digits, too long, or a Decimal
		}
		n, err := strconv.ParseInt(p.s[start:p.i], 10, 64)
		if err != nil {
			return sfItem{}, errSF
		}
		return sfItem{kind: sfInteger, num: n}, nil
	case c == '"':
		p.i++
		var b strings.Builder
		for p.i < len(p.s) {
			c := p.s[p.i]
			p.i++
			switch {
			case c == '\\':
				if p.i >= len(p.s) || (p.s[p.i] != '"' && p.s[p.i] != '\\') {
					return sfItem{}, errSF
				}
				b.WriteByte(p.s[p.i])
				p.i++
			case c == '"':
				return sfItem{kind: sfString, str: b.String()}, nil
			case c < 0x20 || c > 0x7e:
				return sfItem{}, errSF
			default:
				b.WriteByte(c)
			}
		}
		return sfItem{}, errSF
	case c == '*' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		start := p.i
		for p.i < len(p.s) {
			c := p.s[p.i]
			if !fieldNameOK(string(c)) && c != ':' && c != '/' {
				break // not tchar, ":" or "/" (RFC 8941 §3.3.4)
			}
			p.i++
		}
		return sfItem{kind: sfToken, str: p.s[start:p.i]}, nil
	case c == ':':
		end := strings.IndexByte(p.s[p.i+1:], ':')
		if end < 0 {
			return sfItem{}, errSF
		}
		b, err := base64.StdEncoding.DecodeString(p.s[p.i+1 : p.i+1+end])
		if err != nil {
			return sfItem{}, errSF
		}
		p.i += end + 2
		return sfItem{kind: sfBytes, bytes: b}, nil
	case c == '?':
		if p.i+1 < len(p.s) && (p.s[p.i+1] == '0' || p.s[p.i+1] == '1') {
			p.i += 2
			return sfItem{kind: sfBool, boolean: p.s[p.i-1] == '1'}, nil
		}
	}
	return sfItem{}, errSF
}

// sfQuote serializes a String (RFC 8941 §4.1.6); s must be printable
// ASCII, which Validate ensures for everything signed.
func sfQuote(s string) string {
	var b strings.Builder
	writeSFString(&b, s)
	return b.String()
}

func writeSFString(b *strings.Builder, s string) {
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}

func (it sfItem) serialize(b *strings.Builder) {
	switch it.kind {
	case sfInteger:
		b.WriteString(strconv.FormatInt(it.num, 10))
	case sfString:
		writeSFString(b, it.str)
	case sfToken:
		b.WriteString(it.str)
	case sfBytes:
		b.WriteByte(':')
		b.WriteString(base64.StdEncoding.EncodeToString(it.bytes))
		b.WriteByte(':')
	case sfBool:
		if it.boolean {
			b.WriteString("?1")
		} else {
			b.WriteString("?0")
		}
	}
}

func serializeParams(b *strings.Builder, params []sfParam) {
	for _, p := range params {
		b.WriteByte(';')
		b.WriteString(p.key)
		if p.val.kind == sfBool && p.val.boolean {
			continue
		}
		b.WriteByte('=')
		p.val.serialize(b)
	}
}

// serializeInnerList serializes an Inner List with its parameters (RFC
// 8941 §4.1.1.1), the form of @signature-params.
func serializeInnerList(list []sfInner, params []sfParam) string {
	var b strings.Builder
	b.Grow(24*len(list) + 48*len(params))
	b.WriteByte('(')
	for i, it := range list {
		if i > 0 {
			b.WriteByte(' ')
		}
		it.item.serialize(&b)
		serializeParams(&b, it.params)
	}
	b.WriteByte(')')
	serializeParams(&b, params)
	return b.String()
}
