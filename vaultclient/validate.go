package vaultclient

import (
	"errors"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cardgate/cardgate/cardscan"
)

// Validation limits.
const (
	minPANLen = 13
	maxPANLen = 19
	// maxNumberInput bounds the raw number field, separators included, so
	// that a huge string is refused before any work is done on it.
	maxNumberInput = 64
	// MaxNameBytes bounds the cardholder name. Processors accept far less
	// (EMV tracks hold 26 characters); 128 bytes leaves room for UTF-8.
	MaxNameBytes = 128
	// maxExpiryYears is how far ahead an expiry may be. Issuers use 3–5
	// years; a larger value is almost surely a typo.
	maxExpiryYears = 20
)

// Brands that detectBrand returns.
const (
	BrandVisa       = "visa"
	BrandMastercard = "mastercard"
	BrandAmex       = "amex"
	BrandDiscover   = "discover"
	BrandJCB        = "jcb"
	BrandDiners     = "diners"
	BrandUnionPay   = "unionpay"
	BrandUnknown    = "unknown"
)

// validCard is a CardInput that passed validation. number and cvc are
// []byte so that they can be zeroed once sealed.
type validCard struct {
	number   []byte // digits only
	expMonth int
	expYear  int
	cvc      []byte // nil when none was given
	name     string
	brand    string
}

func (c *validCard) wipe() {
	clear(c.number)
	clear(c.cvc)
}

// validate checks in and returns it normalised. The decisions, and why:
//   - number: ASCII spaces and dashes are removed (people paste "4242 4242 …"),
//     anything else that is not an ASCII digit is refused; then 13–19 digits
//     and the Luhn check.
//   - exp_year must have four digits: a two-digit year is ambiguous, and
//     the forwarder renders the year as stored. Up to 20 years ahead.
//   - the card is valid through the last instant of its expiry month, in
//     UTC, as of now.
//   - cvc is optional; when given it must be 4 digits for Amex, 3 for the
//     other known brands, and 3 or 4 for an unknown brand.
//   - name is optional, trimmed, at most MaxNameBytes of printable UTF-8,
//     and holds no card-like number (see checkFreeText).
//
// Messages name the field and never repeat the value.
func validate(in CardInput, now time.Time) (*validCard, error) {
	number, err := normalizeNumber(in.Number)
	if err != nil {
		return nil, err
	}
	c := &validCard{number: number, brand: detectBrand(number)}
	ok := false
	defer func() {
		if !ok {
			c.wipe()
		}
	}()

	if in.ExpMonth < 1 || in.ExpMonth > 12 {
		return nil, newError(CodeInvalidExpiry, "exp_month must be 1 to 12", nil)
	}
	if in.ExpYear < 1000 || in.ExpYear > 9999 {
		return nil, newError(CodeInvalidExpiry, "exp_year must have four digits", nil)
	}
	if in.ExpYear > now.UTC().Year()+maxExpiryYears {
		return nil, newError(CodeInvalidExpiry, "exp_year is too far in the future", nil)
	}
	if expired(in.ExpMonth, in.ExpYear, now) {
		return nil, newError(CodeCardExpired, "the card has expired (exp_month, exp_year)", nil)
	}
	c.expMonth, c.expYear = in.ExpMonth, in.ExpYear

	if in.CVC != "" {
		if err := checkCVC(in.CVC, c.brand); err != nil {
			return nil, err
		}
		c.cvc = []byte(in.CVC)
	}

	name := strings.TrimSpace(in.Name)
	if err := checkName(name); err != nil {
		return nil, err
	}
	if err := checkFreeText(name, CodeInvalidName, "name"); err != nil {
		return nil, err
	}
	c.name = name
	ok = true
	return c, nil
}

// numberError is the one error for every way a number can be wrong: which
// check failed (length, Luhn, a stray character) says something about the
// number, and this message must say nothing about it.
func numberError() error {
	return newError(CodeInvalidCardNumber, "number must be 13 to 19 digits and pass the Luhn check", nil)
}

