package cardscan

import (
	"bytes"
	"cmp"
	"slices"
)

// Response rules: an answer is masked as Redact masks it, except in the
// spans an allowlist entry's rules name (FindSpans finds them), and the
// values the forward itself sent are masked everywhere, those spans
// included. The forwarder decides what each span becomes (an Edit); this
// file only applies the decisions, so the masking rules stay in one
// package.

// Masks are the values one forward sent. They are masked wherever they
// appear in its answer, in kept identifiers too: an entry's rules can
// exempt a processor's identifiers, never the forward's own card.
type Masks struct {
	// Numbers are the card numbers the forward sent, as ASCII digits.
	Numbers [][]byte
	// CVCs are the CVCs the forward sent.
	CVCs [][]byte
	// Secrets are further exact byte strings never to show, such as the
	// credential values the forward's entry used: every byte of each
	// occurrence becomes '*'. Empty strings are ignored; a caller must not
	// pass short values (a few bytes would mask common text).
	Secrets [][]byte
}

// EditAction says what becomes of a span.
type EditAction uint8

// Edit actions. The zero value masks: an Edit built without a decision
// shows nothing.
const (
	// EditMask masks every digit of the span (ASCII, fullwidth, JSON- or
	// percent-escaped), keeping its length.
	EditMask EditAction = iota
	// EditKeep keeps the span as it is but for the Masks: a processor
	// identifier.
	EditKeep
	// EditReplace replaces the span with With: a returned card's token.
	EditReplace
)

// Edit is the decision for one span of an answer.
type Edit struct {
	Start, End int
	Action     EditAction
	With       []byte // EditReplace only
}

// strictness orders actions for one span chosen twice: masking wins over
// a token, a token over keeping.
func strictness(a EditAction) int {
	switch a {
	case EditKeep:
		return 0
	case EditReplace:
		return 1
	}
	return 2
}

// normalizeEdits drops edits outside src, sorts the rest and resolves
// overlaps: of two edits of one span the stricter wins; edits that
// overlap otherwise (FindSpans never makes them) merge into one EditMask.
func normalizeEdits(edits []Edit, n int) []Edit {
	es := make([]Edit, 0, len(edits))
	for _, e := range edits {
		if e.Start >= 0 && e.Start <= e.End && e.End <= n {
			es = append(es, e)
		}
	}
	slices.SortStableFunc(es, func(a, b Edit) int {
		return cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(a.End, b.End))
	})
	out := es[:0]
	for _, e := range es {
		if k := len(out) - 1; k >= 0 {
			prev := &out[k]
			if e.Start == prev.Start && e.End == prev.End {
				if strictness(e.Action) > strictness(prev.Action) {
					*prev = e
				}
				continue
			}
			if e.Start < prev.End {
				*prev = Edit{Start: prev.Start, End: max(prev.End, e.End), Action: EditMask}
				continue
			}
		}
		out = append(out, e)
	}
	return out
}

