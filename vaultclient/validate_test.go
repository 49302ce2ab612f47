package vaultclient

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cardgate/cardgate/cardscan"
)

func TestValidate(t *testing.T) {
	ok := CardInput{Number: "4242424242424242", ExpMonth: 12, ExpYear: 2030, CVC: "123"}
	with := func(f func(*CardInput)) CardInput { in := ok; f(&in); return in }
	tests := []struct {
		name string
		in   CardInput
		code string // "" means valid
	}{
		{"valid", ok, ""},
		{"no cvc", with(func(c *CardInput) { c.CVC = "" }), ""},
		{"spaces", with(func(c *CardInput) { c.Number = "4242 4242 4242 4242" }), ""},
		{"dashes", with(func(c *CardInput) { c.Number = "4242-4242-4242-4242" }), ""},
		{"13 digits", with(func(c *CardInput) { c.Number = "4222222222222" }), ""},
		{"19 digits", with(func(c *CardInput) { c.Number = "6205500000000000004"; c.CVC = "123" }), ""},
		{"amex 4-digit cvc", CardInput{Number: "378282246310005", ExpMonth: 1, ExpYear: 2030, CVC: "1234"}, ""},
		{"name", with(func(c *CardInput) { c.Name = "  Zoë O'Brien-Ångström  " }), ""},
		{"valid through end of expiry month", with(func(c *CardInput) { c.ExpMonth, c.ExpYear = 3, 2026 }), ""},

		{"empty number", with(func(c *CardInput) { c.Number = "" }), CodeInvalidCardNumber},
		{"bad luhn", with(func(c *CardInput) { c.Number = "4242424242424241" }), CodeInvalidCardNumber},
		{"12 digits", with(func(c *CardInput) { c.Number = "424242424242" }), CodeInvalidCardNumber},
		{"20 digits", with(func(c *CardInput) { c.Number = "42424242424242424242" }), CodeInvalidCardNumber},
		{"letters", with(func(c *CardInput) { c.Number = "4242x24242424242" }), CodeInvalidCardNumber},
		{"dots", with(func(c *CardInput) { c.Number = "4242.4242.4242.4242" }), CodeInvalidCardNumber},
		{"tab", with(func(c *CardInput) { c.Number = "4242\t4242424242424242" }), CodeInvalidCardNumber},
		{"fullwidth digits", with(func(c *CardInput) { c.Number = "４２４２４２４２４２４２４２４２" }), CodeInvalidCardNumber},
		{"oversized input", with(func(c *CardInput) { c.Number = "4242424242424242" + strings.Repeat(" ", 100) }), CodeInvalidCardNumber},
		{"month 0", with(func(c *CardInput) { c.ExpMonth = 0 }), CodeInvalidExpiry},
		{"month 13", with(func(c *CardInput) { c.ExpMonth = 13 }), CodeInvalidExpiry},
		{"two-digit year", with(func(c *CardInput) { c.ExpYear = 30 }), CodeInvalidExpiry},
		{"five-digit year", with(func(c *CardInput) { c.ExpYear = 20300 }), CodeInvalidExpiry},
		{"too far ahead", with(func(c *CardInput) { c.ExpYear = 2047 }), CodeInvalidExpiry},
		{"expired last month", with(func(c *CardInput) { c.ExpMonth, c.ExpYear = 2, 2026 }), CodeCardExpired},
		{"expired last year", with(func(c *CardInput) { c.ExpMonth, c.ExpYear = 12, 2025 }), CodeCardExpired},
		{"cvc letters", with(func(c *CardInput) { c.CVC = "12a" }), CodeInvalidCVC},
		{"cvc 2 digits", with(func(c *CardInput) { c.CVC = "12" }), CodeInvalidCVC},
		{"cvc 4 digits for visa", with(func(c *CardInput) { c.CVC = "1234" }), CodeInvalidCVC},
		{"cvc 3 digits for amex", CardInput{Number: "378282246310005", ExpMonth: 1, ExpYear: 2030, CVC: "123"}, CodeInvalidCVC},
		{"cvc 5 digits", with(func(c *CardInput) { c.CVC = "12345" }), CodeInvalidCVC},
		{"cvc spaces", with(func(c *CardInput) { c.CVC = " 123" }), CodeInvalidCVC},
		{"name too long", with(func(c *CardInput) { c.Name = strings.Repeat("a", MaxNameBytes+1) }), CodeInvalidName},
		{"name newline", with(func(c *CardInput) { c.Name = "Jane\nlevel=ERROR" }), CodeInvalidName},
		{"name control", with(func(c *CardInput) { c.Name = "Jane\x00" }), CodeInvalidName},
		{"name invalid utf-8", with(func(c *CardInput) { c.Name = "Jane\xff" }), CodeInvalidName},
		{"name is a card number", with(func(c *CardInput) { c.Name = "4111111111111111" }), CodeInvalidName},
		{"name holds a spaced card number", with(func(c *CardInput) { c.Name = "Jane 4111 1111 1111 1111" }), CodeInvalidName},
		{"name holds a dashed card number", with(func(c *CardInput) { c.Name = "4111-1111-1111-1111" }), CodeInvalidName},
		{"name holds a dotted card number", with(func(c *CardInput) { c.Name = "Jane Q. 5555.5555.5555.4444" }), CodeInvalidName},
		{"name holds an amex number", with(func(c *CardInput) { c.Name = "Ref 3782 822463 10005" }), CodeInvalidName},
		{"name holds the card's own number", with(func(c *CardInput) { c.Name = "Jane " + c.Number }), CodeInvalidName},
		{"name holds fullwidth digits", with(func(c *CardInput) { c.Name = "Jane ４１１１１１１１１１１１１１１１" }), CodeInvalidName},
		{"name holds a long digit run", with(func(c *CardInput) { c.Name = "Jane 123456789012345678901" }), CodeInvalidName},
		{"name with a short number", with(func(c *CardInput) { c.Name = "Jane Doe 3rd, flat 12, 221B" }), ""},
		{"name with a 16-digit run that fails luhn", with(func(c *CardInput) { c.Name = "Jane 4111111111111112" }), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := validate(tt.in, testNow)
			if got := code(err); got != tt.code {
				t.Fatalf("validate(%s) code = %q (%v), want %q", tt.name, got, err, tt.code)
			}
			if err != nil {
				assertErrorSafe(t, err, tt.in)
				return
			}
			defer c.wipe()
			if strings.ContainsAny(string(c.number), " -") {
				t.Errorf("number not normalised")
			}
		})
	}
}

