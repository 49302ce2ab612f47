package cardscan

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"unicode/utf16"
)

// testCards are the standard test numbers the tables run over, with a CVC
// of their brand's length.
var testCards = []struct{ number, cvc string }{
	{"4242424242424242", "737"},
	{"378282246310005", "1234"},
	{"5555555555554444", "123"},
}

// An encoding turns a processor's answer into the form it is sent in. The
// encoders are written with the standard library, apart from the scanner.
type encoding struct {
	name string
	enc  func(payload string) []byte
	// dec reads the masked output back as the caller would, or fails
	// (a masked base64 run does not decode); nil for the text forms.
	dec func(out []byte) ([]byte, bool)
}

func b64Encoding(name string, e *base64.Encoding) encoding {
	return encoding{name, func(p string) []byte { return []byte(e.EncodeToString([]byte(p))) },
		func(out []byte) ([]byte, bool) {
			b, err := e.DecodeString(string(out))
			return b, err == nil
		}}
}

func utf16Bytes(p string, big, bom bool) []byte {
	var out []byte
	units := utf16.Encode([]rune(p))
	if bom {
		units = append([]uint16{0xFEFF}, units...)
	}
	for _, u := range units {
		if big {
			out = binary.BigEndian.AppendUint16(out, u)
		} else {
			out = binary.LittleEndian.AppendUint16(out, u)
		}
	}
	return out
}

func utf16Decoding(big bool) func([]byte) ([]byte, bool) {
	return func(out []byte) ([]byte, bool) {
		if len(out)%2 != 0 {
			return nil, false
		}
		units := make([]uint16, len(out)/2)
		for i := range units {
			if big {
				units[i] = binary.BigEndian.Uint16(out[2*i:])
			} else {
				units[i] = binary.LittleEndian.Uint16(out[2*i:])
			}
		}
		return []byte(string(utf16.Decode(units))), true
	}
}

// digitwise rewrites every ASCII digit of p with f.
func digitwise(p string, f func(i int, c byte) string) []byte {
	var b strings.Builder
	n := 0
	for i := 0; i < len(p); i++ {
		if isDigit(p[i]) {
			b.WriteString(f(n, p[i]))
			n++
			continue
		}
		b.WriteByte(p[i])
	}
	return []byte(b.String())
}

var encodings = []encoding{
	{"raw", func(p string) []byte { return []byte(p) }, nil},
	{"percent", func(p string) []byte {
		return digitwise(p, func(_ int, c byte) string { return fmt.Sprintf("%%%X", c) })
	}, nil},
	{"percent, every other digit", func(p string) []byte {
		return digitwise(p, func(i int, c byte) string {
			if i%2 == 0 {
				return fmt.Sprintf("%%%x", c)
			}
			return string(c)
		})
	}, nil},
	{"json escapes", func(p string) []byte {
		return digitwise(p, func(_ int, c byte) string { return fmt.Sprintf(`\u%04x`, c) })
	}, nil},
	{"hex lower", func(p string) []byte { return []byte(hex.EncodeToString([]byte(p))) }, hexDecoding},
	{"hex upper", func(p string) []byte { return []byte(strings.ToUpper(hex.EncodeToString([]byte(p)))) }, hexDecoding},
	{"utf-16le", func(p string) []byte { return utf16Bytes(p, false, false) }, utf16Decoding(false)},
	{"utf-16be", func(p string) []byte { return utf16Bytes(p, true, false) }, utf16Decoding(true)},
	{"utf-16le with bom", func(p string) []byte { return utf16Bytes(p, false, true) }, utf16Decoding(false)},
	{"utf-16be with bom", func(p string) []byte { return utf16Bytes(p, true, true) }, utf16Decoding(true)},
	b64Encoding("base64 std", base64.StdEncoding),
	b64Encoding("base64 std unpadded", base64.RawStdEncoding),
	b64Encoding("base64 url", base64.URLEncoding),
	b64Encoding("base64 url unpadded", base64.RawURLEncoding),
}

func hexDecoding(out []byte) ([]byte, bool) {
	b, err := hex.DecodeString(string(out))
	return b, err == nil
}

// payloads put a value into a processor's answer so that it starts at
// each alignment (byte offset mod 3) of a base64 stream, after text that
// varies in length.
func payloads(field, value string) []string {
	var out []string
	for pad := range 3 {
		out = append(out, `{"id":"ch_1`+strings.Repeat("x", pad)+`","`+field+`":"`+value+`","status":"ok"}`)
	}
	return out
}

