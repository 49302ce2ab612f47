package forwarder

// Card-number detection, shared by the response scanner (Redact) and the
// request check that refuses literal card numbers typed by a caller
// (containsCard). One definition serves both so that what we refuse to send
// and what we refuse to show can never drift apart.
//
// Definitions:
//
//   - A run is a maximal sequence of ASCII digit groups joined by exactly one
//     separator byte, ' ' or '-' ("4242 4242-4242 4242" is one run of four
//     groups; "4242  4242" is two runs).
//   - A candidate is any sequence of whole, consecutive groups of one run
//     holding 13 to 19 digits in total. A candidate that passes the Luhn
//     check is a card number. Looking at group-aligned sub-sequences, not
//     only the whole run, catches a card written next to other numbers
//     ("4242 4242 4242 4242 123", "12-4242424242424242") without flagging
//     random sub-strings of long identifiers.
//   - A single group of more than 19 digits is treated as a card number
//     without a Luhn check: a card glued to other digits (number followed
//     by expiry, say) hides in it, and nothing a processor returns in that
//     form is worth the risk.
//
// Masking replaces every digit of a card number with '*' except its last
// four ("**** **** **** 4242", "************4242"); separators stay. Only
// the last four are kept, not the first six as PCI DSS would permit, because
// the caller never needs the BIN from a response. When two card numbers
// overlap, a digit is masked if either masks it.
//
// The card's own CVC, when the forward used it, is masked ("***") wherever
// it is a whole digit group. A bare JSON number that gets masked makes the
// body invalid JSON; that is preferred to echoing card data.
//
// Known false positives: about one in ten random 13–19 digit identifiers
// passes Luhn and is masked in responses and refused in requests.

const (
	minCardDigits = 13
	maxCardDigits = 19
	maskByte      = '*'
	keepDigits    = 4
)

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isSep(c byte) bool   { return c == ' ' || c == '-' }

// Redact appends src to dst with every card number masked, and returns the
// extended buffer. It makes one pass over src and allocates only when dst
// must grow.
func Redact(dst, src []byte) []byte { return redact(dst, src, nil) }

// redact is Redact that also masks cvc (when non-empty) as a whole digit
// group.
func redact(dst, src, cvc []byte) []byte {
	var s scanner
	s.cvc = cvc
	return s.run(dst, src, false)
}

// containsCard reports whether src holds a card number under the same
// definition Redact masks.
func containsCard(src []byte) bool {
	var s scanner
	s.run(nil, src, true)
	return s.found
}

func containsCardString(s string) bool {
	// The conversion does not escape, so it does not allocate.
	return containsCard([]byte(s))
}

type scanner struct {
	cvc   []byte
	found bool
}

// run copies src to dst, masking cards. In detect mode it writes nothing and
// stops at the first card.
func (s *scanner) run(dst, src []byte, detect bool) []byte {
	n := len(src)
	i := 0
	for i < n {
		// Copy the stretch up to the next digit in one append.
		j := i
		for j < n && !isDigit(src[j]) {
			j++
		}
		if !detect {
			dst = append(dst, src[i:j]...)
		}
		if j == n {
			break
		}
		// src[j] starts a run: src[j-1] is not a digit, and a separator
		// before j belongs to no run because it has no digit on its left
		// in this run (the previous run ended before it).
		end := runEnd(src, j)
		dst = s.maskRun(dst, src[j:end], detect)
		if detect && s.found {
			return dst
		}
		i = end
	}
	return dst
}

// runEnd returns the end of the run starting at the digit src[start].
func runEnd(src []byte, start int) int {
	n := len(src)
	i := start
	for {
		for i < n && isDigit(src[i]) {
			i++
		}
		if i+1 < n && isSep(src[i]) && isDigit(src[i+1]) {
			i++
			continue
		}
		return i
	}
}

// maskRun handles one run. For each group start it examines the candidates
// beginning there (at most 19 digits ahead), and records the furthest byte
// that must be masked. Output for bytes before the current group start is
// final once the group start is reached, because every candidate that can
// mask them starts at or before an earlier group start.
func (s *scanner) maskRun(dst, run []byte, detect bool) []byte {
	maskEnd := 0 // bytes of run before maskEnd are masked (digits only)
	emitted := 0
	var digits [maxCardDigits]byte

	for g := 0; g < len(run); {
		// Group bounds.
		ge := g
		for ge < len(run) && isDigit(run[ge]) {
			ge++
		}
		if !detect && g > emitted {
			dst = emitMasked(dst, run[emitted:g], maskEnd-emitted)
			emitted = g
		}

		glen := ge - g
		if glen > maxCardDigits {
			s.found = true
			maskEnd = max(maskEnd, ge-keepDigits)
		}
		if len(s.cvc) > 0 && glen == len(s.cvc) && string(run[g:ge]) == string(s.cvc) {
			maskEnd = max(maskEnd, ge)
		}
		if detect && s.found {
			return dst
		}

		// Candidates starting at group g: extend over whole groups.
		nd := 0
		for p := g; p < len(run) && nd <= maxCardDigits; {
			q := p
			for q < len(run) && isDigit(run[q]) {
				if nd < maxCardDigits {
					digits[nd] = run[q]
				}
				nd++
				q++
			}
			if nd > maxCardDigits {
				break
			}
			if nd >= minCardDigits && luhn(digits[:nd]) {
				s.found = true
				if detect {
					return dst
				}
				maskEnd = max(maskEnd, lastDigitsStart(run, q, keepDigits))
			}
			p = q + 1 // skip the separator
		}
		g = ge + 1
	}
	if !detect {
		dst = emitMasked(dst, run[emitted:], maskEnd-emitted)
	}
	return dst
}

// lastDigitsStart returns the index of the k-th digit counted back from end
// (exclusive), skipping separators.
func lastDigitsStart(run []byte, end, k int) int {
	i := end
	for k > 0 && i > 0 {
		i--
		if isDigit(run[i]) {
			k--
		}
	}
	return i
}

// emitMasked appends b with the digits of its first n bytes masked.
func emitMasked(dst, b []byte, n int) []byte {
	if n <= 0 {
		return append(dst, b...)
	}
	n = min(n, len(b))
	for _, c := range b[:n] {
		if isDigit(c) {
			c = maskByte
		}
		dst = append(dst, c)
	}
	return append(dst, b[n:]...)
}

// luhn reports whether the ASCII digits d pass the Luhn check.
func luhn(d []byte) bool {
	sum := 0
	double := false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
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
