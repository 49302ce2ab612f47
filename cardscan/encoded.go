package cardscan

import "bytes"

// Base64 runs and UTF-16 bodies: text the byte scan cannot read, decoded
// and scanned with the same rules. Decoded text is checked in windows of a
// fixed buffer, so that this costs no allocation; only a UTF-16 body found
// to hold card data is copied whole, to mask it digit by digit.

const (
	// minB64Run is the shortest base64 run decoded: 16 characters are 12
	// bytes, and the shortest card number is 13 digits.
	minB64Run = 16
	// minB64RunCVC is the shortest run decoded when the forward used the
	// CVC: a bare base64 CVC is 4 characters.
	minB64RunCVC = 4
	// windowSize is the buffer decoded text is checked in.
	windowSize = 4096
	// windowOverlap is how much of a window is checked again with the next
	// when no run boundary was found to cut at: more than the widest card
	// number the scan reads (19 JSON-escaped digits joined by three
	// JSON-escaped separators each, 438 bytes).
	windowOverlap = 512
)

// b64Values maps a byte to its value in the standard or the URL base64
// alphabet ('+' and '-' are 62, '/' and '_' 63), and anything else to
// 0xFF.
const b64Values = "" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x3e\xff\x3e\xff\x3f\x34\x35\x36\x37\x38\x39\x3a\x3b\x3c\x3d\xff\xff\xff\xff\xff\xff" +
	"\xff\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\xff\xff\xff\xff\x3f" +
	"\xff\x1a\x1b\x1c\x1d\x1e\x1f\x20\x21\x22\x23\x24\x25\x26\x27\x28\x29\x2a\x2b\x2c\x2d\x2e\x2f\x30\x31\x32\x33\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"

// inB64Run reports whether c continues a base64 run: an alphabet
// character, or a line break (MIME and PEM wrap base64 in lines).
func inB64Run(c byte) bool { return b64Values[c] != 0xFF || c == '\n' || c == '\r' }

// maskBase64Runs finds runs of base64 characters (either alphabet, line
// breaks inside allowed) of at least minB64Run alphabet characters,
// decodes each at each of the four character offsets (so a run need not
// start on a quantum), and each stretch of hex digits in it as hex from
// its first and second digit, and, if the decoded bytes hold card data by
// the text rules (any card number, or s's number or CVC), masks every
// alphabet character of the run with '*' in out. With out nil it only
// reports whether any run holds card data.
//
// Long runs are found by looking at every minB64Run-th byte only: a run
// that long must cover one of them, and most text is skipped without a
// look. A run of digits alone is not decoded (see digitsOnly). When the
// forward used the CVC, shorter runs (from minB64RunCVC characters) are
// decoded too, but only those that hold the CVC's base64 at one of the
// three alignments, as a run must if the CVC's digits are in it.
func (s *scanner) maskBase64Runs(out, src []byte) bool {
	// Most text scanned per forward (header names and values, short
	// answers) has no run to decode: finding that out without the window
	// saves zeroing its 4 KB on every call, which cost more than the scan.
	if !s.hasBase64Candidate(src) {
		return false
	}
	return s.maskBase64RunsIn(out, src)
}

// hasBase64Candidate reports whether maskBase64RunsIn would decode any run
// of src: the same walk, stopping at the first run it would check.
func (s *scanner) hasBase64Candidate(src []byte) bool {
	for p := minB64Run - 1; p < len(src); {
		if !inB64Run(src[p]) {
			p += minB64Run
			continue
		}
		a, b := b64RunAround(src, p)
		p = b + minB64Run
		if b64Chars(src[a:b]) >= minB64Run && !digitsOnly(src[a:b]) {
			return true
		}
	}
	if len(s.cvc) == 0 {
		return false
	}
	var buf [maxNeedle]byte
	for align := range 3 {
		needle := b64Needle(&buf, s.cvc, align)
		for i := 0; len(needle) > 0; {
			k := bytes.Index(src[i:], needle)
			if k < 0 {
				break
			}
			a, b := b64RunAround(src, i+k)
			i = b
			if n := b64Chars(src[a:b]); n >= minB64RunCVC && n < minB64Run && !digitsOnly(src[a:b]) {
				return true
			}
		}
	}
	return false
}