// assertErrorSafe checks that an error names no card data from in, and
// names the field it is about.
func assertErrorSafe(t *testing.T, err error, in CardInput) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is %T, want *Error", err, err)
	}
	digits := strings.NewReplacer(" ", "", "-", "").Replace(in.Number)
	for _, msg := range []string{err.Error(), e.PublicMessage()} {
		for _, secret := range []string{in.Number, digits, in.CVC, in.Name} {
			if len(secret) >= 3 && strings.Contains(msg, secret) {
				t.Errorf("error %q contains card data %q", msg, secret)
			}
		}
		if !strings.HasPrefix(err.Error(), "vaultclient: ") {
			t.Errorf("error %q lacks the package prefix", err.Error())
		}
	}
	field := map[string]string{
		CodeInvalidCardNumber: "number", CodeInvalidExpiry: "exp_", CodeCardExpired: "expired",
		CodeInvalidCVC: "cvc", CodeInvalidName: "name",
	}[e.Code]
	if !strings.Contains(e.PublicMessage(), field) {
		t.Errorf("message %q does not name the field (%q)", e.PublicMessage(), field)
	}
}

// TestTokenizeRejectsWithoutStoring runs validation through the Vault: a
// refused card must leave nothing in the store and call no key backend.
func TestTokenizeRejectsWithoutStoring(t *testing.T) {
	keys, _ := newTestKeyring(t)
	s := newTestBolt(t)
	boom := errors.New("key backend must not be called")
	v := newTestVault(t, s, faultyKeyer{Keyer: keys, encryptErr: boom, fingerprintErr: boom}, Options{})
	in := CardInput{Number: "4242424242424241", ExpMonth: 12, ExpYear: 2030, CVC: "123"}
	if _, err := v.Tokenize(context.Background(), in); code(err) != CodeInvalidCardNumber {
		t.Fatalf("Tokenize(bad luhn) = %v, want %s", err, CodeInvalidCardNumber)
	}
	assertBoltEmpty(t, s)
}

