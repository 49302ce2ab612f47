package audit

// Card-number detection for record fields. It is deliberately broader than
// the forwarder's response scanner: a record field is an identifier and has
// no business holding a long digit string at all, so here every window of
// 13–19 consecutive digits counts, wherever it starts, not only windows
// aligned to digit groups. A run of digits may be split by single ' ' or
// '-' separators ("4242-4242-4242-4242" is one run of 16 digits), as card
// numbers are commonly written.
//
// The price of breadth is false positives: a random identifier that
// happens to contain a Luhn-valid window is refused, and the forward with
// it. Identifier generators should draw from alphabets where long digit runs
// are rare (base32, as tokens do) to keep that rate negligible.

const (
	minCardDigits = 13
	maxCardDigits = 19
)

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isSep(c byte) bool   { return c == ' ' || c == '-' }

// containsCardNumber reports whether s holds a Luhn-valid run of 13–19
// digits as defined above.
func containsCardNumber(s string) bool {
	var buf [128]byte
	digits := buf[:0]
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isDigit(c):
			digits = append(digits, c-'0')
		case isSep(c) && len(digits) > 0 && i+1 < len(s) && isDigit(s[i+1]):
			// A single separator between digits continues the run.
		default:
			if hasLuhnWindow(digits) {
				return true
			}
			digits = digits[:0]
		}
	}
	return hasLuhnWindow(digits)
}

// hasLuhnWindow reports whether any window of 13–19 consecutive digits of
// d passes the Luhn check. d holds digit values, not ASCII.
func hasLuhnWindow(d []byte) bool {
	for start := 0; start+minCardDigits <= len(d); start++ {
		for n := minCardDigits; n <= maxCardDigits && start+n <= len(d); n++ {
			if luhn(d[start : start+n]) {
				return true
			}
		}
	}
	return false
}

// luhn reports whether the digit values d pass the Luhn check.
func luhn(d []byte) bool {
	sum := 0
	double := false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i])
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}
