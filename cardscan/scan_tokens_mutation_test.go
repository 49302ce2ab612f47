package cardscan

import (
	"fmt"
	"strings"
	"testing"
)

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

// jsonEscaped spells every rune of s as a JSON \u escape.
func jsonEscaped(s string) string {
	var b strings.Builder
	for _, r := range s {
		fmt.Fprintf(&b, `\u%04x`, r)
	}
	return b.String()
}

// fullwidth spells the ASCII digits of s as fullwidth digits.
func fullwidth(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r - '0' + 0xFF10
		}
		return r
	}, s)
}

// Each digit and separator token at the edges of its range: the digits 0
// and 9 raw, fullwidth, JSON-escaped and JSON-escaped fullwidth, and the
// no-break space and an escaped ASCII separator between groups.
func TestTokenRangeEdges(t *testing.T) {
	const fwMask, jsonMask = "\uFF0A", `\u002a`
	tests := []struct {
		name, in, want string
	}{
		{"fullwidth 0", fullwidth("4000056655665556"), strings.Repeat(fwMask, 12) + fullwidth("5556")},
		{"fullwidth 9", fullwidth("3056930009020004"), strings.Repeat(fwMask, 12) + fullwidth("0004")},
		{"escaped 0 and 9", jsonEscaped("3056930009020004"), strings.Repeat(jsonMask, 12) + jsonEscaped("0004")},
		{"escaped fullwidth 0", jsonEscaped(fullwidth("4000056655665556")), strings.Repeat(jsonMask, 12) + jsonEscaped(fullwidth("5556"))},
		{"escaped fullwidth 9", jsonEscaped(fullwidth("3056930009020004")), strings.Repeat(jsonMask, 12) + jsonEscaped(fullwidth("0004"))},
		{"no-break spaces", "4242\u00a04242\u00a04242\u00a04242", "****\u00a0****\u00a0****\u00a04242"},
		{"escaped no-break spaces", `4242\u00a04242\u00a04242\u00a04242`, `****\u00a0****\u00a0****\u00a04242`},
		{"escaped spaces", `4242\u00204242\u00204242\u00204242`, `****\u0020****\u0020****\u00204242`},
		{"escaped letters are no separators", `4242\u00414242\u00414242\u00414242`, `4242\u00414242\u00414242\u00414242`},
		{"a lone 0xC2 at the end", "4242424242424242 \xc2", "************4242 \xc2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(Redact(nil, []byte(tt.in))); got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
