package cardscan

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
)

// CVC lengths that NewSecrets accepts.
const (
	minCVCDigits = 3
	maxCVCDigits = 4
)

// secretsMask is what a Secrets prints, whatever the verb.
const secretsMask = "cardscan.Secrets([redacted])"

// Secrets is the card a forward sent: its number and, when the forward
// used it, its CVC. Secrets.Redact masks them in every encoding the
// gateway can produce (see the package comment), on top of what Redact
// masks. It is a value the forwarder builds once per forward and uses for
// the body and every header; Wipe zeroes it.
//
// A Secrets prints as a mask with every fmt verb, in slog and in JSON,
// and is not comparable with ==.
type Secrets struct {
	_      [0]func() // not comparable
	pan    [maxCardDigits]byte
	panLen uint8
	cvc    [maxCVCDigits]byte
	cvcLen uint8
}

// NewSecrets returns the Secrets of a card. number must be 13–19 ASCII
// digits and cvc 3–4; a value of another form is left out (the vault
// never returns one), and an empty cvc means the forward did not send it.
func NewSecrets(number, cvc string) Secrets {
	var s Secrets
	if len(number) >= minCardDigits && len(number) <= maxCardDigits && allDigits(number) {
		s.panLen = uint8(copy(s.pan[:], number))
	}
	if len(cvc) >= minCVCDigits && len(cvc) <= maxCVCDigits && allDigits(cvc) {
		s.cvcLen = uint8(copy(s.cvc[:], cvc))
	}
	return s
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// Redact is the package's Redact that also masks s's number and CVC: the
// number wherever its digits appear in a run, glued to other digits or
// not, and in each fixed encoding; the CVC as a whole digit group in
// text, base64 and UTF-16, and as hex. A nil s is plain Redact.
func (s *Secrets) Redact(dst, src []byte) []byte {
	if s == nil {
		return redact(dst, src, nil, nil)
	}
	return redact(dst, src, s.pan[:s.panLen], s.cvc[:s.cvcLen])
}

// Wipe zeroes s.
func (s *Secrets) Wipe() { *s = Secrets{} }

// String returns a mask.
func (s Secrets) String() string { return secretsMask }

// GoString returns a mask.
func (s Secrets) GoString() string { return secretsMask }

// Format masks every verb, including %x and %v of the struct.
func (s Secrets) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(secretsMask)) }

// LogValue masks s in slog output.
func (s Secrets) LogValue() slog.Value { return slog.StringValue(secretsMask) }

// MarshalJSON masks s in JSON.
func (s Secrets) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }

// maskOwn masks the forwarded number pan wherever its digits appear, in
// order, among the digit tokens of run, whatever the grouping: every
// digit of the match but the last four, and every other digit of the
// groups the match touches (digits glued to a card number, an expiry or a
// CVC, are card data too). out is run's masked copy, or nil to only
// report whether pan appears.
func (s *scanner) maskOwn(out, run []byte) bool {
	pan := s.pan
	l := len(pan)
	// Rings over the last maxCardDigits digit tokens: where each starts,
	// where its group starts and its value.
	var pos, gstart [maxCardDigits]int
	var val [maxCardDigits]byte
	nd, group := 0, 0
	inGroup, tail, found := false, false, false
	for i := 0; i < len(run); {
		k, w, d := tokenAt(run, i)
		if k != tokDigit {
			inGroup, tail = false, false
			i += w
			continue
		}
		if !inGroup {
			group, inGroup = i, true
		}
		if tail {
			maskTokenAt(out, run, i, w)
		}
		r := nd % maxCardDigits
		pos[r], gstart[r], val[r] = i, group, d
		nd++
		i += w
		if nd < l || d != pan[l-1] || !ringHolds(&val, nd, pan) {
			continue
		}
		found = true
		if out == nil {
			return true
		}
		first := (nd - l) % maxCardDigits
		// Digits glued before the match, then the match but its last
		// four; digits glued after it are masked as they come (tail).
		maskTokens(out, run, gstart[first], pos[first])
		for t := nd - l; t < nd-keepDigits; t++ {
			p := pos[t%maxCardDigits]
			_, tw, _ := tokenAt(run, p)
			maskTokenAt(out, run, p, tw)
		}
		tail = true
	}
	return found
}

// ringHolds reports whether the last len(want) of the nd values in ring
// are want.
func ringHolds(ring *[maxCardDigits]byte, nd int, want []byte) bool {
	for t, c := range want {
		if ring[(nd-len(want)+t)%maxCardDigits] != c {
			return false
		}
	}
	return true
}

