package cardscan

import "testing"

// Found by mutation testing (docs/mutation.md): the token reader at the
// end of its input.

// A body that ends in the first bytes of a fullwidth digit (a UTF-8
// sequence cut short) is read without running past its end.
func TestTruncatedFullwidthDigitAtTheEnd(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"\xef\xbc", "\xef\xbc"},
		{"\xef", "\xef"},
		{"n=4242424242424242 \xef\xbc", "n=************4242 \xef\xbc"},
	}
	for _, tt := range tests {
		if got := string(Redact(nil, []byte(tt.in))); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
