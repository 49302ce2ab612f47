package cardscan

import (
	"encoding/hex"
	"testing"
)

// Found by mutation testing (docs/mutation.md): the forwarded number's
// length bounds and digit check in NewSecrets, the own-number rule on
// escaped digits, and the tail check of a base64 needle.

// A Secrets keeps numbers of 13 to 19 digits, and nothing else: its own
// hex needle (stage 2) masks the hex of a kept number whole, which plain
// Redact leaves partly readable; a number that is not all digits is left
// out, and the Secrets masks what plain Redact does.
func TestNewSecretsKeepsOnlyCardNumbers(t *testing.T) {
	tests := []struct {
		name   string
		number string
		in     string
		want   string // "": the same as plain Redact
	}{
		{"13 digits", "4222222222222", "n=x" + hex.EncodeToString([]byte("4222222222222")) + "x", "n=x" + stars(26) + "x"},
		{"19 digits", "6304000000000000000", "n=x" + hex.EncodeToString([]byte("6304000000000000000")) + "x", "n=x" + stars(38) + "x"},
		// "3a" is the hex of ':', and the needle of a number with an 'a'.
		{"not all digits", "42222a2222222", "n=x" + hex.EncodeToString([]byte("42222:2222222")) + "x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			own := NewSecrets(tt.number, "")
			want := tt.want
			if want == "" {
				want = string(Redact(nil, []byte(tt.in)))
			}
			if got := string(own.Redact(nil, []byte(tt.in))); got != want {
				t.Errorf("Secrets.Redact(%q) = %q, want %q", tt.in, got, want)
			}
		})
	}
}

// The forwarded number glued to another digit and written with one digit
// percent-escaped is in no fixed encoding and no card by the text rules
// (the group fails Luhn); the own-number rule alone masks it, escapes
// included, but for its last four digits.
func TestOwnNumberGluedWithAnEscapedDigit(t *testing.T) {
	own := NewSecrets("4242424242424242", "")
	in := "n=94242%342424242424242"
	if got := string(Redact(nil, []byte(in))); got != in {
		t.Fatalf("fixture: Redact(%q) = %q, want it unchanged", in, got)
	}
	want := "n=*****%2A*********42**"
	if got := string(own.Redact(nil, []byte(in))); got != want {
		t.Errorf("Secrets.Redact(%q) = %q, want %q", in, got, want)
	}
}

// A number that differs from the forwarded one only in the low bits of its
// last digit, which the base64 needle leaves to the next character, is not
// taken for it; the forwarded number itself is masked.
func TestBase64NeedleChecksTheLastDigitsLowBits(t *testing.T) {
	tests := []struct {
		pan, in, want string
	}{
		// The low bits differ: 2 (0b10) and 0, 4 (0b00) and 5 (0b01).
		{"4242424242424242", b64("4242424242424240"), b64("4242424242424240")},
		{"5555555555554444", b64("5555555555554445"), b64("5555555555554445")},
		{"4242424242424242", b64("4242424242424242"), stars(22) + "=="},
		{"5555555555554444", b64("5555555555554444"), stars(22) + "=="},
	}
	for _, tt := range tests {
		own := NewSecrets(tt.pan, "")
		if got := string(own.Redact(nil, []byte(tt.in))); got != tt.want {
			t.Errorf("NewSecrets(%s).Redact(%q) = %q, want %q", tt.pan, tt.in, got, tt.want)
		}
	}
}

// Every stage 2 rule runs, also after the byte-by-byte reading found the
// number: here the CVC's hex after the number in text.
func TestNeedlesAfterALooseMatch(t *testing.T) {
	own := NewSecrets("4242424242424242", "737")
	in := "a=4242 4242 4242 4242 b=373337"
	want := "a=**** **** **** 4242 b=******"
	if got := string(own.Redact(nil, []byte(in))); got != want {
		t.Errorf("Secrets.Redact(%q) = %q, want %q", in, got, want)
	}
}

// The byte-by-byte reading masks all but the last four digits, and joins
// digits over at most three separators.
func TestLooseReadingBounds(t *testing.T) {
	own := NewSecrets("4242424242424242", "")
	tests := []struct{ in, want string }{
		// The text scan reads "%42" as 'B' and masks only the 14 digits
		// after it; read byte by byte, the number starts at the "42".
		{"100%4242424242424242", "100%************4242"},
		{"4242    4242    4242    4242", "4242    4242    4242    4242"},
	}
	for _, tt := range tests {
		if got := string(own.Redact(nil, []byte(tt.in))); got != tt.want {
			t.Errorf("Secrets.Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// The CVC's hex is masked at the very start of the text too, exactly, and
// wherever it appears again.
func TestCVCHexAtTheStart(t *testing.T) {
	own := NewSecrets("378282246310005", "1234")
	for _, tt := range []struct{ in, want string }{
		{"31323334", "********"},
		{"31323334 x", "******** x"},
		{"31323334 x 31323334", "******** x ********"},
		// At an even offset of a hex run (here 2), not only at its start.
		{"ab31323334", "ab********"},
	} {
		if got := string(own.Redact(nil, []byte(tt.in))); got != tt.want {
			t.Errorf("Secrets.Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A four-digit CVC's hex needle fits its fixed buffer: Secrets.Redact of a
// body holding it allocates nothing, as with a three-digit CVC
// (TestRedactAllocationBudget).
func TestFourDigitCVCAllocatesNothing(t *testing.T) {
	own := NewSecrets("378282246310005", "1234")
	in := []byte(`{"id":"ch_1","c":"31323334","note":"ok"}`)
	dst := make([]byte, 0, len(in))
	if got := testing.AllocsPerRun(20, func() { dst = own.Redact(dst[:0], in) }); got != 0 {
		t.Errorf("Secrets.Redact with a four-digit CVC: %v allocations, want 0", got)
	}
}
