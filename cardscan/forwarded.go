package cardscan

// An exact-match masker for the values a forward sent, for the spans that
// RedactRules keeps. It reads the digit and separator tokens that the
// scanner reads (ASCII, fullwidth, JSON and percent escapes), so that a
// kept identifier cannot carry the sent card in a form the rest of the
// answer would have masked.
//
// TODO(lead): the scan.go rewrite adds masking of the forwarded card in
// every encoding (base64, UTF-16, hex, …); once it lands, use its
// function for kept spans too and drop this file.

// Limits and masks as the scanner's (scan.go); repeated here so that this
// file does not depend on the scanner's internals while they change.
const (
	fwdMaxDigits = 19 // longest card number
	fwdKeep      = 4  // digits left unmasked at the end of a number
	fwdMaxSeps   = 3  // separators that may join two digits
)

func fwdDigit(c byte) bool { return c >= '0' && c <= '9' }

func fwdSep(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '.', '-', '/', '_', '+':
		return true
	}
	return false
}

func fwdHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func fwdUnhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// charAt returns the width of the token at b[i] and, for a digit or a
// separator, the ASCII byte it stands for ('0'–'9', or ' ' for every
// separator); 0 for any other token.
func charAt(b []byte, i int) (int, byte) {
	c := b[i]
	switch {
	case fwdDigit(c):
		return 1, c
	case fwdSep(c):
		return 1, ' '
	case c == 0xEF && i+2 < len(b) && b[i+1] == 0xBC && b[i+2] >= 0x90 && b[i+2] <= 0x99:
		return 3, '0' + b[i+2] - 0x90
	case c == 0xC2 && i+1 < len(b) && b[i+1] == 0xA0:
		return 2, ' '
	case c == '&' || c == '<' || c == ']':
		switch k, w, d := markupAt(b, i); k { // markup.go
		case tokDigit:
			return w, d
		case tokSep:
			return w, ' '
		default:
			return w, 0
		}
	case c == '%' && i+2 < len(b) && fwdHex(b[i+1]) && fwdHex(b[i+2]):
		switch v := fwdUnhex(b[i+1])<<4 | fwdUnhex(b[i+2]); {
		case fwdDigit(v):
			return 3, v
		case fwdSep(v):
			return 3, ' '
		}
		return 3, 0
	case c == '\\' && i+1 < len(b):
		switch b[i+1] {
		case 't', 'n', 'r', '/':
			return 2, ' '
		case '\\':
			return 2, 0
		case 'u':
			if i+5 >= len(b) || !fwdHex(b[i+2]) || !fwdHex(b[i+3]) || !fwdHex(b[i+4]) || !fwdHex(b[i+5]) {
				return 1, 0
			}
			r := rune(fwdUnhex(b[i+2]))<<12 | rune(fwdUnhex(b[i+3]))<<8 | rune(fwdUnhex(b[i+4]))<<4 | rune(fwdUnhex(b[i+5]))
			switch {
			case r >= '0' && r <= '9':
				return 6, byte(r)
			case r >= 0xFF10 && r <= 0xFF19:
				return 6, byte('0' + r - 0xFF10)
			case r < 0x80 && fwdSep(byte(r)), r == 0xA0:
				return 6, ' '
			}
			return 6, 0
		}
	}
	return 1, 0
}

// maskDigitInPlace overwrites the digit token of width w at b[i] with a mask of
// the same width.
func maskDigitInPlace(b []byte, i, w int) {
	switch {
	case b[i] == '&':
		appendRefMask(b[i:i], b[i:i+w])
	case w == 1:
		b[i] = '*'
	case w == 3 && b[i] == '%':
		copy(b[i:], "%2A")
	case w == 3:
		copy(b[i:], "\uFF0A")
	case w == 6:
		copy(b[i:], `\u002a`)
	}
}

// maskForwarded masks, in place, each of numbers wherever its digits
// appear in order with at most three separators between two of them (all
// but the last four digits), and each of cvcs wherever it is a whole
// digit group.
func maskForwarded(b []byte, numbers, cvcs [][]byte) {
	var at [fwdMaxDigits]int // where the matched digits start
	var wd [fwdMaxDigits]int
	for _, num := range numbers {
		if len(num) == 0 || len(num) > fwdMaxDigits {
			continue
		}
		for i := 0; i < len(b); {
			w, c := charAt(b, i)
			if c != num[0] {
				i += w
				continue
			}
			// Try a match from here.
			p, k := i, 0
			for {
				pw, pc := charAt(b, p)
				if pc != num[k] {
					break
				}
				at[k], wd[k] = p, pw
				k++
				p += pw
				if k == len(num) {
					break
				}
				for seps := 0; seps < fwdMaxSeps && p < len(b); seps++ {
					sw, sc := charAt(b, p)
					if sc != ' ' {
						break
					}
					if invisibleAt(b, p) {
						seps-- // markup an XML reader drops joins for free
					}
					p += sw
				}
				if p >= len(b) {
					break
				}
			}
			if k == len(num) {
				for j := 0; j < k-fwdKeep; j++ {
					maskDigitInPlace(b, at[j], wd[j])
				}
			}
			i += w
		}
	}
	if len(cvcs) == 0 {
		return
	}
	// Whole digit groups: maximal runs of digit tokens.
	for i := 0; i < len(b); {
		w, c := charAt(b, i)
		if !fwdDigit(c) {
			i += w
			continue
		}
		start, n := i, 0
		for i < len(b) {
			w, c := charAt(b, i)
			if !fwdDigit(c) {
				break
			}
			i += w
			n++
		}
		for _, cvc := range cvcs {
			if len(cvc) == n && groupEquals(b[start:i], cvc) {
				for j := start; j < i; {
					w, _ := charAt(b, j)
					maskDigitInPlace(b, j, w)
					j += w
				}
				break
			}
		}
	}
}

// groupEquals reports whether the digit tokens of g spell want.
func groupEquals(g, want []byte) bool {
	k := 0
	for i := 0; i < len(g); {
		w, c := charAt(g, i)
		if k >= len(want) || c != want[k] {
			return false
		}
		k++
		i += w
	}
	return k == len(want)
}

// appendMaskedDigits appends seg with every digit token masked.
func appendMaskedDigits(dst, seg []byte) []byte {
	start := len(dst)
	dst = append(dst, seg...)
	b := dst[start:]
	for i := 0; i < len(b); {
		w, c := charAt(b, i)
		if fwdDigit(c) {
			maskDigitInPlace(b, i, w)
		}
		i += w
	}
	return dst
}