// maskBase64RunsIn is maskBase64Runs after hasBase64Candidate.
func (s *scanner) maskBase64RunsIn(out, src []byte) bool {
	found := false
	w := window{s: scanner{pan: s.pan, cvc: s.cvc}} // one buffer for every run
	check := func(a, b, minRun int) bool {
		run := src[a:b]
		if digitsOnly(run) || !w.base64Holds(run) && !w.hexHolds(run, minRun) {
			return false
		}
		found = true
		if out != nil {
			for j := a; j < b; j++ {
				if b64Values[src[j]] != 0xFF {
					writeMask(out, src, j, maskByte)
				}
			}
		}
		return true
	}
	for p := minB64Run - 1; p < len(src); {
		if !inB64Run(src[p]) {
			p += minB64Run
			continue
		}
		a, b := b64RunAround(src, p)
		p = b + minB64Run
		if b64Chars(src[a:b]) >= minB64Run && check(a, b, minB64Run) && out == nil {
			return true
		}
	}
	if len(s.cvc) == 0 {
		return found
	}
	var buf [maxNeedle]byte
	for align := range 3 {
		needle := b64Needle(&buf, s.cvc, align)
		for i := 0; len(needle) > 0; { // a CVC of one digit has no whole character at some alignments
			k := bytes.Index(src[i:], needle)
			if k < 0 {
				break
			}
			a, b := b64RunAround(src, i+k)
			i = b
			if n := b64Chars(src[a:b]); n >= minB64RunCVC && n < minB64Run && check(a, b, minB64RunCVC) && out == nil {
				return true
			}
		}
	}
	return found
}

// b64RunAround returns the bounds of the base64 run around src[p], which
// is in one.
func b64RunAround(src []byte, p int) (int, int) {
	a, b := p, p+1
	for a > 0 && inB64Run(src[a-1]) {
		a--
	}
	for b < len(src) && inB64Run(src[b]) {
		b++
	}
	return a, b
}

