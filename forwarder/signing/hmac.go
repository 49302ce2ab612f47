package signing

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The generic HMAC scheme: HMAC-SHA256 or HMAC-SHA512 over the entry's
// named parts joined by its separator, written to one header, with the
// timestamp the gateway chose in another.

func (h *HMACSpec) newHash() func() hash.Hash {
	if h.Hash == "sha512" {
		return sha512.New
	}
	return sha256.New
}

func (h *HMACSpec) coversBody() bool {
	for _, p := range h.Parts {
		if strings.HasPrefix(p, "body") {
			return true
		}
	}
	return false
}

// formatTimestamp writes now in the spec's timestamp format.
func (h *HMACSpec) formatTimestamp(now time.Time) string {
	now = now.UTC()
	switch h.TimestampFormat {
	case "unix":
		return strconv.FormatInt(now.Unix(), 10)
	case "unix-ms":
		return strconv.FormatInt(now.UnixMilli(), 10)
	case "rfc3339":
		return now.Truncate(time.Second).Format(time.RFC3339)
	default:
		return now.Format(http.TimeFormat)
	}
}

// parseTimestamp reads a timestamp written by formatTimestamp.
func (h *HMACSpec) parseTimestamp(s string) (time.Time, bool) {
	switch h.TimestampFormat {
	case "unix", "unix-ms":
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		if h.TimestampFormat == "unix" {
			return time.Unix(n, 0), true
		}
		return time.UnixMilli(n), true
	case "rfc3339":
		t, err := time.Parse(time.RFC3339, s)
		return t, err == nil
	default:
		t, err := http.ParseTime(s)
		return t, err == nil
	}
}

func (s *Signer) signHMAC(m *message, body []byte, now time.Time) error {
	h := s.spec.HMAC
	if h.TimestampHeader != "" {
		m.setHeader(h.TimestampHeader, h.formatTimestamp(now))
	}
	for _, p := range h.Parts {
		if strings.EqualFold(p, "header:date") {
			if err := m.ensureDate(now); err != nil {
				return err
			}
		}
	}
	mac, err := hmacOf(h, s.macKey, m, body)
	if err != nil {
		return err
	}
	m.setHeader(h.Header, h.Prefix+encodeMAC(h.Encoding, mac))
	return nil
}

func encodeMAC(encoding string, mac []byte) string {
	if encoding == "hex" {
		return hex.EncodeToString(mac)
	}
	return base64.StdEncoding.EncodeToString(mac)
}

// hmacOf computes the MAC over the canonical string, streaming each part
// into the MAC so a large body is not copied.
func hmacOf(h *HMACSpec, key []byte, m *message, body []byte) ([]byte, error) {
	mac := hmac.New(h.newHash(), key)
	for i, p := range h.Parts {
		if i > 0 {
			mac.Write([]byte(h.Separator))
		}
		var v string
		switch p {
		case "method":
			v = m.method
		case "host":
			v = m.authority
		case "path":
			v = m.path()
		case "path+query":
			v = m.requestURI
		case "query":
			v, _ = m.query()
		case "body":
			mac.Write(body)
			continue
		case "body-sha256-hex", "body-sha256-base64":
			sum := sha256.Sum256(body)
			v = encodeMAC(strings.TrimPrefix(p, "body-sha256-"), sum[:])
		case "body-sha512-hex", "body-sha512-base64":
			sum := sha512.Sum512(body)
			v = encodeMAC(strings.TrimPrefix(p, "body-sha512-"), sum[:])
		case "timestamp":
			var err error
			if v, err = m.headerValue(h.TimestampHeader); err != nil {
				return nil, err
			}
		default:
			name, _ := strings.CutPrefix(p, "header:")
			var err error
			if v, err = m.headerValue(name); err != nil {
				return nil, err
			}
		}
		if !textOK(v, false) {
			return nil, newErr(CodeComponentInvalid, "the request's "+p+" cannot be signed")
		}
		mac.Write([]byte(v))
	}
	return mac.Sum(nil), nil
}

func (v *Verifier) verifyHMAC(m *message, body []byte, now time.Time) error {
	h := v.spec.HMAC
	raw, ok, err := fieldValue(m.header, h.Header)
	if err != nil {
		return newErr(CodeSignatureMalformed, h.Header+" cannot be read")
	}
	if !ok {
		return newErr(CodeSignatureMissing, "the request has no "+h.Header)
	}
	enc, found := strings.CutPrefix(raw, h.Prefix)
	if !found {
		return newErr(CodeSignatureMalformed, h.Header+" does not start with the expected prefix")
	}
	var got []byte
	if h.Encoding == "hex" {
		got, err = hex.DecodeString(enc)
	} else {
		got, err = base64.StdEncoding.DecodeString(enc)
	}
	if err != nil {
		return newErr(CodeSignatureMalformed, h.Header+" is not "+h.Encoding)
	}
	want, err := hmacOf(h, v.macKey, m, body)
	if err != nil {
		return err
	}
	if !hmac.Equal(want, got) {
		return newErr(CodeSignatureInvalid, "the MAC does not verify")
	}
	if len(body) > 0 && !h.coversBody() {
		return newErr(CodeSignaturePolicy, "the request has a body and the MAC does not cover it")
	}
	if h.TimestampHeader != "" {
		ts, _ := m.headerValue(h.TimestampHeader)
		t, ok := h.parseTimestamp(ts)
		if !ok {
			return newErr(CodeSignatureMalformed, h.TimestampHeader+" is not a "+h.TimestampFormat+" timestamp")
		}
		if err := v.fresh(t, now, h.TimestampHeader); err != nil {
			return err
		}
	}
	return nil
}