// normalizeNumber strips spaces and dashes and checks length and Luhn.
func normalizeNumber(s string) ([]byte, error) {
	if len(s) > maxNumberInput {
		return nil, numberError()
	}
	digits := make([]byte, 0, maxPANLen)
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case b >= '0' && b <= '9':
			if len(digits) == maxPANLen {
				clear(digits)
				return nil, numberError()
			}
			digits = append(digits, b)
		case b == ' ' || b == '-':
		default:
			clear(digits)
			return nil, numberError()
		}
	}
	if len(digits) < minPANLen || !cardscan.Luhn(digits) {
		clear(digits)
		return nil, numberError()
	}
	return digits, nil
}

// expired reports whether a card valid through month/year has expired at
// now. The card is good until the first instant of the next month, UTC.
func expired(month, year int, now time.Time) bool {
	end := time.Date(year, time.Month(month)+1, 1, 0, 0, 0, 0, time.UTC)
	return !now.Before(end)
}

func checkCVC(cvc, brand string) error {
	for i := 0; i < len(cvc); i++ {
		if cvc[i] < '0' || cvc[i] > '9' {
			return newError(CodeInvalidCVC, "cvc must be digits only", nil)
		}
	}
	switch n := len(cvc); {
	case brand == BrandAmex && n != 4:
		return newError(CodeInvalidCVC, "cvc must be 4 digits for this card", nil)
	case brand != BrandAmex && brand != BrandUnknown && n != 3:
		return newError(CodeInvalidCVC, "cvc must be 3 digits for this card", nil)
	case n < 3 || n > 4:
		return newError(CodeInvalidCVC, "cvc must be 3 or 4 digits", nil)
	}
	return nil
}

func checkName(name string) error {
	if len(name) > MaxNameBytes {
		return newError(CodeInvalidName, "name is too long", nil)
	}
	if !utf8.ValidString(name) {
		return newError(CodeInvalidName, "name must be UTF-8", nil)
	}
	for _, r := range name {
		// unicode.IsPrint allows only U+0020 as a space, so tabs,
		// newlines (log injection) and other controls are refused.
		if !unicode.IsPrint(r) {
			return newError(CodeInvalidName, "name must contain printable characters only", nil)
		}
	}
	return nil
}

// ErrCardInFreeText is wrapped by the error that refuses a free-text field
// holding a card-like number. Its text names no value.
var ErrCardInFreeText = errors.New("vaultclient: free-text field holds a card-like number")

// checkFreeText refuses a card-like number in a free-text field: any
// Luhn-valid run of 13–19 digits, with or without separators ("Jane 4111
// 1111 1111 1111", "4111-1111-1111-1111"), or a run of more than 19, as
// cardscan reads them. A free-text field is sent to entries that may
// receive it without the number (fields: [name]): a card number hidden in
// it would reach a processor that was never allowed to get one. The error
// names the field (field) and never the value.
func checkFreeText(s, code, field string) error {
	if cardscan.ContainsString(s) {
		return newError(code, field+" must not hold a card number or any card-like digit run", ErrCardInFreeText)
	}
	return nil
}

// detectBrand maps the issuer identification number to a brand. The
// ranges follow the networks' published IIN tables; a number that matches
// none is "unknown", which is not an error.
func detectBrand(d []byte) string {
	p := func(n int) int { // the first n digits as an integer
		v := 0
		for i := 0; i < n && i < len(d); i++ {
			v = v*10 + int(d[i]-'0')
		}
		return v
	}
	switch {
	case d[0] == '4':
		return BrandVisa
	case p(2) >= 51 && p(2) <= 55, p(4) >= 2221 && p(4) <= 2720:
		return BrandMastercard
	case p(2) == 34, p(2) == 37:
		return BrandAmex
	case p(4) == 6011, p(3) >= 644 && p(3) <= 649, p(2) == 65:
		return BrandDiscover
	case p(4) >= 3528 && p(4) <= 3589:
		return BrandJCB
	case p(3) >= 300 && p(3) <= 305, p(3) == 309, p(2) == 36, p(2) == 38, p(2) == 39:
		return BrandDiners
	case p(2) == 62, p(2) == 81:
		return BrandUnionPay
	}
	return BrandUnknown
}
