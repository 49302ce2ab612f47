package credentials

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonString decodes a JSON string literal into bytes without making a
// Go string of it, so the result can be cleared. raw must be valid JSON
// (encoding/json checked it); ok is false when it is not a string.
func jsonString(raw []byte) (out []byte, ok bool) {
	raw = bytes.Trim(raw, " \t\r\n")
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, false
	}
	s := raw[1 : len(raw)-1]
	out = make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(s) {
			clear(out)
			return nil, false
		}
		switch s[i+1] {
		case '"', '\\', '/':
			out = append(out, s[i+1])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, n := hex4(s[i+2:])
			if n < 0 {
				clear(out)
				return nil, false
			}
			i += 6
			if utf16.IsSurrogate(r) {
				// A high surrogate pairs with a following \uDC00-\uDFFF;
				// anything else decodes to U+FFFD, as encoding/json does.
				r2 := rune(-1)
				if len(s) >= i+6 && s[i] == '\\' && s[i+1] == 'u' {
					r2, _ = hex4(s[i+2:])
				}
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					i += 6
					r = d
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
			continue
		default:
			clear(out)
			return nil, false
		}
		i += 2
	}
	return out, true
}

// hex4 decodes four hex digits; n is -1 when there are not four.
func hex4(b []byte) (rune, int) {
	if len(b) < 4 {
		return 0, -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, -1
		}
		r = r<<4 | rune(c)
	}
	return r, 4
}
