package cardscan

// Definitions:
//
//   - Input is read as a sequence of tokens. A digit is an ASCII digit, a
//     fullwidth digit (U+FF10–U+FF19, 3 bytes of UTF-8), a JSON escape of
//     either (\u0030–\u0039, \uff10–\uff19, 6 bytes) or a percent-escape
//     of an ASCII digit (%30–%39, 3 bytes). A separator is one of ' ',
//     '\t', '\r', '\n', '.', '-', '/', '_', '+' (a space in a form-encoded
//     body), a no-break space (U+00A0, 2 bytes), a JSON escape of one of
//     them (\u0020, \u002d, …, \u00a0), a percent-escape of an ASCII one
//     (%20, %2D, %2B, …, any case of hex) or the JSON escapes \t, \n, \r
//     and \/. An escaped backslash (\\) is one token, so the "\u0034" in
//     "\\u0034" is text, as a JSON parser reads it. Any other JSON escape
//     or percent-escape (%22, %3A, …) is one token too, so that its hex
//     digits are not read as digits: URL-encoded JSON puts "%22" right
//     before a number. A '%' not followed by two hex digits is one byte.
//     Every other byte is a token of its own.
//   - A run is a maximal sequence of digit groups joined by one to three
//     separators ("4242 4242-4242 4242", "4242 - 4242\u00a04242.4242" are
//     runs of four groups; "4242    4242" is two runs). Wider gaps end a run.
//   - A candidate is any sequence of whole, consecutive groups of one run
//     holding 13 to 19 digits in total. A candidate that passes the Luhn
//     check is a card number. Looking at group-aligned sub-sequences, not
//     only the whole run, catches a card written next to other numbers
//     ("4242 4242 4242 4242 123", "12-4242424242424242") without flagging
//     random sub-strings of long identifiers.
//   - A single group of more than 19 digits is treated as a card number
//     without a Luhn check: a card glued to other digits (number followed
//     by expiry, say) hides in it, and nothing a processor returns in that
//     form is worth the risk.
//   - When adding a group carries a candidate past 19 digits, a candidate
//     may also end inside that group, at any digit: "4242 4242 4242
//     42421226" is a card with its expiry glued to the last group.
//
// Masking replaces every digit of a card number except its last four with a
// mask of the same length: '*' for an ASCII digit, '＊' (U+FF0A) for a
// fullwidth one, \u002a for a JSON-escaped one and %2A for a
// percent-escaped one, so the output has the input's length, stays valid
// UTF-8, valid JSON and valid form encoding where the input was
// ("**** **** **** 4242", "************4242", "%2A%2A…4242"); separators
// stay. Only the last four are kept, not the first six as PCI DSS would
// permit, because the caller never needs the BIN from a response. When two
// card numbers overlap, a digit is masked if either masks it.
//
// The card's own CVC, when the forward used it, is masked ("***") wherever
// it is a whole digit group. A bare JSON number that gets masked makes the
// body invalid JSON; that is preferred to echoing card data.
//
// The card's own number, when the caller passes it (Secrets), is also
// masked wherever its digits stand in order in a run, whatever the
// grouping, with every other digit of the groups it touches: a number
// glued to an expiry or a CVC ("42424242424242421231",
// "4242424242424242737") fails the candidate rules but is still the card.
//
// This file is the text scan, the first stage of Redact; the package
// comment lists the stages that read encoded text.
//
// Known false positives: about one in ten random 13–19 digit identifiers
// passes Luhn and is masked in responses and refused in requests; with '.',
// '/', '_' and '+' as separators, so are some dotted, slashed or summed
// number sequences (IPv4 address lists, long decimals, numeric path
// segments).
//
// XML character references and the markup an XML reader drops from text
// (comments, processing instructions, CDATA delimiters) are read as
// markup.go says. Known gaps of the text scan: named HTML entities other
// than &nbsp;, comments longer than maxMarkup, double
// percent-encoding (%2520, %2534), JSON nested in a JSON string (\\u0020),
// other Unicode spaces and dashes (U+2000–U+200B, U+2010–U+2013, U+202F),
// commas and colons as separators and non-ASCII digits other than
// fullwidth ones are not read; percent-escapes of multi-byte characters (a
// no-break space as %C2%A0, fullwidth digits as %EF%BC%90…) are not read,
// and a card written right after a literal '%' loses its first two digits
// to the escape they seem to form ("100%4242…" reads as "100", 'B',
// "42…"; for the forwarded card's own number the byte-by-byte reading
// closes this); the forwarder also scans a request's form body after
// decoding it.

