package client

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// CardNumber is a primary account number. Every way of printing it (fmt,
// slog, encoding/json, encoding.TextMarshaler) shows only its last four
// digits, and those only when it has at least 13 digits:
// "************4242". Only Tokenize sends the digits, in its request body.
type CardNumber string

// String returns the masked number.
func (n CardNumber) String() string { return maskNumber(string(n)) }

// GoString returns the masked number, for %#v.
func (n CardNumber) GoString() string { return strconv.Quote(n.String()) }

// Format prints the masked number for every verb.
func (n CardNumber) Format(f fmt.State, verb rune) { formatMasked(f, verb, n.String()) }

// LogValue returns the masked number.
func (n CardNumber) LogValue() slog.Value { return slog.StringValue(n.String()) }

// MarshalText returns the masked number.
func (n CardNumber) MarshalText() ([]byte, error) { return []byte(n.String()), nil }

// MarshalJSON returns the masked number as a JSON string.
func (n CardNumber) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(n.String())), nil }

// CVC is a card verification code. It prints as "***" when set and as ""
// when empty, whatever the verb or encoder.
type CVC string

// String returns the mask.
func (c CVC) String() string {
	if c == "" {
		return ""
	}
	return "***"
}

// GoString returns the mask, for %#v.
func (c CVC) GoString() string { return strconv.Quote(c.String()) }

// Format prints the mask for every verb.
func (c CVC) Format(f fmt.State, verb rune) { formatMasked(f, verb, c.String()) }

// LogValue returns the mask.
func (c CVC) LogValue() slog.Value { return slog.StringValue(c.String()) }

// MarshalText returns the mask.
func (c CVC) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// MarshalJSON returns the mask as a JSON string.
func (c CVC) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(c.String())), nil }

// Card is a card to tokenize. Printing it in any way shows the masked
// number and whether the other fields are set, never their values:
// expiry and cardholder name are card data too.
type Card struct {
	Number   CardNumber // 13–19 digits; spaces and dashes are ignored by the gateway
	ExpMonth int        // 1–12
	ExpYear  int        // four digits
	CVC      CVC        // optional; the gateway keeps it for cards.cvc_ttl and deletes it at first use
	Name     string     // optional cardholder name
}

// String returns the masked card.
func (c Card) String() string {
	set := func(ok bool) string {
		if ok {
			return "[set]"
		}
		return "[empty]"
	}
	return "client.Card{Number:" + c.Number.String() +
		" Expiry:" + set(c.ExpMonth != 0 || c.ExpYear != 0) +
		" CVC:" + set(c.CVC != "") +
		" Name:" + set(c.Name != "") + "}"
}

// GoString returns the masked card, for %#v.
func (c Card) GoString() string { return c.String() }

// Format prints the masked card for every verb.
func (c Card) Format(f fmt.State, verb rune) { formatMasked(f, verb, c.String()) }

// LogValue returns the masked card.
func (c Card) LogValue() slog.Value { return slog.StringValue(c.String()) }

// MarshalText returns the masked card.
func (c Card) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// MarshalJSON returns the masked card as a JSON string; the request body
// is encoded from cardInput instead.
func (c Card) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(c.String())), nil }

// cardInput is the wire form of POST /v1/cards (CardInput in openapi.yaml).
type cardInput struct {
	Number   string `json:"number"`
	ExpMonth int    `json:"exp_month"`
	ExpYear  int    `json:"exp_year"`
	CVC      string `json:"cvc,omitempty"`
	Name     string `json:"name,omitempty"`
}

func (c Card) wire() cardInput {
	return cardInput{Number: string(c.Number), ExpMonth: c.ExpMonth, ExpYear: c.ExpYear, CVC: string(c.CVC), Name: c.Name}
}

// maskNumber keeps the last four digits of a number with 13 or more and
// replaces every other digit with '*'; anything else is dropped, so a
// malformed input cannot print whole.
func maskNumber(s string) string {
	var digits []byte
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			digits = append(digits, s[i])
		}
	}
	defer clear(digits)
	if len(digits) < 13 {
		return strings.Repeat("*", len(digits))
	}
	return strings.Repeat("*", len(digits)-4) + string(digits[len(digits)-4:])
}

// formatMasked writes s for any verb: %q quotes it, %x and %X print it in
// hex (of the mask), and width and flags apply as for a string.
func formatMasked(f fmt.State, verb rune, s string) {
	switch verb {
	case 'q', 'x', 'X', 's', 'v':
	default:
		verb = 's'
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), s)
}