// RedactRules appends src to dst with the edits applied, and returns the
// extended buffer:
//
//   - outside the edits, every card number is masked, and the first of
//     m.CVCs, as RedactCVC masks them; further CVCs as whole digit groups;
//   - an EditKeep span is kept, but for m's numbers (wherever they appear,
//     with or without separators, glued to other digits or not) and CVCs
//     (as whole digit groups);
//   - an EditReplace span becomes With; an EditMask span has every digit
//     masked;
//   - finally, before any of this, every m.Secrets occurrence in src is
//     masked, so that no edit can keep one.
//
// The spans must come from FindSpans on src: their edges are quotes,
// brackets, '=', '&', '<' and '>', never digits or separators, so no
// card number is split by them. Without edits and with at most one CVC
// and no secrets the result is RedactCVC's. Only EditReplace changes the
// length.
func RedactRules(dst, src []byte, edits []Edit, m *Masks) []byte {
	if m == nil {
		m = &Masks{}
	}
	if len(m.Secrets) > 0 {
		work := append([]byte(nil), src...)
		defer clear(work)
		maskSecrets(work, m.Secrets)
		src = work
	}
	var cvc []byte
	if len(m.CVCs) > 0 {
		cvc = m.CVCs[0]
	}
	// Outside the kept spans, each number sent is masked in every
	// encoding Secrets reads (own.go), on top of every card number.
	own := make([]Secrets, 0, len(m.Numbers)+len(m.CVCs))
	for _, n := range m.Numbers {
		own = append(own, NewSecrets(string(n), ""))
	}
	if len(m.Numbers) > 0 {
		// Secrets reads a CVC only beside a number (an empty number would
		// match everywhere); the first number carries each CVC.
		for _, c := range m.CVCs {
			own = append(own, NewSecrets(string(m.Numbers[0]), string(c)))
		}
	}
	defer func() {
		for i := range own {
			own[i].Wipe()
		}
	}()
	var scratch []byte
	defer func() { clear(scratch[:cap(scratch)]) }()
	outside := func(dst, seg []byte) []byte {
		start := len(dst)
		dst = RedactCVC(dst, seg, cvc)
		for i := range own {
			scratch = own[i].Redact(scratch[:0], dst[start:])
			copy(dst[start:], scratch) // masking keeps the length
		}
		if len(m.CVCs) > 1 {
			maskForwarded(dst[start:], nil, m.CVCs[1:])
		}
		return dst
	}
	pos := 0
	for _, e := range normalizeEdits(edits, len(src)) {
		dst = outside(dst, src[pos:e.Start])
		seg := src[e.Start:e.End]
		switch e.Action {
		case EditKeep:
			if hidesSent(seg, own) {
				// The value holds a card the forward sent (or its CVC) in
				// some encoding (base64, hex, UTF-16, escapes, XML
				// character references): an identifier it is not, and
				// it is masked whole.
				dst = appendMaskedAll(dst, seg)
				break
			}
			start := len(dst)
			dst = append(dst, seg...)
			maskForwarded(dst[start:], m.Numbers, m.CVCs)
		case EditReplace:
			dst = append(dst, e.With...)
		default:
			// Every byte, not only digits: a value that is not a card
			// may still be one in base64, and starring its digits alone
			// would leave the rest guessable.
			dst = appendMaskedAll(dst, seg)
		}
		pos = e.End
	}
	return outside(dst, src[pos:])
}

// hidesSent reports whether seg holds one of own in any encoding the
// Secrets masker reads (its redaction differs from the plain one), an
// XML character reference (which no scanner here decodes), or, in a value
// that is not plain digits, anything the plain masker masks (a card in
// base64, hex or UTF-16): identifiers are kept as digit runs only.
func hidesSent(seg []byte, own []Secrets) bool {
	if bytes.Contains(seg, []byte("&#")) {
		return true
	}
	plain := Redact(nil, seg)
	defer clear(plain)
	if !numericValue(seg) && !bytes.Equal(plain, seg) {
		return true
	}
	var with []byte
	defer func() { clear(with) }()
	for i := range own {
		with = own[i].Redact(with[:0], seg)
		if !bytes.Equal(with, plain) {
			return true
		}
	}
	return false
}

// numericValue reports whether seg is digits, spaces and dashes only.
func numericValue(seg []byte) bool {
	for _, c := range seg {
		if !(c >= '0' && c <= '9' || c == ' ' || c == '-') {
			return false
		}
	}
	return true
}

// appendMaskedAll appends seg with every byte masked.
func appendMaskedAll(dst, seg []byte) []byte {
	for range seg {
		dst = append(dst, '*')
	}
	return dst
}

// maskSecrets masks every occurrence of each secret in b, in place.
func maskSecrets(b []byte, secrets [][]byte) {
	for _, s := range secrets {
		if len(s) == 0 {
			continue
		}
		for off := 0; ; {
			i := bytes.Index(b[off:], s)
			if i < 0 {
				break
			}
			for j := off + i; j < off+i+len(s); j++ {
				b[j] = '*'
			}
			off += i + len(s)
		}
	}
}
