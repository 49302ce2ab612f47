package forwarder

import (
	"strconv"

	"github.com/cardgate/cardgate/allowlist"
)

// Filters. One optional filter follows the reference after '|':
// {{card.exp_year | yy}}. Each filter applies to some references only
// (appliesTo); any other pairing is invalid_template.
//
//	filter    applies to            month 3, year 2031
//	(none)    every field but exp   exp_month 03, exp_year 2031
//	yy        exp_year              31 (year 2100: 00)
//	nopad     exp_month             3 (month 12: 12)
//	MMYY      exp                   0331
//	YYMM      exp                   3103
//	MM/YY     exp                   03/31
//	MM/YYYY   exp                   03/2031
//	YYYY-MM   exp                   2031-03
//	MMYYYY    exp                   032031
//
// Adding a filter (the secret helper's base64, for one): a constant below
// before filterEnd, its name in String, the references it may follow in
// appliesTo, and its effect where the value is made (for base64 of a
// secret: in that namespace's case of value, after reading the secret).
// filterByName finds every constant before filterEnd by its String.
type filter uint8

const (
	filterNone filter = iota
	filterYY
	filterNoPad
	filterMMYY
	filterYYMM
	filterMMSlashYY
	filterMMSlashYYYY
	filterYYYYDashMM
	filterMMYYYY
	filterBase64 // standard base64 of a credential, for Basic auth
	filterEnd    // not a filter: the end of the list
)

// String is the filter's name as written in a template.
func (f filter) String() string {
	switch f {
	case filterYY:
		return "yy"
	case filterNoPad:
		return "nopad"
	case filterMMYY:
		return "MMYY"
	case filterYYMM:
		return "YYMM"
	case filterMMSlashYY:
		return "MM/YY"
	case filterMMSlashYYYY:
		return "MM/YYYY"
	case filterYYYYDashMM:
		return "YYYY-MM"
	case filterMMYYYY:
		return "MMYYYY"
	case filterBase64:
		return "base64"
	}
	return ""
}

// filterByName returns the filter called s.
func filterByName(s string) (filter, bool) {
	for f := filterNone + 1; f < filterEnd; f++ {
		if f.String() == s {
			return f, true
		}
	}
	return filterNone, false
}

// expFormat reports whether f is a composite expiry format.
func (f filter) expFormat() bool { return f >= filterMMYY && f <= filterMMYYYY }

// appliesTo reports whether f may follow r. The composite expiry needs a
// format; nothing else does. (A new filter adds its case here, e.g.
// "case filterBase64: return r.ns == nsSecret".)
func (f filter) appliesTo(r ref) bool {
	card := r.isCard()
	switch {
	case f == filterNone:
		return !card || r.field != fieldExp
	case f == filterYY:
		return card && r.field == allowlist.FieldExpYear
	case f == filterNoPad:
		return card && r.field == allowlist.FieldExpMonth
	case f.expFormat():
		return card && r.field == fieldExp
	case f == filterBase64:
		return r.ns == nsSecret
	}
	return false
}

// safeFilterName reports whether an unknown filter's name may be echoed:
// letters, '/', '-' and '_' only (never a digit, so never part of a card
// number), at most 16 bytes.
func safeFilterName(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '/' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// twoDigits holds "00" to "99": two(n) slices it, so the common expiry
// forms cost no allocation.
const twoDigits = "00010203040506070809" + "10111213141516171819" + "20212223242526272829" +
	"30313233343536373839" + "40414243444546474849" + "50515253545556575859" +
	"60616263646566676869" + "70717273747576777879" + "80818283848586878889" + "90919293949596979899"

// two returns n (0–99) as two digits.
func two(n int) string { return twoDigits[2*n : 2*n+2] }

// expiryValue renders an expiry reference for month m (1–12) and year y
// (1000–9999, checked by the caller) under r's filter.
func expiryValue(r ref, m, y int) string {
	switch r.field {
	case allowlist.FieldExpMonth:
		if r.filter == filterNoPad && m < 10 {
			return twoDigits[2*m+1 : 2*m+2]
		}
		return two(m)
	case allowlist.FieldExpYear:
		if r.filter == filterYY {
			return two(y % 100)
		}
		return strconv.Itoa(y)
	}
	// The composite expiry: at most 7 bytes, built on the stack.
	var b [7]byte
	mm, yy := two(m), two(y%100)
	yyyy := [4]byte{two(y / 100)[0], two(y / 100)[1], yy[0], yy[1]}
	var out []byte
	switch r.filter {
	case filterMMYY:
		out = append(append(b[:0], mm...), yy...)
	case filterYYMM:
		out = append(append(b[:0], yy...), mm...)
	case filterMMSlashYY:
		out = append(append(append(b[:0], mm...), '/'), yy...)
	case filterMMSlashYYYY:
		out = append(append(append(b[:0], mm...), '/'), yyyy[:]...)
	case filterYYYYDashMM:
		out = append(append(append(b[:0], yyyy[:]...), '-'), mm...)
	case filterMMYYYY:
		out = append(append(b[:0], mm...), yyyy[:]...)
	}
	return string(out)
}
