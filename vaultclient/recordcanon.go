package vaultclient

import (
	"encoding/base64"
	"math"
)

// Every Detokenize decodes a card record (and DetokenizeConsumingCVC
// usually a CVC record too), and encoding/json spends a reflection walk
// and a dozen allocations on each. So the record decoders first try the
// form json.Marshal writes for cardRecord and cvcRecord (Tokenize and
// Rewrap are the only writers): fields in declaration order, each once,
// under its exact name; no whitespace; strings of printable ASCII with no
// escapes; integers with no sign, exponent or leading zero; []byte as a
// base64 string; nothing after the closing brace. (It also admits a raw
// '<', '>' or '&', which json.Marshal would escape: still valid JSON with
// the same value, and decodeStrict reads it the same way.)
//
// Each piece of that form has exactly one reading in JSON, and it is the
// reading encoding/json gives, so input in that form decodes to the value
// decodeStrict would return. Anything else (another order, a duplicate or
// case-folded key, an escape, whitespace, null, a sign, trailing bytes) is
// not judged here: decodeCanonical reports false and the caller decodes
// with decodeStrict, which accepts and refuses exactly what it always has.
// The fast path therefore never accepts what decodeStrict refuses.
// FuzzRecordDecoders checks that.

// canonReader reads the canonical form. After the first mismatch ok is
// false and every later read is a no-op returning a zero value.
type canonReader struct {
	b  []byte
	ok bool
}

// lit consumes s.
func (c *canonReader) lit(s string) {
	if !c.ok || len(c.b) < len(s) || string(c.b[:len(s)]) != s {
		c.ok = false
		return
	}
	c.b = c.b[len(s):]
}

// plain consumes a JSON string of printable ASCII without escapes and
// returns its contents, which alias the input.
func (c *canonReader) plain() []byte {
	if !c.ok || len(c.b) == 0 || c.b[0] != '"' {
		c.ok = false
		return nil
	}
	for i := 1; i < len(c.b); i++ {
		switch ch := c.b[i]; {
		case ch == '"':
			s := c.b[1:i]
			c.b = c.b[i+1:]
			return s
		case ch < 0x20 || ch > 0x7e || ch == '\\':
			c.ok = false
			return nil
		}
	}
	c.ok = false
	return nil
}

// str consumes a plain string (see plain).
func (c *canonReader) str() string {
	s := c.plain()
	if !c.ok {
		return ""
	}
	return internString(s)
}

// blob consumes a plain string and decodes it as encoding/json decodes
// into a []byte: base64.StdEncoding into a new slice.
func (c *canonReader) blob() []byte {
	s := c.plain()
	if !c.ok {
		return nil
	}
	b := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(b, s)
	if err != nil {
		c.ok = false
		return nil
	}
	return b[:n]
}

// uint consumes an unsigned decimal integer with no leading zero, at most
// limit.
func (c *canonReader) uint(limit uint64) uint64 {
	if !c.ok {
		return 0
	}
	var n uint64
	i := 0
	// 19 digits cannot overflow a uint64.
	for ; i < len(c.b) && i < 19 && '0' <= c.b[i] && c.b[i] <= '9'; i++ {
		n = n*10 + uint64(c.b[i]-'0')
	}
	if i == 0 || (c.b[0] == '0' && i > 1) || n > limit {
		c.ok = false
		return 0
	}
	c.b = c.b[i:]
	return n
}

func (c *canonReader) keyID(k *KeyID) {
	c.lit(`{"backend":`)
	k.Backend = c.str()
	c.lit(`,"name":`)
	k.Name = c.str()
	c.lit(`,"version":`)
	k.Version = uint32(c.uint(math.MaxUint32))
	c.lit(`}`)
}

// end reports whether every byte matched.
func (c *canonReader) end() bool { return c.ok && len(c.b) == 0 }

// decodeCanonical fills r from data if data is in canonical form (see the
// top of this file) and reports whether it was. When it reports false, r
// holds partial values and must be reset before any other use.
func (r *cardRecord) decodeCanonical(data []byte) bool {
	c := canonReader{b: data, ok: true}
	c.lit(`{"format":`)
	r.Format = int(c.uint(math.MaxInt))
	c.lit(`,"key":`)
	c.keyID(&r.Key)
	c.lit(`,"card":`)
	r.Card = c.blob()
	c.lit(`,"last4":`)
	r.Last4 = c.str()
	c.lit(`,"brand":`)
	r.Brand = c.str()
	c.lit(`,"fingerprint":`)
	r.Fingerprint = c.str()
	c.lit(`,"fingerprint_key":`)
	c.keyID(&r.FingerprintKey)
	c.lit(`,"created_at":`)
	r.CreatedAt = int64(c.uint(math.MaxInt64))
	c.lit(`}`)
	return c.end()
}

// decodeCanonical is cardRecord.decodeCanonical for a CVC record.
func (r *cvcRecord) decodeCanonical(data []byte) bool {
	c := canonReader{b: data, ok: true}
	c.lit(`{"format":`)
	r.Format = int(c.uint(math.MaxInt))
	c.lit(`,"key":`)
	c.keyID(&r.Key)
	c.lit(`,"cvc":`)
	r.CVC = c.blob()
	c.lit(`}`)
	return c.end()
}

// internString returns the constant for the words records repeat (backend
// and key names, brands), so decoding them allocates nothing.
func internString(b []byte) string {
	switch string(b) { // no allocation: the compiler compares in place
	case LocalBackend:
		return LocalBackend
	case PKCS11Backend:
		return PKCS11Backend
	case TransitBackend:
		return TransitBackend
	case localCardKey:
		return localCardKey
	case localFingerprintKey:
		return localFingerprintKey
	case BrandVisa:
		return BrandVisa
	case BrandMastercard:
		return BrandMastercard
	case BrandAmex:
		return BrandAmex
	case BrandDiscover:
		return BrandDiscover
	case BrandJCB:
		return BrandJCB
	case BrandDiners:
		return BrandDiners
	case BrandUnionPay:
		return BrandUnionPay
	case BrandUnknown:
		return BrandUnknown
	}
	return string(b)
}
