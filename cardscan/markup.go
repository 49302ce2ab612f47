package cardscan

import "bytes"

// Markup tokens: what an XML (or HTML) reader makes of a processor's
// answer that a byte reader does not. Issue 12 sends XML and SOAP and
// promises that answers are scanned as XML, so the text scan reads:
//
//   - a numeric character reference (&#52; &#x34; &#X0034;) as the
//     character it stands for: a digit token when it is an ASCII or
//     fullwidth digit, a separator when it is a separator, one other
//     token otherwise (so its own digits are not read as digits);
//   - &nbsp; as a separator (HTML);
//   - a comment (<!-- … -->, up to maxMarkup bytes), a processing
//     instruction (<? … ?>, the same) and the CDATA delimiters
//     (<![CDATA[ and ]]>) as invisible separators: an XML reader drops
//     them from the text, so "4242<!-- -->4242…" and
//     "4242]]><![CDATA[4242…" are one number to the caller. Invisible
//     separators do not count towards the three that may join two groups.
//
// A masked reference keeps its form and width ("&#52;" becomes "&#42;",
// "&#x34;" "&#x2a;"), so the output stays well-formed XML of the input's
// length.

// maxMarkup bounds how far a comment or a processing instruction is
// looked for: a longer one is text, and a card split by one is a known
// gap (the forwarded card's own number is still found by the
// byte-by-byte reading only when the markup is ASCII separators).
const maxMarkup = 256

// markupAt reads the token at s[i], which is '&', '<' or ']'.
func markupAt(s []byte, i int) (tokKind, int, byte) {
	switch s[i] {
	case '&':
		return charRefAt(s, i)
	case '<':
		rest := s[i:]
		switch {
		case hasPrefix(rest, "<![CDATA["):
			return tokSep, len("<![CDATA["), 0
		case hasPrefix(rest, "<!--"):
			if w := markupEnd(rest, 4, "-->"); w > 0 {
				return tokSep, w, 0
			}
		case hasPrefix(rest, "<?"):
			if w := markupEnd(rest, 2, "?>"); w > 0 {
				return tokSep, w, 0
			}
		}
	case ']':
		if hasPrefix(s[i:], "]]>") {
			return tokSep, 3, 0
		}
	}
	return tokOther, 1, 0
}

// invisibleAt reports whether the separator token at s[i] is markup an
// XML reader drops from the text.
func invisibleAt(s []byte, i int) bool { return s[i] == '<' || s[i] == ']' }

func hasPrefix(b []byte, p string) bool { return len(b) >= len(p) && string(b[:len(p)]) == p }

// markupEnd returns the width of the markup in b that starts with from
// bytes of opener and ends with closer, within maxMarkup bytes; 0 if it
// does not end there.
func markupEnd(b []byte, from int, closer string) int {
	lim := min(len(b), maxMarkup)
	for j := from; j+len(closer) <= lim; j++ {
		if string(b[j:j+len(closer)]) == closer {
			return j + len(closer)
		}
	}
	return 0
}

// maxRefDigits bounds the digits of a character reference: leading zeros
// are legal, and a longer run is read as text.
const maxRefDigits = 8

// charRefAt reads a character reference at s[i] == '&'.
func charRefAt(s []byte, i int) (tokKind, int, byte) {
	if hasPrefix(s[i:], "&nbsp;") {
		return tokSep, len("&nbsp;"), 0
	}
	if i+1 >= len(s) || s[i+1] != '#' {
		return tokOther, 1, 0
	}
	j, hex := i+2, false
	if j < len(s) && (s[j] == 'x' || s[j] == 'X') {
		j, hex = j+1, true
	}
	start, v := j, rune(0)
digits:
	for j < len(s) && j-start < maxRefDigits {
		switch c := s[j]; {
		case isDigit(c):
			v = v*base(hex) + rune(c-'0')
		case hex && isHex(c):
			v = v*16 + rune(unhex(c))
		default:
			break digits
		}
		j++
	}
	if j == start || j >= len(s) || s[j] != ';' {
		return tokOther, 1, 0
	}
	w := j + 1 - i
	switch {
	case v >= '0' && v <= '9':
		return tokDigit, w, byte(v)
	case v >= 0xFF10 && v <= 0xFF19:
		return tokDigit, w, byte('0' + v - 0xFF10)
	case v < 0x80 && isSepByte(byte(v)), v == 0xA0:
		return tokSep, w, 0
	}
	return tokOther, w, 0
}

func base(hex bool) rune {
	if hex {
		return 16
	}
	return 10
}

// appendRefMask appends the mask of the digit reference tok ("&#52;"):
// the reference to '*' (42, 0x2a) in the same base and width.
func appendRefMask(dst, tok []byte) []byte {
	digits := len(tok) - 3 // "&#" and ";"
	val := "42"
	pre := 2
	if tok[2] == 'x' || tok[2] == 'X' {
		digits--
		val = "2a"
		pre = 3
	}
	dst = append(dst, tok[:pre]...)
	for k := digits; k > len(val); k-- {
		dst = append(dst, '0')
	}
	dst = append(dst, val...)
	return append(dst, ';')
}

// entityDecl starts an entity declaration in an internal subset.
var entityDecl = []byte("<!ENTITY")

// maskEntityDecls masks every digit token of every entity declaration in
// src (into out, which is src's masked copy; with out nil it only reports
// whether there is any). An XML reader joins entity values wherever the
// document references them ("&a;&b;"), so a card split across two
// declarations would reach the caller whole; no digit of a declaration is
// shown. The declaration ends at the first '>' outside quotes.
func maskEntityDecls(out, src []byte) bool {
	found := false
	for i := 0; i < len(src); {
		k := bytes.Index(src[i:], entityDecl)
		if k < 0 {
			break
		}
		j := i + k + len(entityDecl)
		var quote byte
		for ; j < len(src); j++ {
			if c := src[j]; quote != 0 {
				if c == quote {
					quote = 0
				}
			} else if c == '"' || c == '\'' {
				quote = c
			} else if c == '>' {
				break
			}
		}
		for p := i + k; p < j; {
			kind, w, _ := tokenAt(src, p)
			if kind == tokDigit {
				if out == nil {
					return true
				}
				found = true
				maskTokenAt(out, src, p, w)
			}
			p += w
		}
		i = j
	}
	return found
}