// grouped writes a number with sep every four digits (Amex: 4-6-5).
func grouped(n, sep string) string {
	if len(n) == 15 {
		return n[:4] + sep + n[4:10] + sep + n[10:]
	}
	var parts []string
	for i := 0; i < len(n); i += 4 {
		parts = append(parts, n[i:min(i+4, len(n))])
	}
	return strings.Join(parts, sep)
}

// leaks returns the form of number in which out still shows it, or "":
// every fixed encoding, and the decoded text as the caller would read it.
func leaks(out []byte, number string, e encoding) string {
	for name, needle := range numberForms(number) {
		if bytes.Contains(out, needle) {
			return name
		}
	}
	if e.dec != nil {
		if dec, ok := e.dec(out); ok && bytes.Contains(onlyDigits(dec), []byte(number)) {
			return "decoded"
		}
	}
	return ""
}

// numberForms are the fixed encodings of a number, built with the
// standard library.
func numberForms(number string) map[string][]byte {
	forms := map[string][]byte{
		"raw":      []byte(number),
		"percent":  digitwise(number, func(_ int, c byte) string { return fmt.Sprintf("%%%X", c) }),
		"json":     digitwise(number, func(_ int, c byte) string { return fmt.Sprintf(`\u%04x`, c) }),
		"hex":      []byte(hex.EncodeToString([]byte(number))),
		"utf-16le": utf16Bytes(number, false, false),
		"utf-16be": utf16Bytes(number, true, false),
	}
	for a := range 3 {
		enc := base64.StdEncoding.EncodeToString(append(make([]byte, a), number...))
		from, to := (8*a+5)/6, 8*(a+len(number))/6
		forms[fmt.Sprintf("base64 at %d", a)] = []byte(enc[from:to])
	}
	return forms
}

// onlyDigits keeps the ASCII digits of b, so that separators do not hide
// a number from the check.
func onlyDigits(b []byte) []byte {
	var out []byte
	for _, c := range b {
		if isDigit(c) {
			out = append(out, c)
		}
	}
	return out
}

// cvcShown reports whether text holds cvc as a whole digit group.
func cvcShown(text []byte, cvc string) bool {
	return regexp.MustCompile(`(^|[^0-9])` + cvc + `([^0-9]|$)`).Match(text)
}

// TestSecretsEveryEncoding is the table of every encoding × alignment for
// each test card and its CVC: the masked answer shows neither, in any
// fixed encoding or read back as the caller would, and keeps its length.
// Both Redact (any card) and Secrets.Redact (the forwarded card) must
// mask the number.
func TestSecretsEveryEncoding(t *testing.T) {
	for _, card := range testCards {
		own := NewSecrets(card.number, card.cvc)
		values := map[string]string{
			"number":        card.number,
			"number spaced": grouped(card.number, " "),
			"number dashed": grouped(card.number, "-"),
		}
		for vname, value := range values {
			for _, e := range encodings {
				for i, p := range payloads("number", value) {
					in := e.enc(p)
					name := fmt.Sprintf("%s/%s/%s/align %d", card.number, vname, e.name, i)
					t.Run(name, func(t *testing.T) {
						for _, f := range []struct {
							name   string
							redact func(dst, src []byte) []byte
						}{{"Secrets.Redact", own.Redact}, {"Redact", Redact}} {
							out := f.redact(nil, in)
							if len(out) != len(in) {
								t.Fatalf("%s: len = %d, want %d", f.name, len(out), len(in))
							}
							if form := leaks(out, card.number, e); form != "" {
								t.Errorf("%s(%q) = %q: the number shows (%s)", f.name, in, out, form)
							}
							if !Contains(in) {
								t.Errorf("Contains(%q) = false", in)
							}
						}
					})
				}
			}
		}
		for _, e := range encodings {
			for i, p := range payloads("cvc", card.cvc) {
				in := e.enc(p)
				t.Run(fmt.Sprintf("%s/cvc/%s/align %d", card.number, e.name, i), func(t *testing.T) {
					out := own.Redact(nil, in)
					if len(out) != len(in) {
						t.Fatalf("len = %d, want %d", len(out), len(in))
					}
					shown := bytes.Contains(out, []byte(card.cvc)) && cvcShown(out, card.cvc)
					if e.dec != nil {
						if dec, ok := e.dec(out); ok && cvcShown(dec, card.cvc) {
							shown = true
						}
					}
					if e.name == "hex lower" || e.name == "hex upper" {
						shown = shown || bytes.Contains(out, []byte(hex.EncodeToString([]byte(card.cvc))))
					}
					if shown {
						t.Errorf("Secrets.Redact(%q) = %q: the CVC shows", in, out)
					}
				})
			}
		}
	}
}

