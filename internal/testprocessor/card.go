package testprocessor

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"mime"
	"strconv"
)

// mm is a month as two digits, zero-padded: "03".
func mm(month int) string { return fmt.Sprintf("%02d", month) }

// yyyy is a year as four digits: "2031".
func yyyy(year int) string { return fmt.Sprintf("%04d", year) }

// yy is a year as its last two digits: "31".
func yy(year int) string { return fmt.Sprintf("%02d", year%100) }

// last4 is what a processor may show of a card number.
func last4(number string) string {
	if len(number) < 4 {
		return number
	}
	return number[len(number)-4:]
}

// brand names the card's network the way most processors spell it.
func brand(number string) string {
	switch {
	case number == "":
		return "unknown"
	case number[0] == '4':
		return "visa"
	case number[0] == '5' || number[0] == '2':
		return "mastercard"
	case len(number) > 1 && number[0] == '3' && (number[1] == '4' || number[1] == '7'):
		return "amex"
	}
	return "unknown"
}

// optional checks a field the card may or may not expect: an expected
// empty value means the field must be absent. It returns the reason for a
// mismatch, naming the field, never a value.
func optional(field, want, got string, present bool) string {
	switch {
	case want == "" && present:
		return field + " sent, but this payment expects none"
	case want != "" && !present:
		return field + " missing"
	case want != "" && got != want:
		return field + " is not the expected value"
	}
	return ""
}

// equalSecret compares a presented credential with the expected one in
// constant time, as a processor would.
func equalSecret(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// mediaType returns the media type of a Content-Type, or "" when it does
// not parse.
func mediaType(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return ""
	}
	return mt
}

// mustJSON marshals v, which is built by this package and always
// marshals.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("testprocessor: marshal: " + err.Error())
	}
	return b
}

// atoi parses a non-negative decimal number of at most 9 digits, or
// returns -1.
func atoi(s string) int {
	if s == "" || len(s) > 9 {
		return -1
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return -1
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return -1
		}
	}
	return n
}

func itoa(n int) string { return strconv.Itoa(n) }