// TestTokenizeRefusesCardInName: a card number smuggled into the name is
// refused before any key backend call or store write, with an error that
// says which field and holds none of the value.
func TestTokenizeRefusesCardInName(t *testing.T) {
	keys, _ := newTestKeyring(t)
	s := newTestBolt(t)
	boom := errors.New("key backend must not be called")
	v := newTestVault(t, s, faultyKeyer{Keyer: keys, encryptErr: boom, fingerprintErr: boom}, Options{})
	for _, name := range []string{"4111111111111111", "Jane 4111 1111 1111 1111", "4111-1111-1111-1111"} {
		in := CardInput{Number: "4242424242424242", ExpMonth: 12, ExpYear: 2030, CVC: "123", Name: name}
		_, err := v.Tokenize(context.Background(), in)
		if code(err) != CodeInvalidName || !errors.Is(err, ErrCardInFreeText) {
			t.Errorf("Tokenize(name %q) = %v, want %s wrapping ErrCardInFreeText", name, err, CodeInvalidName)
			continue
		}
		assertErrorSafe(t, err, in)
		for _, msg := range []string{err.Error(), err.(*Error).PublicMessage()} {
			if strings.Contains(msg, "1111") {
				t.Errorf("error %q quotes the name", msg)
			}
		}
	}
	assertBoltEmpty(t, s)
}

func TestExpired(t *testing.T) {
	tests := []struct {
		month, year int
		now         time.Time
		want        bool
	}{
		{3, 2026, time.Date(2026, 3, 31, 23, 59, 59, 999999999, time.UTC), false},
		{3, 2026, time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), true},
		{12, 2026, time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC), false},
		{12, 2026, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), true},
		// The boundary is UTC whatever the clock's zone.
		{3, 2026, time.Date(2026, 3, 31, 20, 0, 0, 0, time.FixedZone("EST", -5*3600)), true},
	}
	for _, tt := range tests {
		if got := expired(tt.month, tt.year, tt.now); got != tt.want {
			t.Errorf("expired(%d, %d, %v) = %v, want %v", tt.month, tt.year, tt.now, got, tt.want)
		}
	}
}

func TestDetectBrand(t *testing.T) {
	tests := []struct{ number, want string }{
		{"4242424242424242", BrandVisa},
		{"4000056655665556", BrandVisa},
		{"5555555555554444", BrandMastercard},
		{"5105105105105100", BrandMastercard},
		{"2223003122003222", BrandMastercard},
		{"2720990000000007", BrandMastercard},
		{"2721000000000004", BrandUnknown},
		{"378282246310005", BrandAmex},
		{"371449635398431", BrandAmex},
		{"6011111111111117", BrandDiscover},
		{"6445644564456445", BrandDiscover},
		{"6500000000000002", BrandDiscover},
		{"3566002020360505", BrandJCB},
		{"3530111333300000", BrandJCB},
		{"36227206271667", BrandDiners},
		{"3056930009020004", BrandDiners},
		{"6200000000000005", BrandUnionPay},
		{"8171999927660000", BrandUnionPay},
		{"9999999999999995", BrandUnknown},
	}
	for _, tt := range tests {
		if got := detectBrand([]byte(tt.number)); got != tt.want {
			t.Errorf("detectBrand(%s) = %q, want %q", tt.number, got, tt.want)
		}
	}
}

// TestLuhn checks the shared Luhn check on this package's test cards.
func TestLuhn(t *testing.T) {
	for _, c := range testCards {
		if !cardscan.Luhn([]byte(c.digits)) {
			t.Errorf("cardscan.Luhn(%s) = false, want true", c.digits)
		}
	}
	for _, n := range []string{"4242424242424241", "1234567812345678", "378282246310006"} {
		if cardscan.Luhn([]byte(n)) {
			t.Errorf("cardscan.Luhn(%s) = true, want false", n)
		}
	}
}

func TestToken(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		tok := newToken()
		if !ValidToken(tok) {
			t.Fatalf("ValidToken(newToken() = %q) = false", tok)
		}
		if seen[tok] {
			t.Fatalf("newToken repeated %q", tok)
		}
		seen[tok] = true
	}
	good := newToken()
	if ok := "tok_" + strings.Repeat("a", 20) + strings.Repeat("2", 12); !ValidToken(ok) {
		t.Errorf("ValidToken(%q) = false, want true: 12 digits in a row are allowed", ok)
	}
	for _, bad := range []string{
		"", "tok_", "tok_" + strings.Repeat("a", 31), "tok_" + strings.Repeat("a", 33),
		"TOK_" + good[4:], "tok_" + strings.ToUpper(good[4:]), "tkn_" + good[4:],
		"tok_" + strings.Repeat("a", 31) + "1", "tok_" + strings.Repeat("a", 31) + "*",
		"tok_" + strings.Repeat("a", 31) + "}", good + "\n",
		// A card number spelled with the token's digits is not a token.
		"tok_4242424242424242" + strings.Repeat("a", 16), "tok_" + strings.Repeat("a", 19) + strings.Repeat("2", 13),
	} {
		if ValidToken(bad) {
			t.Errorf("ValidToken(%q) = true, want false", bad)
		}
	}
}