// maskTokens masks every digit token in run[from:to] (whole tokens) in
// out.
func maskTokens(out, run []byte, from, to int) {
	for i := from; i < to; {
		k, w, _ := tokenAt(run, i)
		if k == tokDigit {
			maskTokenAt(out, run, i, w)
		}
		i += w
	}
}

// maskTokenAt writes the mask of the w-byte digit token run[i:] into out
// at i. Masks keep a token's width, so positions in out match run's.
func maskTokenAt(out, run []byte, i, w int) {
	if out != nil {
		appendMask(out[i:i], run[i:i+w])
	}
}

// needleKind is one fixed encoding of the forwarded number.
type needleKind uint8

const (
	needlePercent needleKind = iota // %34%32…
	needleJSON                      // \u0034\u0032…
	needleHex                       // 34323432…, the same in upper and lower case
	needleUTF16LE                   // 4\x002\x00…
	needleUTF16BE                   // \x004\x002…
	needleB64                       // base64 at alignment 0, 1, 2 (three needles)
)

// maxNeedle is the longest needle: the JSON escapes of 19 digits.
const maxNeedle = 6 * maxCardDigits

// buildNeedle writes the needle of pan in kind (at base64 alignment a)
// into buf and returns it, with the width of one digit in it (0 for the
// encodings that are masked whole).
func buildNeedle(buf *[maxNeedle]byte, pan []byte, kind needleKind, a int) ([]byte, int) {
	b := buf[:0]
	switch kind {
	case needlePercent:
		for _, c := range pan {
			b = append(b, '%', '3', c)
		}
		return b, 3
	case needleJSON:
		for _, c := range pan {
			b = append(b, '\\', 'u', '0', '0', '3', c)
		}
		return b, 6
	case needleHex:
		for _, c := range pan {
			b = append(b, '3', c)
		}
		return b, 0
	case needleUTF16LE:
		for _, c := range pan {
			b = append(b, c, 0)
		}
		return b, 2
	case needleUTF16BE:
		for _, c := range pan {
			b = append(b, 0, c)
		}
		return b, 2
	}
	return b64Needle(buf, pan, a), 0
}

// b64Needle writes the base64 characters that encode only pan's bits when
// pan starts at byte a (0–2) of a 3-byte group: the characters that are
// the same wherever pan sits at that alignment in a longer stream. The
// characters that share bits with the bytes around it carry no digit's
// value (the high bits of an ASCII digit are 0011) or the last digit's
// low bits, which the mask shows anyway. Digits encode to characters
// below index 58, so the standard and URL alphabets give the same needle.
func b64Needle(buf *[maxNeedle]byte, pan []byte, a int) []byte {
	var plain [2 + maxCardDigits]byte
	n := copy(plain[a:], pan) + a
	enc := buf[:base64.StdEncoding.EncodedLen(n)]
	base64.StdEncoding.Encode(enc, plain[:n])
	from, to := (8*a+5)/6, 8*n/6
	return buf[from:to]
}

// b64TailFits reports whether the character after a base64 needle (the
// start of rest) carries the low bits of pan's last digit that the needle
// leaves out, so that a number differing from pan only there is not
// taken for it. A missing or non-base64 character cannot be checked and
// counts as a fit: the needle alone is the number but for two or four
// bits of a digit the mask shows anyway.
func b64TailFits(rest, pan []byte, align int) bool {
	r := 8 * (align + len(pan)) % 6 // bits of the last digit in the next character
	if r == 0 || len(rest) == 0 || b64Values[rest[0]] == 0xFF {
		return true
	}
	last := pan[len(pan)-1] & (1<<r - 1)
	return b64Values[rest[0]]>>(6-r) == last
}

