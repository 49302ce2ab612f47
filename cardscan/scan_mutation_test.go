package cardscan

import "testing"

// Found by mutation testing (docs/mutation.md): nothing held a card of
// exactly minCardDigits digits in the two places that count digits
// themselves.

// A 13-digit card whose last group runs on into more digits, past 19 in
// all, is found by the glued-candidate rule alone: no whole-group
// candidate is a card.
func TestGluedThirteenDigitCard(t *testing.T) {
	for _, in := range []string{
		"4222 2222 2222 21234567",
		"4222-2222-2222-2000000",
	} {
		if !Contains([]byte(in)) {
			t.Errorf("Contains(%q) = false, want true: it holds 4222222222222", in)
		}
		if got := string(Redact(nil, []byte(in))); got[:4] != "****" {
			t.Errorf("Redact(%q) = %q, want the 13-digit card masked", in, got)
		}
	}
}

// IsCardNumber at the digit-count bounds.
func TestIsCardNumberBounds(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"4222222222222", true},         // 13 digits, Luhn-valid
		{"4222-2222-2222-2", true},      // the same with separators
		{"422222222222", false},         // 12 digits
		{"6304000000000000000", true},   // 19 digits
		{"63040000000000000000", false}, // 20 digits
	}
	for _, tt := range tests {
		if got := IsCardNumber(tt.in); got != tt.want {
			t.Errorf("IsCardNumber(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
