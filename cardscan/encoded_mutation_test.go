package cardscan

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

// Found by mutation testing (docs/mutation.md): base64 and hex runs at the
// length bounds of stage 3, and inputs with more than one run to mask.

// b64 is the standard base64 of s.
func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// stars is n '*'.
func stars(n int) string { return strings.Repeat("*", n) }

func TestEncodedRunsAtTheBounds(t *testing.T) {
	own := NewSecrets("4242424242424242", "737")
	cvc16 := b64(`{"cvc":"737"`) // exactly minB64Run characters
	if len(cvc16) != minB64Run {
		t.Fatalf("fixture: %q is %d characters, want %d", cvc16, len(cvc16), minB64Run)
	}
	cvc4 := b64("737") // exactly minB64RunCVC characters
	tests := []struct {
		name string
		in   string
		want string
	}{
		// A run of exactly 16 characters, before the first byte the run
		// search looks at (offset 15) and just after it.
		{"16 characters at the start", cvc16, stars(16)},
		{"16 characters at offset 1", " " + cvc16 + " ok", " " + stars(16) + " ok"},
		{"16 characters at offset 15", strings.Repeat(".", 15) + cvc16, strings.Repeat(".", 15) + stars(16)},
		// Exactly 16 hex digits (not all decimal): "cvc=737;".
		{"16 hex digits", "6376633d3733373b", stars(16)},
		// A bare base64 CVC: 4 characters.
		{"4 characters", `{"cvc":"` + cvc4 + `"}`, `{"cvc":"****"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(own.Redact(nil, []byte(tt.in))); got != tt.want {
				t.Errorf("Secrets.Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// Redact masks every run that holds card data, not only the first.
func TestEveryBase64RunMasked(t *testing.T) {
	own := NewSecrets("4242424242424242", "737")
	a, b := b64("card 4242424242424242"), b64("card 5555555555554444")
	cvc4 := b64("737")
	tests := []struct {
		name   string
		redact func(dst, src []byte) []byte
		in     string
		want   string
	}{
		{"two card runs", Redact,
			`{"a":"` + a + `","b":"` + b + `"}`,
			`{"a":"` + stars(len(a)) + `","b":"` + stars(len(b)) + `"}`},
		{"two CVC runs", own.Redact,
			`{"a":"` + cvc4 + `","b":"` + cvc4 + `"}`,
			`{"a":"****","b":"****"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(tt.redact(nil, []byte(tt.in))); got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// Hex wrapped over lines is one stretch: the line break, LF or CRLF, does
// not cut the card's hex in two (which would leave the first line's
// digits readable).
func TestHexStretchAcrossLineBreaks(t *testing.T) {
	h := hex.EncodeToString([]byte("x:4242424242424242"))
	for _, br := range []string{"\n", "\r\n", "\r"} {
		in := "id=" + h[:16] + br + h[16:] + " ok"
		want := "id=" + stars(16) + br + stars(len(h)-16) + " ok"
		if got := string(Redact(nil, []byte(in))); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// A hex stretch is decoded from its first digit: the card's hex at the
// very start of a stretch is read whole.
func TestHexStretchFromItsFirstDigit(t *testing.T) {
	h := hex.EncodeToString([]byte("4242424242424242z"))
	in := "id=" + h + " ok"
	want := "id=" + stars(len(h)) + " ok"
	if got := string(Redact(nil, []byte(in))); got != want {
		t.Errorf("Redact(%q) = %q, want %q", in, got, want)
	}
}

// A hex stretch shorter than the run minimum is not decoded as hex, even
// after other characters of a long base64 run: the CVC's hex in it is
// masked by stage 2 alone, not the whole run.
func TestShortHexStretchNotDecoded(t *testing.T) {
	own := NewSecrets("4242424242424242", "737")
	in := strings.Repeat("z", 16) + "3d373337"
	want := strings.Repeat("z", 16) + "3d******"
	if got := string(own.Redact(nil, []byte(in))); got != want {
		t.Errorf("Secrets.Redact(%q) = %q, want %q", in, got, want)
	}
}

// Decoded text longer than the 4 KB window is checked in pieces; a card
// at a piece's edge is found whole: right before the last cut point, across
// the window's end where there is no cut point (the overlap), and in a run
// mixing ASCII and fullwidth digits.
func TestDecodedWindowEdges(t *testing.T) {
	// 'Z' ends every run and escape (a cut point); 'b', a hex digit, does not.
	const z, b = "Z", "b"
	tests := []struct {
		name, text string
	}{
		{"card right before the last cut point", strings.Repeat(z, 3000) + "5555555555554444" + "Z" + strings.Repeat(b, 1200)},
		{"card across the window's end, no cut point", strings.Repeat(z, 100) + strings.Repeat(b, windowSize-100-6) + "4242424242424242" + strings.Repeat(b, 100)},
		{"mixed-width card before ASCII", strings.Repeat(z, 3500) + "4242 4242 ４２４２ 4242" + strings.Repeat(b, 700)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := b64(tt.text)
			in := "x " + run + " y"
			want := "x " + stars(len(strings.TrimRight(run, "="))) + run[len(strings.TrimRight(run, "=")):] + " y"
			if got := string(Redact(nil, []byte(in))); got != want {
				t.Errorf("Redact(base64 of %d bytes) leaves the run readable", len(tt.text))
			}
		})
	}
}

// A UTF-16 body of fullwidth digits holds no NUL byte: its byte order mark
// alone marks it as UTF-16, in either byte order, and each fullwidth digit
// reads as its digit.
func TestUTF16FullwidthBehindABOM(t *testing.T) {
	const card = "４２４２４２４２４２４２４２４２" // 4242424242424242
	for _, big := range []bool{false, true} {
		in := utf16Bytes(card, big, true)
		if bytes.IndexByte(in, 0) >= 0 {
			t.Fatalf("fixture: %x holds a NUL byte", in)
		}
		masked := strings.Repeat("*", 12) + "４２４２"
		want := utf16Bytes(masked, big, true)
		if got := Redact(nil, in); !bytes.Equal(got, want) {
			t.Errorf("Redact(%x) = %x, want %x (big endian: %v)", in, got, want, big)
		}
		if !Contains(in) {
			t.Errorf("Contains(%x) = false (big endian: %v)", in, big)
		}
	}
}

// UTF-16 code units at the edges of what narrow maps: the fullwidth 0 and
// 9, and the no-break space between groups.
func TestUTF16NarrowEdges(t *testing.T) {
	tests := []struct{ name, text, masked string }{
		{"fullwidth 0 and 9", "３０５６９３０００９０２０００４", strings.Repeat("*", 12) + "０００４"},
		{"no-break spaces", "4242\u00a04242\u00a04242\u00a04242", "****\u00a0****\u00a0****\u00a04242"},
	}
	for _, tt := range tests {
		for _, big := range []bool{false, true} {
			in, want := utf16Bytes(tt.text, big, true), utf16Bytes(tt.masked, big, true)
			if got := Redact(nil, in); !bytes.Equal(got, want) {
				t.Errorf("%s: Redact(%x) = %x, want %x (big endian: %v)", tt.name, in, got, want, big)
			}
		}
	}
}

// A digit run in decoded text is judged whole, as the text scan judges it,
// not from a window's arbitrary start: the window cuts at a byte that ends
// every run, and falls back to an overlap only when it finds none. Here
// the run "1" + 4242424242424242 is no card by the text rules (the group
// fails Luhn), and it starts where an overlap would cut it, one digit in.
func TestDecodedWindowCutsBetweenRuns(t *testing.T) {
	const run = "14242424242424242"
	if Contains([]byte("x " + run + " y")) {
		t.Fatalf("fixture: %s reads as a card", run)
	}
	start := windowSize - windowOverlap - 1 // an overlap piece starts 1 digit in
	tests := []struct{ name, text string }{
		{"cut point right before the run", strings.Repeat("Z", start) + run + strings.Repeat("b", 700)},
		{"cut point at the middle of the window", strings.Repeat("Z", windowSize/2+1) + strings.Repeat("b", start-windowSize/2-1) + run + strings.Repeat("b", 700)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := "x " + b64(tt.text) + " y"
			if got := string(Redact(nil, []byte(in))); got != in {
				t.Errorf("Redact(base64 of %d bytes) masked a run that holds no card", len(tt.text))
			}
		})
	}
}