// maskNeedles masks the forwarded number pan in its fixed encodings and
// read byte by byte (maskLoose), and the CVC as hex, in out (src's masked
// copy). With out nil it only reports whether there is any.
func maskNeedles(out, src, pan, cvc []byte) bool {
	var buf [maxNeedle]byte
	found := false
	if len(pan) > 0 && maskLoose(out, src, pan) {
		if out == nil {
			return true
		}
		found = true
	}
	// Every needle is at least as long as the number (base64's is the
	// shortest, at 4/3 of it less a character): shorter text, such as
	// most header values, holds none, and the needles are not built.
	if len(pan) > 0 && len(src) >= len(pan) {
		// Every fixed encoding; base64 at each alignment of the number in
		// a 3-byte group.
		for _, nd := range [...]struct {
			kind  needleKind
			align int
		}{{needlePercent, 0}, {needleJSON, 0}, {needleHex, 0}, {needleUTF16LE, 0}, {needleUTF16BE, 0},
			{needleB64, 0}, {needleB64, 1}, {needleB64, 2}} {
			kind := nd.kind
			needle, width := buildNeedle(&buf, pan, kind, nd.align)
			for i := 0; ; {
				k := bytes.Index(src[i:], needle)
				if k < 0 {
					break
				}
				at := i + k
				if kind == needleB64 && !b64TailFits(src[at+len(needle):], pan, nd.align) {
					i = at + 1
					continue
				}
				found = true
				if out == nil {
					return true
				}
				switch kind {
				case needleUTF16LE, needleUTF16BE:
					// The digit byte of each code unit but the last four.
					off := 0
					if kind == needleUTF16BE {
						off = 1
					}
					for d := 0; d < len(pan)-keepDigits; d++ {
						writeMask(out, src, at+2*d+off, maskByte)
					}
				default:
					if width == 0 { // hex, base64: the whole needle
						for j := at; j < at+len(needle); j++ {
							writeMask(out, src, j, maskByte)
						}
						break
					}
					for d := 0; d < len(pan)-keepDigits; d++ {
						p := at + d*width
						mask := maskOf(width)
						for j := range len(mask) {
							writeMask(out, src, p+j, mask[j])
						}
					}
				}
				i = at + 1
			}
		}
	}
	if len(cvc) > 0 && maskCVCHex(out, src, cvc) {
		found = true
	}
	return found
}

// maskOf returns the mask of a digit token of width w.
func maskOf(w int) string {
	switch w {
	case 3:
		return "%2A"
	case 6:
		return `\u002a`
	}
	return "*"
}

// maskLoose masks pan where its digits stand as plain ASCII digits with
// up to three ASCII separators between any two, read byte by byte: every
// digit but the last four. This is how a person or a log viewer reads the
// bytes, and it finds the number where the text scan's reading of escapes
// hides it ("100%4242…" reads as "100", 'B', "42…"; "%3782-…" as '7',
// "82-…"). With out nil it only reports whether there is any.
func maskLoose(out, src, pan []byte) bool {
	found := false
	for i := 0; i < len(src); {
		k := bytes.IndexByte(src[i:], pan[0])
		if k < 0 {
			break
		}
		at := i + k
		i = at + 1
		end, ok := matchLoose(src, at, pan)
		if !ok {
			continue
		}
		found = true
		if out == nil {
			return true
		}
		for j, d := at, 0; j < end && d < len(pan)-keepDigits; j++ {
			if isDigit(src[j]) {
				writeMask(out, src, j, maskByte)
				d++
			}
		}
	}
	return found
}

// matchLoose reports whether pan's digits start at src[at] as maskLoose
// reads them, and where the match ends.
func matchLoose(src []byte, at int, pan []byte) (int, bool) {
	j := at
	for d, c := range pan {
		if d > 0 {
			for seps := 0; j < len(src) && seps < maxSepRun && isSepByte(src[j]); seps++ {
				j++
			}
		}
		if j >= len(src) || src[j] != c {
			return 0, false
		}
		j++
	}
	return j, true
}

// writeMask writes c at out[i] unless src[i] is c already: a stage never
// writes back a byte of src over an earlier stage's mask.
func writeMask(out, src []byte, i int, c byte) {
	if src[i] != c {
		out[i] = c
	}
}

// maskCVCHex masks the hex of cvc ("373337") where it starts at an even
// offset of a run of hex digits: a decimal number that merely contains
// those digits at an odd offset is left alone.
func maskCVCHex(out, src, cvc []byte) bool {
	var buf [2 * maxCVCDigits]byte
	needle := buf[:0]
	for _, c := range cvc {
		needle = append(needle, '3', c)
	}
	found := false
	runStart, scanned := 0, 0 // runStart is right for every position below scanned
	for i := 0; ; {
		k := bytes.Index(src[i:], needle)
		if k < 0 {
			return found
		}
		at := i + k
		for ; scanned < at; scanned++ {
			if !isHex(src[scanned]) {
				runStart = scanned + 1
			}
		}
		if (at-runStart)%2 == 0 {
			found = true
			if out == nil {
				return true
			}
			for j := at; j < at+len(needle); j++ {
				writeMask(out, src, j, maskByte)
			}
		}
		i = at + 1
	}
}

// hasNeedle reports whether src holds pan or cvc in a form maskNeedles
// masks.
func hasNeedle(src, pan, cvc []byte) bool { return maskNeedles(nil, src, pan, cvc) }
