package vaultclient

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
)

// Card is a detokenized card. Its secret fields mask themselves when
// printed, logged or marshalled; only Reveal gives the digits.
type Card struct {
	Token    string
	Number   PAN
	ExpMonth int // 1–12
	ExpYear  int // four digits
	// CVC is set only by DetokenizeConsumingCVC, and only when a CVC was
	// still held (it is transient: deleted by that read or by its TTL).
	// Detokenize never sets it.
	CVC   CVC
	Name  Name // may be empty
	Brand string
	Last4 string
}

// Wipe drops the card's secrets. It is best effort: Go strings cannot be
// overwritten in place, so the digits stay in memory until the garbage
// collector reuses it. Buffers that vaultclient owns ([]byte plaintexts
// from the key backend) are zeroed as soon as they are parsed.
func (c *Card) Wipe() {
	if c == nil {
		return
	}
	*c = Card{}
}

// Masks printed instead of secret values.
const (
	panMask  = "****"
	cvcMask  = "***"
	nameMask = "[redacted]"
)

// PAN is a primary account number. It is not comparable with ==, so that
// it cannot be compared in variable time by accident; use Equal.
type PAN struct {
	_ [0]func() // not comparable: compare with Equal, in constant time
	v string
}

// NewPAN wraps digits as a PAN. It does not validate them; Vault.Tokenize
// does. It exists for key backends and for tests in other packages that
// build a Card by hand.
func NewPAN(digits string) PAN { return PAN{v: digits} }

// Reveal returns the digits. Call it only to write the card into an
// outbound request.
func (p PAN) Reveal() string { return p.v }

// IsZero reports whether p holds no digits.
func (p PAN) IsZero() bool { return p.v == "" }

// Equal reports whether p and q hold the same digits, in time that depends
// only on their lengths.
func (p PAN) Equal(q PAN) bool { return equalConstantTime(p.v, q.v) }

// String returns "****" and the last four digits.
func (p PAN) String() string {
	if len(p.v) < minPANLen {
		// Too short to be a card number: showing four of its digits
		// could show most of it.
		return panMask
	}
	return panMask + p.v[len(p.v)-4:]
}

// GoString masks %#v.
func (p PAN) GoString() string { return "vaultclient.PAN(" + strconv.Quote(p.String()) + ")" }

// Format masks every verb, including %x and %q, which would otherwise
// bypass String.
func (p PAN) Format(f fmt.State, verb rune) { formatMasked(f, verb, p.String(), p.GoString()) }

// LogValue masks the number in slog output.
func (p PAN) LogValue() slog.Value { return slog.StringValue(p.String()) }

// MarshalJSON masks the number in JSON.
func (p PAN) MarshalJSON() ([]byte, error) { return json.Marshal(p.String()) }

// MarshalText masks the number in text encodings.
func (p PAN) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// CVC is a card verification code. Like PAN it is not comparable.
type CVC struct {
	_ [0]func()
	v string
}

// NewCVC wraps a code as a CVC, without validating it (see NewPAN).
func NewCVC(code string) CVC { return CVC{v: code} }

// Reveal returns the code.
func (c CVC) Reveal() string { return c.v }

// IsZero reports whether no code is held.
func (c CVC) IsZero() bool { return c.v == "" }

// Equal compares in time that depends only on the lengths.
func (c CVC) Equal(d CVC) bool { return equalConstantTime(c.v, d.v) }

// String returns "***", or "" when no code is held.
func (c CVC) String() string {
	if c.v == "" {
		return ""
	}
	return cvcMask
}

// GoString masks %#v.
func (c CVC) GoString() string { return "vaultclient.CVC(" + strconv.Quote(c.String()) + ")" }

// Format masks every verb.
func (c CVC) Format(f fmt.State, verb rune) { formatMasked(f, verb, c.String(), c.GoString()) }

// LogValue masks the code in slog output.
func (c CVC) LogValue() slog.Value { return slog.StringValue(c.String()) }

// MarshalJSON masks the code in JSON.
func (c CVC) MarshalJSON() ([]byte, error) { return json.Marshal(c.String()) }

// MarshalText masks the code in text encodings.
func (c CVC) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// Name is the cardholder name. It is personal data stored with the card,
// so it is masked like the number.
type Name struct {
	_ [0]func()
	v string
}

// NewName wraps a name, without validating it (see NewPAN).
func NewName(name string) Name { return Name{v: name} }

// Reveal returns the name.
func (n Name) Reveal() string { return n.v }

// IsZero reports whether no name is held.
func (n Name) IsZero() bool { return n.v == "" }

// Equal compares in time that depends only on the lengths.
func (n Name) Equal(m Name) bool { return equalConstantTime(n.v, m.v) }

// String returns "[redacted]", or "" when no name is held.
func (n Name) String() string {
	if n.v == "" {
		return ""
	}
	return nameMask
}

// GoString masks %#v.
func (n Name) GoString() string { return "vaultclient.Name(" + strconv.Quote(n.String()) + ")" }

// Format masks every verb.
func (n Name) Format(f fmt.State, verb rune) { formatMasked(f, verb, n.String(), n.GoString()) }

// LogValue masks the name in slog output.
func (n Name) LogValue() slog.Value { return slog.StringValue(n.String()) }

// MarshalJSON masks the name in JSON.
func (n Name) MarshalJSON() ([]byte, error) { return json.Marshal(n.String()) }

// MarshalText masks the name in text encodings.
func (n Name) MarshalText() ([]byte, error) { return []byte(n.String()), nil }

// formatMasked writes the mask for any verb: %q quotes it, %#v uses the Go
// syntax form, everything else (%v, %s, %x, %d, …) writes it plain. Width
// and flags are ignored on purpose: padding is not worth a code path that
// could print the value.
func formatMasked(f fmt.State, verb rune, mask, goString string) {
	switch {
	case verb == 'q':
		io.WriteString(f, strconv.Quote(mask))
	case verb == 'v' && f.Flag('#'):
		io.WriteString(f, goString)
	default:
		io.WriteString(f, mask)
	}
}

// equalConstantTime compares a and b without branching on their bytes and
// without copying them into new []byte (which would leave more copies of a
// secret on the heap). It leaks only whether the lengths differ.
func equalConstantTime(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var d byte
	for i := 0; i < len(a); i++ {
		d |= a[i] ^ b[i]
	}
	return subtle.ConstantTimeByteEq(d, 0) == 1
}