// TestSecretsOwnNumber pins the rules that only the forwarded card's own
// number gets: its digits are masked wherever they stand in a run, and
// digits glued to them are masked too.
func TestSecretsOwnNumber(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"glued before", "ref74242424242424242", "ref*************4242"},
		{"cvc glued after", "4242424242424242737", "************4242***"},
		{"expiry glued after", "x42424242424242421231x", "x********************x"}, // more than 19 digits: masked whole but four, and the four are glued
		{"across a group boundary", "424242 4242424242", "****** ******4242"},
		{"percent glued", "%37%34%32%34%32%34%32%34%32%34%32%34%32%34%32%34%32", "%2A%2A%2A%2A%2A%2A%2A%2A%2A%2A%2A%2A%2A%34%32%34%32"},
		{"read as an escape", "100%4242424242424242", "100%************4242"},
		{"hex", "7b2234323432343234323432343234323432227d", strings.Repeat("*", 40)},
		{"utf-16le", "4\x002\x004\x002\x004\x002\x004\x002\x004\x002\x004\x002\x004\x002\x004\x002\x00",
			"*\x00*\x00*\x00*\x00*\x00*\x00*\x00*\x00*\x00*\x00*\x00*\x004\x002\x004\x002\x00"},
		{"utf-16be at an odd offset", "x\x004\x002\x004\x002\x004\x002\x004\x002\x004\x002\x004\x002\x004\x002\x004\x002",
			"x\x00*\x00*\x00*\x00*\x00*\x00*\x00*\x00*\x00*\x00*\x00*\x00*\x004\x002\x004\x002"},
		{"other number kept", "4111111111111111 vs 4242", "************1111 vs 4242"},
	}
	own := NewSecrets("4242424242424242", "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(own.Redact(nil, []byte(tt.in))); got != tt.want {
				t.Errorf("Secrets.Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestRedactEncoded pins what Redact (no forwarded card) does with
// encoded text: base64 runs that decode to a card are masked whole, and
// UTF-16 bodies are masked digit by digit.
func TestRedactEncoded(t *testing.T) {
	card := `{"number":"4111111111111111","cvc":"123"}`
	b64 := base64.StdEncoding.EncodeToString([]byte(card))
	tests := []struct{ name, in, want string }{
		{"base64 header value", b64, strings.Repeat("*", len(b64)-1) + "="},
		{"base64 in json", `{"debug":"` + b64 + `"}`, `{"debug":"` + strings.Repeat("*", len(b64)-1) + `="}`},
		{"base64 after glued text", "xyz" + strings.TrimRight(b64, "="), "***" + strings.Repeat("*", len(strings.TrimRight(b64, "=")))},
		{"base64 wrapped in lines", b64[:20] + "\r\n" + b64[20:], strings.Repeat("*", 20) + "\r\n" + strings.Repeat("*", len(b64)-21) + "="},
		{"hex with dashes", hex.EncodeToString([]byte("n=4111-1111-1111-1111")), strings.Repeat("*", 42)},
		{"utf-16le keeps the last four", string(utf16Bytes("n=4111 1111 1111 1111", false, true)),
			string(utf16Bytes("n=**** **** **** 1111", false, true))},
		{"utf-16be", string(utf16Bytes(card, true, false)), string(utf16Bytes(`{"number":"************1111","cvc":"123"}`, true, false))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(Redact(nil, []byte(tt.in))); got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if !Contains([]byte(tt.in)) {
				t.Errorf("Contains(%q) = false, want true", tt.in)
			}
		})
	}
}

// TestEncodedNegatives: identifiers, amounts and digit runs that are not
// card numbers survive every stage untouched, with and without a
// forwarded card and CVC.
func TestEncodedNegatives(t *testing.T) {
	ids := []string{
		"ch_3MmlLrLkdIwHu7ix0snN0B15", "pi_3NxyzAbCdEfGhIjK1234567", "123e4567-e89b-12d3-a456-426614174000",
		"req_8f2a9c1d4e5b6a7f", "tok_abcdefghijklmnopqrstuvwxyz234567",
		"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", // sha256
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjaF8xIiwiYW1vdW50IjoxMDAwfQ.c2lnbmF0dXJl",
		"4242424242424241", "1718000000001", "12345678901234", "amount=1737&fee=7370",
		"1373337", // the CVC's hex at an odd offset of a number
	}
	gen := rand.New(rand.NewPCG(7, 8))
	for len(ids) < 400 {
		// Random 13–19 digit numbers whose every group-aligned candidate
		// fails Luhn: one group, so the whole number is the candidate.
		d := make([]byte, 13+gen.IntN(7))
		for i := range d {
			d[i] = byte('0' + gen.IntN(10))
		}
		if !Luhn(d) && !bytes.Contains(d, []byte("737")) {
			ids = append(ids, string(d))
		}
	}
	own := NewSecrets("4242424242424242", "737")
	for _, id := range ids {
		p := `{"id":"` + id + `","amount":1000,"currency":"usd","created":1718000000}`
		for _, e := range encodings {
			if strings.HasPrefix(e.name, "hex") {
				// Hex of ten or more characters of text is often a group of
				// more than 19 decimal digits, which the text scan masks
				// whatever it encodes; short hex is below.
				continue
			}
			in := e.enc(p)
			for _, f := range []struct {
				name   string
				redact func(dst, src []byte) []byte
			}{{"Secrets.Redact", own.Redact}, {"Redact", Redact}} {
				if out := f.redact(nil, in); !bytes.Equal(out, in) {
					t.Errorf("%s(%s of %q) = %q, want it untouched", f.name, e.name, p, out)
				}
			}
			if Contains(in) {
				t.Errorf("Contains(%s of %q) = true", e.name, p)
			}
		}
	}
	for _, in := range []string{hex.EncodeToString([]byte(`{"id":"ch_1","ok":true}`)), "9f86d081884c7d659a2feaa0c55ad015", "1373337"} {
		if out := own.Redact(nil, []byte(in)); string(out) != in {
			t.Errorf("Secrets.Redact(%q) = %q, want it untouched", in, out)
		}
	}
	// Binary with NUL bytes and no card, read as UTF-16 four ways.
	bin := make([]byte, 8192)
	for i := range bin {
		bin[i] = byte(gen.IntN(256))
	}
	if out := own.Redact(nil, bin); !bytes.Equal(out, bin) {
		t.Errorf("Secrets.Redact(random binary) changed %d bytes", diffCount(out, bin))
	}
}

func diffCount(a, b []byte) int {
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

// TestSecretsPrintMasked: a Secrets never prints its digits.
func TestSecretsPrintMasked(t *testing.T) {
	s := NewSecrets("4242424242424242", "737")
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		if got := fmt.Sprintf(verb, s); strings.Contains(got, "4242") || strings.Contains(got, "737") || strings.Contains(got, "3432") {
			t.Errorf("Sprintf(%q, Secrets) = %q", verb, got)
		}
	}
	if got := fmt.Sprintf("%v", &s); strings.Contains(got, "4242") {
		t.Errorf("Sprintf(%%v, &Secrets) = %q", got)
	}
	s.Wipe()
	if out := s.Redact(nil, []byte("4242424242424241 737")); string(out) != "4242424242424241 737" {
		t.Errorf("wiped Secrets still masks: %q", out)
	}
}

// TestMaskNeedles checks the fixed-encoding stage on its own: it alone
// must mask the forwarded number in each fixed encoding, at each base64
// alignment, whatever the other stages find.
func TestMaskNeedles(t *testing.T) {
	for _, card := range testCards {
		for name, needle := range numberForms(card.number) {
			for _, pre := range []string{"", "x", "xy", "xyz"} {
				in := []byte(pre + string(needle) + "!")
				out := bytes.Clone(in)
				if !maskNeedles(out, in, []byte(card.number), nil) {
					t.Errorf("maskNeedles(%q) found nothing", in)
				}
				if bytes.Contains(out, needle) {
					t.Errorf("maskNeedles(%s of %s) = %q, the number shows", name, card.number, out)
				}
			}
		}
	}
}

// FuzzSecretsRedact puts a test card's number, plain or grouped, into an
// answer in one of the encodings, between fuzzed bytes inside the
// encoding and outside it. The text scan must follow the reference rule
// (the own-number rule included), and the masked output must not hold the
// number in any fixed encoding, nor show it read back as the caller would.
func FuzzSecretsRedact(f *testing.F) {
	f.Add([]byte(`{"n":"`), []byte(`"}`), uint8(0), uint8(0), uint8(0))
	f.Add([]byte("x"), []byte("7"), uint8(1), uint8(6), uint8(1))
	f.Add([]byte("ab"), []byte("1231"), uint8(2), uint8(10), uint8(2))
	f.Add([]byte("\x00"), []byte("\xff"), uint8(0), uint8(7), uint8(0))
	f.Fuzz(func(t *testing.T, prefix, suffix []byte, which, enc, form uint8) {
		card := testCards[int(which)%len(testCards)]
		e := encodings[int(enc)%len(encodings)]
		value := [...]string{card.number, grouped(card.number, " "), grouped(card.number, "-")}[form%3]
		middle := e.enc(string(prefix) + value + string(suffix))
		in := append(append(append([]byte{}, prefix...), middle...), suffix...)
		pan := []byte(card.number)

		text := scanner{pan: pan}
		if got, want := text.run(nil, in, false), redactReference(in, pan, nil); !bytes.Equal(got, want) {
			t.Fatalf("text scan of %q = %q, want %q", in, got, want)
		}
		own := NewSecrets(card.number, "")
		out := own.Redact(nil, in)
		if len(out) != len(in) {
			t.Fatalf("len(Secrets.Redact(%q)) = %d, want %d", in, len(out), len(in))
		}
		for name, needle := range numberForms(card.number) {
			if bytes.Contains(out, needle) {
				t.Fatalf("Secrets.Redact(%q) = %q holds the number (%s)", in, out, name)
			}
		}
		if e.dec != nil {
			if dec, ok := e.dec(out[len(prefix) : len(out)-len(suffix)]); ok {
				for _, v := range []string{card.number, grouped(card.number, " "), grouped(card.number, "-")} {
					if bytes.Contains(dec, []byte(v)) {
						t.Fatalf("Secrets.Redact(%q) = %q shows the number read back (%q)", in, out, dec)
					}
				}
			}
		}
	})
}

// TestNeedlesNoShorterThanNumber checks what maskNeedles relies on to skip
// text shorter than the number: no needle of a 13–19 digit number, in any
// encoding or base64 alignment, is shorter than the number.
func TestNeedlesNoShorterThanNumber(t *testing.T) {
	const digits = "4242424242424242424"
	kinds := []needleKind{needlePercent, needleJSON, needleHex, needleUTF16LE, needleUTF16BE, needleB64}
	for l := minCardDigits; l <= maxCardDigits; l++ {
		pan := []byte(digits[:l])
		for _, kind := range kinds {
			for align := range 3 {
				var buf [maxNeedle]byte
				needle, _ := buildNeedle(&buf, pan, kind, align)
				if len(needle) < len(pan) {
					t.Errorf("%d digits, kind %d, alignment %d: needle of %d bytes", l, kind, align, len(needle))
				}
			}
		}
	}
}

// TestBase64CandidateAgrees checks that hasBase64Candidate, which lets
// maskBase64Runs skip its window, is true whenever maskBase64RunsIn finds
// anything, on the package's test texts and their prefixes.
func TestBase64CandidateAgrees(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	texts := []string{
		"", "no runs here", "Mon, 07 Dec 2026 07:49:50 GMT", "application/json; charset=utf-8",
		b64("4242424242424242"), "id=" + b64("card 4111 1111 1111 1111 exp"),
		b64("987"), "cvc:" + b64("cvc 987") + ";", b64("x987"), b64("xx987"),
		"1234567890123456789012345678901234567890",
	}
	for _, cvc := range []string{"", "987"} {
		s := scanner{pan: []byte("4242424242424242"), cvc: []byte(cvc)}
		for _, text := range texts {
			for n := 0; n <= len(text); n++ {
				src := []byte(text[:n])
				if s.maskBase64RunsIn(nil, src) && !s.hasBase64Candidate(src) {
					t.Errorf("cvc %q: %q: a run masks, but no candidate was seen", cvc, src)
				}
			}
		}
	}
}