const (
	minCardDigits = 13
	maxCardDigits = 19
	maxSepRun     = 3 // separators that may join two groups of one run
	maskByte      = '*'
	keepDigits    = 4
)

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isSepByte reports whether c is an ASCII separator.
func isSepByte(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '.', '-', '/', '_', '+':
		return true
	}
	return false
}

// digitStart marks the bytes that can start a digit token: ASCII digits,
// the '%' and the backslash of an escape, the '&' of a character reference
// and the first byte of a fullwidth digit (0xEF). A lookup in a constant keeps the scan for the next digit, where
// a response body spends most of its time, to one load and one compare.
const digitStart = "" +
	"................................" +
	".....\x01\x01.........\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01......" +
	"............................\x01..." +
	"................................" +
	"................................" +
	"................................" +
	"................................" +
	"...............\x01................"

type tokKind uint8

const (
	tokOther tokKind = iota
	tokDigit
	tokSep
)

// tokenAt returns the kind and byte width of the token at s[i] and, for a
// digit, its ASCII value.
func tokenAt(s []byte, i int) (tokKind, int, byte) {
	switch c := s[i]; {
	case isDigit(c):
		return tokDigit, 1, c
	case isSepByte(c):
		return tokSep, 1, 0
	case c == '\\':
		return escapeAt(s, i)
	case c == '%':
		return percentAt(s, i)
	case c == 0xEF:
		if i+2 < len(s) && s[i+1] == 0xBC && s[i+2] >= 0x90 && s[i+2] <= 0x99 {
			return tokDigit, 3, '0' + s[i+2] - 0x90
		}
	case c == 0xC2:
		if i+1 < len(s) && s[i+1] == 0xA0 {
			return tokSep, 2, 0
		}
	case c == '&', c == '<', c == ']':
		return markupAt(s, i) // markup.go
	}
	return tokOther, 1, 0
}

// escapeAt reads the token at a backslash, s[i].
func escapeAt(s []byte, i int) (tokKind, int, byte) {
	if i+1 >= len(s) {
		return tokOther, 1, 0
	}
	switch s[i+1] {
	case 't', 'n', 'r', '/':
		return tokSep, 2, 0
	case '\\':
		return tokOther, 2, 0
	case 'u':
		if i+5 >= len(s) || !isHex(s[i+2]) || !isHex(s[i+3]) || !isHex(s[i+4]) || !isHex(s[i+5]) {
			return tokOther, 1, 0
		}
		r := rune(unhex(s[i+2]))<<12 | rune(unhex(s[i+3]))<<8 | rune(unhex(s[i+4]))<<4 | rune(unhex(s[i+5]))
		switch {
		case r >= '0' && r <= '9':
			return tokDigit, 6, byte(r)
		case r >= 0xFF10 && r <= 0xFF19:
			return tokDigit, 6, byte('0' + r - 0xFF10)
		case r < 0x80 && isSepByte(byte(r)), r == 0xA0:
			return tokSep, 6, 0
		}
		// Any other escape is one token, so its hex digits are not read
		// as digits.
		return tokOther, 6, 0
	}
	return tokOther, 1, 0
}

// percentAt reads the token at a '%', s[i].
func percentAt(s []byte, i int) (tokKind, int, byte) {
	if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
		return tokOther, 1, 0
	}
	switch b := unhex(s[i+1])<<4 | unhex(s[i+2]); {
	case isDigit(b):
		return tokDigit, 3, b
	case isSepByte(b):
		return tokSep, 3, 0
	}
	return tokOther, 3, 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// appendMask appends the mask for the digit token tok.