// digitsOnly reports whether run is ASCII digits and line breaks only.
// Such a run is not decoded: each quantum of digits decodes to a first
// byte of 0xD0–0xF7 and a second byte whose high nibble is 4–13, so at
// most every third decoded byte is a digit and none is joined to another;
// no card number or CVC can hide there. Processor answers are full of
// long numbers, and the text scan reads them already.
func digitsOnly(run []byte) bool {
	for _, c := range run {
		if !isDigit(c) && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

// b64Chars counts the alphabet characters of run.
func b64Chars(run []byte) int {
	n := 0
	for _, c := range run {
		if b64Values[c] != 0xFF {
			n++
		}
	}
	return n
}

// base64Holds reports whether run, decoded from any of its first four
// characters, holds card data. Padding and line breaks are skipped, and a
// last partial quantum gives the bytes it holds whole.
func (w *window) base64Holds(run []byte) bool {
	for off := range 4 {
		w.reset()
		skip := off
		var acc uint32
		nacc := 0
		for _, c := range run {
			v := b64Values[c]
			if v == 0xFF {
				continue
			}
			if skip > 0 {
				skip--
				continue
			}
			acc = acc<<6 | uint32(v)
			if nacc++; nacc == 4 {
				w.add(byte(acc >> 16))
				w.add(byte(acc >> 8))
				w.add(byte(acc))
				acc, nacc = 0, 0
			}
		}
		switch nacc {
		case 2:
			w.add(byte(acc >> 4))
		case 3:
			w.add(byte(acc >> 10))
			w.add(byte(acc >> 2))
		}
		if w.done() {
			return true
		}
	}
	return false
}

// hexHolds reports whether some stretch of hex digits (line breaks
// inside allowed) in run, at least minRun long and not decimal digits
// alone, holds card data decoded from its first or its second digit (hex
// glued to one more hex digit). Decimal digits alone are left to the text
// scan: hex of digits is a run of more than 19 decimal digits, which it
// masks.
func (w *window) hexHolds(run []byte, minRun int) bool {
	for i := 0; i < len(run); {
		j := i
		for j < len(run) && (isHex(run[j]) || run[j] == '\n' || run[j] == '\r') {
			j++
		}
		if j-i >= minRun && !digitsOnly(run[i:j]) && w.hexStretchHolds(run[i:j]) {
			return true
		}
		i = j + 1
	}
	return false
}

// hexStretchHolds is hexHolds for one stretch of hex digits.
func (w *window) hexStretchHolds(run []byte) bool {
	for off := range 2 {
		w.reset()
		skip, half, acc := off, false, byte(0)
		for _, c := range run {
			if !isHex(c) {
				continue
			}
			if skip > 0 {
				skip--
				continue
			}
			if acc = acc<<4 | unhex(c); half {
				w.add(acc)
			}
			half = !half
		}
		if w.done() {
			return true
		}
	}
	return false
}

// window checks decoded text for card data in pieces of a fixed buffer.
// It cuts the text after a byte that ends every run and every escape (see
// hardBreak), so each piece reads as the whole text would; when a full
// buffer has none in its second half, the next piece starts windowOverlap
// bytes back instead.
type window struct {
	s     scanner // pan and cvc set; found is the result
	buf   [windowSize]byte
	n     int
	found bool
}

// reset empties w for new text.
func (w *window) reset() { w.n, w.found = 0, false }

func (w *window) add(c byte) {
	if w.n == len(w.buf) {
		w.flush()
	}
	w.buf[w.n] = c
	w.n++
}

func (w *window) flush() {
	if w.found {
		clear(w.buf[:w.n])
		w.n = 0
		return
	}
	cut := w.n
	for i := w.n - 1; i >= w.n/2; i-- {
		if hardBreak(w.buf[i]) {
			cut = i + 1
			break
		}
	}
	w.check(w.buf[:cut])
	if cut == w.n {
		cut = w.n - windowOverlap
	}
	n := w.n
	w.n = copy(w.buf[:], w.buf[cut:n])
	clear(w.buf[w.n:n]) // decoded text may be card data
}

func (w *window) check(b []byte) {
	if !w.found {
		w.s.found = false
		w.s.run(nil, b, true)
		w.found = w.s.found || len(w.s.pan) > 0 && maskLoose(nil, b, w.s.pan)
	}
}

// done checks what is left, zeroes it, and reports whether any piece held
// card data.
func (w *window) done() bool {
	w.check(w.buf[:w.n])
	clear(w.buf[:w.n])
	return w.found
}

// hardBreak reports whether c ends any run and any escape: an ASCII byte
// that is no digit, separator or byte of an escape (hex digits, 'u', 't',
// 'n', 'r', '\\', '%'). Every other byte may belong to a token with the
// bytes around it.
func hardBreak(c byte) bool {
	if c >= 0x80 || isDigit(c) || isSepByte(c) || isHex(c) {
		return false
	}
	switch c {
	case '\\', '%', 'u', 't', 'n', 'r':
		return false
	}
	return true
}

// utf16Reading is one way to read bytes as UTF-16 or UTF-32: code units
// of 2 bytes (4 when wide) start at byte parity (0 or 1; 0 to 3 when
// wide), in big- or little-endian order.
type utf16Reading struct {
	parity int
	big    bool
	wide   bool // UTF-32
}

// width is the bytes of one code unit.
func (r utf16Reading) width() int {
	if r.wide {
		return 4
	}
	return 2
}

// unit returns the code unit k of src read as r; a UTF-32 unit beyond
// U+FFFF reads as U+FFFF, which narrow makes no digit.
func (r utf16Reading) unit(src []byte, k int) uint16 {
	i := r.parity + r.width()*k
	if r.wide {
		var u uint32
		if r.big {
			u = uint32(src[i])<<24 | uint32(src[i+1])<<16 | uint32(src[i+2])<<8 | uint32(src[i+3])
		} else {
			u = uint32(src[i+3])<<24 | uint32(src[i+2])<<16 | uint32(src[i+1])<<8 | uint32(src[i])
		}
		return uint16(min(u, 0xFFFF))
	}
	if r.big {
		return uint16(src[i])<<8 | uint16(src[i+1])
	}
	return uint16(src[i+1])<<8 | uint16(src[i])
}

// units is how many whole code units src holds read as r.
func (r utf16Reading) units(src []byte) int {
	if len(src) < r.parity {
		return 0
	}
	return (len(src) - r.parity) / r.width()
}

// utf16Readings are every reading maskUTF16 tries: UTF-16 at both
// parities and UTF-32 at all four, in both byte orders. UTF-32 text is
// ASCII with three NULs by each character; read as UTF-16 its digits
// stand apart, one NUL unit between each two.
var utf16Readings = [...]utf16Reading{
	{0, false, false}, {0, true, false}, {1, false, false}, {1, true, false},
	{0, false, true}, {0, true, true}, {1, false, true}, {1, true, true},
	{2, false, true}, {2, true, true}, {3, false, true}, {3, true, true},
}

// narrow maps a UTF-16 code unit to the byte the text scan reads for it:
// ASCII as itself, a fullwidth digit as its ASCII digit, a no-break space
// as a space, and anything else as 0x01, which is no digit, separator or
// part of an escape.
func narrow(u uint16) byte {
	switch {
	case u < 0x80:
		return byte(u)
	case u >= 0xFF10 && u <= 0xFF19:
		return byte('0' + u - 0xFF10)
	case u == 0xA0:
		return ' '
	}
	return 0x01
}

// maskUTF16 reads src as UTF-16 when it starts with a byte order mark or
// holds a NUL byte (text never does; UTF-16 text in the Latin range is
// half NULs), in both byte orders at both byte parities, and as UTF-32 at
// all four, so that text at any offset is read. Each reading is narrowed to one byte per code unit
// and scanned by the text rules with s's secrets; when it holds card data,
// the whole reading is narrowed into a scratch buffer, masked, and every
// code unit the scan masked is written back into out as its mask, in the
// reading's byte order. With out nil it only reports whether any reading
// holds card data.
func (s *scanner) maskUTF16(out, src []byte) bool {
	if len(src) < 2 || !(hasBOM(src) || bytes.IndexByte(src, 0) >= 0) {
		return false
	}
	found := false
	var scratch []byte
	defer func() { clear(scratch) }()
	for _, r := range utf16Readings {
		m := r.units(src)
		if m == 0 || !s.utf16Holds(src, r) {
			continue
		}
		if scratch == nil {
			scratch = make([]byte, 2*(len(src)/2))
		}
		in, masked := scratch[:m], scratch[m:m:2*m]
		for k := range m {
			in[k] = narrow(r.unit(src, k))
		}
		t := scanner{pan: s.pan, cvc: s.cvc}
		if out == nil {
			if t.run(nil, in, true); t.found || len(s.pan) > 0 && maskLoose(nil, in, s.pan) {
				return true
			}
			continue
		}
		masked = t.run(masked, in, false)
		if len(s.pan) > 0 {
			maskLoose(masked, in, s.pan)
		}
		for k := range m {
			if masked[k] == in[k] {
				continue
			}
			found = true
			w := r.width()
			i := r.parity + w*k
			for j := range w {
				c := byte(0)
				if j == 0 && !r.big || j == w-1 && r.big {
					c = masked[k]
				}
				writeMask(out, src, i+j, c)
			}
		}
	}
	return found
}

// hasBOM reports whether src starts with a UTF-16 byte order mark.
func hasBOM(src []byte) bool {
	return len(src) >= 2 && (src[0] == 0xFF && src[1] == 0xFE || src[0] == 0xFE && src[1] == 0xFF)
}

// utf16Holds reports whether src read as r holds card data, checked in
// windows.
func (s *scanner) utf16Holds(src []byte, r utf16Reading) bool {
	w := window{s: scanner{pan: s.pan, cvc: s.cvc}}
	for k := range r.units(src) {
		w.add(narrow(r.unit(src, k)))
	}
	return w.done()
}
