package vaultclient

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/cardgate/cardgate/cardscan"
)

// recordFormat is the version of the stored record layout below. A reader
// refuses any other value, so a future format cannot be misread as this
// one.
const recordFormat = 1

// cardRecord is what a Store holds under a token, as JSON. Only Card is
// secret, and it is sealed. Last4, Brand and Fingerprint are kept in clear
// for display and lookup without a key-backend call; they are not
// authenticated by the seal (the Vault Transit binding must stay fixed
// across rewrap, so it cannot cover fields that change), so Detokenize
// checks Last4 and Brand against the opened number and treats a mismatch as
// tampering.
type cardRecord struct {
	Format         int    `json:"format"`
	Key            KeyID  `json:"key"`  // which key sealed Card
	Card           []byte `json:"card"` // sealed cardPayload, Binding{token, FieldCard}
	Last4          string `json:"last4"`
	Brand          string `json:"brand"`
	Fingerprint    string `json:"fingerprint"`
	FingerprintKey KeyID  `json:"fingerprint_key"`
	CreatedAt      int64  `json:"created_at"` // Unix seconds
}

// cvcRecord is the transient CVC, stored apart from the card under its own
// store key and TTL, and sealed with its own Binding{token, FieldCVC}.
type cvcRecord struct {
	Format int    `json:"format"`
	Key    KeyID  `json:"key"`
	CVC    []byte `json:"cvc"` // sealed cvcPayload
}

// errCorrupt is the cause when stored bytes do not parse. It names no
// bytes: they may be ciphertext.
var errCorrupt = errors.New("record does not parse")

func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		return errCorrupt
	}
	return nil
}

// decodeCardRecord decodes the canonical form without reflection (see
// recordcanon.go) and anything else with decodeStrict.
func decodeCardRecord(data []byte) (*cardRecord, error) {
	r := new(cardRecord)
	if !r.decodeCanonical(data) {
		*r = cardRecord{}
		if err := decodeStrict(data, r); err != nil {
			return nil, err
		}
	}
	if r.Format != recordFormat {
		return nil, fmt.Errorf("record format %d is not %d: %w", r.Format, recordFormat, errCorrupt)
	}
	return r, nil
}

// decodeCVCRecord is decodeCardRecord for a CVC record.
func decodeCVCRecord(data []byte) (*cvcRecord, error) {
	r := new(cvcRecord)
	if !r.decodeCanonical(data) {
		*r = cvcRecord{}
		if err := decodeStrict(data, r); err != nil {
			return nil, err
		}
	}
	if r.Format != recordFormat {
		return nil, fmt.Errorf("cvc record format %d is not %d: %w", r.Format, recordFormat, errCorrupt)
	}
	return r, nil
}

// The sealed payloads are small binary encodings rather than JSON so that
// the plaintext lives only in []byte buffers that can be zeroed, never in
// strings or encoder state.
//
//	card: 0x01 ‖ len(number) u8 ‖ number ‖ exp_month u8 ‖ exp_year u16 ‖ len(name) u16 ‖ name
//	cvc:  0x01 ‖ len(cvc) u8 ‖ cvc ‖ expires_at i64 (Unix milliseconds)
//
// Integers are big-endian. Decoding consumes every byte or fails.
const payloadVersion = 1

func encodeCardPayload(c *validCard) []byte {
	out := make([]byte, 0, 7+len(c.number)+len(c.name))
	out = append(out, payloadVersion, byte(len(c.number)))
	out = append(out, c.number...)
	out = append(out, byte(c.expMonth))
	out = binary.BigEndian.AppendUint16(out, uint16(c.expYear))
	out = binary.BigEndian.AppendUint16(out, uint16(len(c.name)))
	out = append(out, c.name...)
	return out
}

// cardPayload is a decoded card payload. number aliases the plaintext
// buffer, which the caller zeroes.
type cardPayload struct {
	number   []byte
	expMonth int
	expYear  int
	name     []byte
}

func decodeCardPayload(p []byte) (*cardPayload, error) {
	fail := func(what string) (*cardPayload, error) {
		return nil, fmt.Errorf("card payload: %s: %w", what, errCorrupt)
	}
	if len(p) < 2 || p[0] != payloadVersion {
		return fail("version")
	}
	n := int(p[1])
	p = p[2:]
	if n < minPANLen || n > maxPANLen || len(p) < n+5 {
		return fail("number length")
	}
	c := &cardPayload{number: p[:n]}
	for _, d := range c.number {
		if d < '0' || d > '9' {
			return fail("number")
		}
	}
	if !cardscan.Luhn(c.number) {
		return fail("number")
	}
	p = p[n:]
	c.expMonth = int(p[0])
	c.expYear = int(binary.BigEndian.Uint16(p[1:3]))
	if c.expMonth < 1 || c.expMonth > 12 || c.expYear < 1000 || c.expYear > 9999 {
		return fail("expiry")
	}
	nl := int(binary.BigEndian.Uint16(p[3:5]))
	p = p[5:]
	if nl > MaxNameBytes || len(p) != nl || !utf8.Valid(p) {
		return fail("name")
	}
	c.name = p
	return c, nil
}

func encodeCVCPayload(cvc []byte, expires time.Time) []byte {
	out := make([]byte, 0, 10+len(cvc))
	out = append(out, payloadVersion, byte(len(cvc)))
	out = append(out, cvc...)
	out = binary.BigEndian.AppendUint64(out, uint64(expires.UnixMilli()))
	return out
}

func decodeCVCPayload(p []byte) (cvc []byte, expires time.Time, err error) {
	if len(p) < 2 || p[0] != payloadVersion {
		return nil, time.Time{}, fmt.Errorf("cvc payload: version: %w", errCorrupt)
	}
	n := int(p[1])
	p = p[2:]
	if n < 3 || n > 4 || len(p) != n+8 {
		return nil, time.Time{}, fmt.Errorf("cvc payload: length: %w", errCorrupt)
	}
	for _, d := range p[:n] {
		if d < '0' || d > '9' {
			return nil, time.Time{}, fmt.Errorf("cvc payload: digits: %w", errCorrupt)
		}
	}
	ms := int64(binary.BigEndian.Uint64(p[n:]))
	return p[:n], time.UnixMilli(ms), nil
}