func appendMask(dst, tok []byte) []byte {
	switch {
	case tok[0] == '&':
		return appendRefMask(dst, tok)
	case tok[0] == '%':
		return append(dst, "%2A"...)
	case len(tok) == 3:
		return append(dst, "\uFF0A"...)
	case len(tok) == 6:
		return append(dst, `\u002a`...)
	}
	return append(dst, maskByte)
}

// Redact appends src to dst with every card number masked, in text and in
// the encodings the package reads (see the package comment), and returns
// the extended buffer. The output has src's length. It allocates only
// when dst must grow, and when a body read as UTF-16 holds a card (a
// scratch copy of the body, zeroed before Redact returns).
func Redact(dst, src []byte) []byte { return redact(dst, src, nil, nil) }

// RedactCVC is Redact that also masks cvc, when it is not empty, wherever
// it is a whole digit group, in text, in base64 runs and in UTF-16 bodies.
// Secrets.Redact supersedes it for the forwarder, which knows the card's
// number too.
func RedactCVC(dst, src, cvc []byte) []byte { return redact(dst, src, nil, cvc) }

// Contains reports whether src holds a card number: whether Redact would
// mask anything in it.
func Contains(src []byte) bool {
	var s scanner
	return s.detect(src)
}

// redact is Redact with the forwarded card's number (pan) and CVC, either
// of which may be empty. Each stage after the text scan writes over the
// text scan's output, and only ever writes a mask where src had something
// else, so a later stage never undoes an earlier one's mask.
func redact(dst, src, pan, cvc []byte) []byte {
	s := scanner{pan: pan, cvc: cvc}
	base := len(dst)
	dst = s.run(dst, src, false)
	out := dst[base:]
	maskNeedles(out, src, pan, cvc)
	s.maskBase64Runs(out, src)
	s.maskUTF16(out, src)
	maskEntityDecls(out, src) // markup.go
	return dst
}

// detect reports whether redact, with s's secrets, would mask anything in
// src. It stops at the first find.
func (s *scanner) detect(src []byte) bool {
	if s.run(nil, src, true); s.found {
		return true
	}
	if len(s.pan) > 0 && hasNeedle(src, s.pan, s.cvc) {
		return true
	}
	return s.maskBase64Runs(nil, src) || s.maskUTF16(nil, src) || maskEntityDecls(nil, src)
}

// ContainsString is Contains for a string.
func ContainsString(s string) bool {
	// The conversion does not escape, so it does not allocate.
	return Contains([]byte(s))
}

// ContainsAnyWindow is ContainsString that also counts every 13–19
// consecutive digits of a run that pass the Luhn check, wherever they start
// and end, not only whole groups. It is for identifiers, which have no
// business holding a long digit run at all: it also finds a card glued to
// other digits in a group of 14–19 ("74242424242424242", a card and a
// digit), which ContainsString passes when the whole group fails Luhn. The
// price is more false positives, so it is not for free text.
func ContainsAnyWindow(s string) bool {
	sc := scanner{anyWindow: true}
	sc.run(nil, []byte(s), true)
	return sc.found
}

type scanner struct {
	pan       []byte // the forwarded card's number (ASCII digits), or nil
	cvc       []byte // the forwarded card's CVC, or nil
	found     bool
	anyWindow bool // detect mode only: see ContainsAnyWindow
}

// run copies src to dst, masking cards. In detect mode it writes nothing and
// stops at the first card.
func (s *scanner) run(dst, src []byte, detect bool) []byte {
	n := len(src)
	i := 0
	for i < n {
		// Copy the stretch up to the next digit token in one append. Only
		// a digit, a backslash or the first byte of a fullwidth digit can
		// start a digit token; other bytes are skipped one at a time, and
		// escapes whole, so that the tokens stay aligned.
		j := i
		for j < n {
			for _, c := range src[j:] {
				if digitStart[c] != '.' {
					break
				}
				j++
			}
			if j == n {
				break
			}
			k, w, _ := tokenAt(src, j)
			if k == tokDigit {
				break
			}
			j += w
		}
		if !detect {
			dst = append(dst, src[i:j]...)
		}
		if j >= n {
			break
		}
		// src[j] starts a run: the token before it is not a digit, and a
		// separator before j belongs to no run because it has no digit on
		// its left in this run (the previous run ended before it).
		end := runEnd(src, j)
		if s.anyWindow && anyWindow(src[j:end]) {
			s.found = true
			return dst
		}
		at := len(dst)
		dst = s.maskRun(dst, src[j:end], detect)
		if detect && s.found {
			return dst
		}
		if len(s.pan) > 0 && end-j >= len(s.pan) {
			var out []byte
			if !detect {
				out = dst[at:]
			}
			if s.maskOwn(out, src[j:end]) && detect {
				s.found = true
				return dst
			}
		}
		i = end
	}
	return dst
}

// skip returns the end of the tokens of kind k starting at s[i], stopping
// after max of them (max < 0: no limit), and how many there were.
func skip(s []byte, i int, k tokKind, max int) (int, int) {
	count := 0
	for i < len(s) && count != max {
		if k == tokDigit && isDigit(s[i]) { // the common case, without a call
			i++
			count++
			continue
		}
		kk, w, _ := tokenAt(s, i)
		if kk != k {
			break
		}
		if k != tokSep || !invisibleAt(s, i) {
			count++ // markup an XML reader drops joins groups for free
		}
		i += w
	}
	return i, count
}

// runEnd returns the end of the run starting at the digit token src[start].
func runEnd(src []byte, start int) int {
	i := start
	for {
		end, _ := skip(src, i, tokDigit, -1)
		next, _ := skip(src, end, tokSep, maxSepRun)
		if next == end || next >= len(src) {
			return end
		}
		if k, _, _ := tokenAt(src, next); k != tokDigit {
			return end
		}
		i = next
	}
}

// maskRun handles one run. For each group start it examines the candidates
// beginning there (at most 19 digits ahead), and records the furthest byte
// that must be masked. Output for bytes before the current group start is
// final once the group start is reached, because every candidate that can
// mask them starts at or before an earlier group start.
func (s *scanner) maskRun(dst, run []byte, detect bool) []byte {
	maskEnd := 0 // digit tokens of run starting before maskEnd are masked
	emitted := 0
	var digits [maxCardDigits]byte
	// starts holds where the last keepDigits digit tokens began, as a ring:
	// after n digits, the keepDigits-th from the end is starts[n%keepDigits].
	var starts [keepDigits]int

	for g := 0; g < len(run); {
		if !detect && g > emitted {
			dst = emitMasked(dst, run[emitted:g], maskEnd-emitted)
			emitted = g
		}

		// The group: its end, its digit count, its last digits' starts.
		ge, glen := g, 0
		for ge < len(run) {
			w := 1
			if !isDigit(run[ge]) {
				if k, kw, _ := tokenAt(run, ge); k != tokDigit {
					break
				} else {
					w = kw
				}
			}
			starts[glen%keepDigits] = ge
			glen++
			ge += w
		}
		if glen > maxCardDigits {
			s.found = true
			maskEnd = max(maskEnd, starts[glen%keepDigits])
		}
		if len(s.cvc) > 0 && glen == len(s.cvc) && digitsEqual(run[g:ge], s.cvc) {
			maskEnd = max(maskEnd, ge)
			if detect {
				s.found = true
			}
		}
		if detect && s.found {
			return dst
		}

		// Candidates starting at group g: extend over whole groups. A group
		// that carries the count past 19 digits may hide a card glued to
		// more digits ("4242 4242 4242 42421226": the last group holds the
		// card's end and an expiry), so inside such a group a candidate
		// may also end at any digit.
		nd := 0
		for p := g; p < len(run) && nd <= maxCardDigits; {
			glued, gluedEnd := false, 0
			for p < len(run) {
				w, d := 1, run[p]
				if !isDigit(d) {
					var k tokKind
					if k, w, d = tokenAt(run, p); k != tokDigit {
						break
					}
				}
				if nd < maxCardDigits {
					digits[nd] = d
				}
				starts[nd%keepDigits] = p
				nd++
				p += w
				if nd >= minCardDigits && nd <= maxCardDigits && Luhn(digits[:nd]) {
					glued, gluedEnd = true, max(gluedEnd, starts[nd%keepDigits])
				}
			}
			if nd > maxCardDigits {
				if glued {
					s.found = true
					if detect {
						return dst
					}
					maskEnd = max(maskEnd, gluedEnd)
				}
				break
			}
			if nd >= minCardDigits && Luhn(digits[:nd]) {
				s.found = true
				if detect {
					return dst
				}
				maskEnd = max(maskEnd, starts[nd%keepDigits])
			}
			p, _ = skip(run, p, tokSep, -1)
		}
		g, _ = skip(run, ge, tokSep, -1)
	}
	if !detect {
		dst = emitMasked(dst, run[emitted:], maskEnd-emitted)
	}
	return dst
}

// digitsEqual reports whether the digit tokens of group spell want.
func digitsEqual(group, want []byte) bool {
	n := 0
	for i := 0; i < len(group); {
		_, w, d := tokenAt(group, i)
		if n >= len(want) || d != want[n] {
			return false
		}
		n++
		i += w
	}
	return n == len(want)
}

// emitMasked appends b with the digit tokens that start in its first n
// bytes masked.
func emitMasked(dst, b []byte, n int) []byte {
	if n <= 0 {
		return append(dst, b...)
	}
	n = min(n, len(b))
	i := 0
	for i < n {
		if isDigit(b[i]) {
			dst = append(dst, maskByte)
			i++
			continue
		}
		k, w, _ := tokenAt(b, i)
		if k == tokDigit {
			dst = appendMask(dst, b[i:i+w])
		} else {
			dst = append(dst, b[i:i+w]...)
		}
		i += w
	}
	return append(dst, b[i:]...)
}

// anyWindow reports whether some 13–19 consecutive digit tokens of run
// pass the Luhn check. It keeps the last 19 digits in a ring and checks
// the windows ending at each digit; it is quadratic in nothing but the
// window size, and it is meant for short identifiers.
func anyWindow(run []byte) bool {
	var ring, win [maxCardDigits]byte
	n := 0
	for i := 0; i < len(run); {
		k, w, d := tokenAt(run, i)
		i += w
		if k != tokDigit {
			continue
		}
		ring[n%maxCardDigits] = d
		n++
		for l := minCardDigits; l <= min(n, maxCardDigits); l++ {
			for j := range l {
				win[j] = ring[(n-l+j)%maxCardDigits]
			}
			if Luhn(win[:l]) {
				return true
			}
		}
	}
	return false
}

// IsCardNumber reports whether s is nothing but digit and separator
// tokens, with 13–19 digits that pass the Luhn check: a field that should
// hold something else (a token) and holds a card instead. It compares the
// whole of s, so a long random value never trips the rule for groups of
// more than 19 digits.
func IsCardNumber(s string) bool {
	b := []byte(s) // does not escape, so does not allocate
	var d [maxCardDigits]byte
	n := 0
	for i := 0; i < len(b); {
		k, w, c := tokenAt(b, i)
		switch k {
		case tokDigit:
			if n == maxCardDigits {
				return false
			}
			d[n] = c
			n++
		case tokOther:
			return false
		}
		i += w
	}
	return n >= minCardDigits && Luhn(d[:n])
}

// Luhn reports whether the ASCII digits d pass the Luhn check. Any other
// byte in d makes the result meaningless; callers check digits first.
func Luhn(d []byte) bool {
	sum := 0
	double := false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}
