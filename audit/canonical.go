package audit

import (
	"strconv"
	"time"
)

// appendCanonical appends r's canonical bytes (see canonical) to dst. On an
// error dst is returned unchanged.
//
// encoding/json defines the canonical form, but it costs reflection and
// several allocations per record, twice per forward. A record whose strings
// are all plain (printable ASCII other than '"' and '\') and whose time is
// in UTC within years 0–9999 is therefore spelled here by hand, exactly as
// encoding/json spells it (TestCanonicalMatchesJSON and FuzzCanonical check
// that). Every record Append writes is such a record: the chain fields and
// validateContent admit nothing else. Any other record (whatever Verify
// decodes from a log) goes through canonicalJSON.
func (r *Record) appendCanonical(dst []byte) ([]byte, error) {
	if !r.plain() {
		b, err := r.canonicalJSON(dst)
		if err != nil {
			return dst, err
		}
		return b, nil
	}
	b := append(dst, `{"chain":"`...)
	b = append(b, r.Chain...)
	b = append(b, `","seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"prev":"`...)
	b = append(b, r.Prev...)
	b = append(b, `","time":"`...)
	b = r.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","kind":"`...)
	b = append(b, r.Kind...)
	b = append(b, `","request_id":"`...)
	b = append(b, r.RequestID...)
	b = append(b, `","forward_id":"`...)
	b = append(b, r.ForwardID...)
	b = append(b, `","caller":"`...)
	b = append(b, r.Caller...)
	b = append(b, `","token":"`...)
	b = append(b, r.Token...)
	if len(r.Tokens) > 0 {
		b = append(b, `","tokens":["`...)
		for i, t := range r.Tokens {
			if i > 0 {
				b = append(b, `","`...)
			}
			b = append(b, t...)
		}
		b = append(b, `"]`...)
		b = append(b, `,"destination":"`...)
	} else {
		b = append(b, `","destination":"`...)
	}
	b = append(b, r.Destination...)
	b = append(b, `","resolved_ip":"`...)
	b = append(b, r.ResolvedIP...)
	b = append(b, `","tls_version":"`...)
	b = append(b, r.TLSVersion...)
	b = append(b, `","peer_cert_sha256":"`...)
	b = append(b, r.PeerCertSHA256...)
	b = append(b, `","allowlist_version":`...)
	b = strconv.AppendUint(b, r.AllowlistVersion, 10)
	b = append(b, `,"allowlist_sha256":"`...)
	b = append(b, r.AllowlistSHA256...)
	if len(r.Signers) > 0 {
		b = append(b, `","signers":["`...)
		for i, t := range r.Signers {
			if i > 0 {
				b = append(b, `","`...)
			}
			b = append(b, t...)
		}
		b = append(b, `"]`...)
		b = append(b, `,"decision":"`...)
	} else {
		b = append(b, `","decision":"`...)
	}
	b = append(b, r.Decision...)
	b = append(b, `","reason":"`...)
	b = append(b, r.Reason...)
	b = append(b, `","outcome":"`...)
	b = append(b, r.Outcome...)
	b = append(b, `","upstream_status":`...)
	b = strconv.AppendInt(b, int64(r.UpstreamStatus), 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendInt(b, r.DurationMS, 10)
	return append(b, '}'), nil
}

// storedLenBound is an upper bound on the length of the stored line of r
// once Append filled in its chain fields, when r is plain: the keys and
// punctuation of all 21 members (303 bytes), four numbers of at most 20
// digits, a time of at most 30 bytes, the chain id, prev and hash, and r's
// other strings.
func (r *Record) storedLenBound() int {
	const fixed = 303 + 4*20 + len("2006-01-02T15:04:05.999999999Z") + 24 + 64 + 64
	return fixed + len(r.Kind) + len(r.RequestID) + len(r.ForwardID) + len(r.Caller) + len(r.Token) +
		len(r.Destination) + len(r.ResolvedIP) + len(r.TLSVersion) + len(r.PeerCertSHA256) +
		len(r.AllowlistSHA256) + len(r.Decision) + len(r.Reason) + len(r.Outcome) + r.tokensLen() + r.signersLen()
}

// signersLen bounds the bytes the signers member adds, as tokensLen does.
func (r *Record) signersLen() int {
	if len(r.Signers) == 0 {
		return 0
	}
	n := len(`,"signers":[]`)
	for _, t := range r.Signers {
		n += len(t) + 3
	}
	return n
}

// tokensLen bounds the bytes the tokens member adds: `,"tokens":[]` and,
// per token, its quotes and a comma.
func (r *Record) tokensLen() int {
	if len(r.Tokens) == 0 {
		return 0
	}
	n := len(`,"tokens":[]`)
	for _, t := range r.Tokens {
		n += len(t) + 3
	}
	return n
}

// plain reports whether appendCanonical may spell r by hand: no string
// needs a JSON escape, and the time encodes the way encoding/json encodes
// it without error (Time.MarshalJSON refuses years outside 0–9999; UTC
// keeps the zone "Z").
func (r *Record) plain() bool {
	if r.Time.Location() != time.UTC {
		return false
	}
	if y := r.Time.Year(); y < 0 || y > 9999 {
		return false
	}
	for _, s := range [...]string{
		r.Chain, r.Prev, string(r.Kind), r.RequestID, r.ForwardID, r.Caller, r.Token,
		r.Destination, r.ResolvedIP, r.TLSVersion, r.PeerCertSHA256, r.AllowlistSHA256,
		string(r.Decision), r.Reason, string(r.Outcome),
	} {
		if !plainString(s) {
			return false
		}
	}
	for _, s := range r.Tokens {
		if !plainString(s) {
			return false
		}
	}
	for _, s := range r.Signers {
		if !plainString(s) {
			return false
		}
	}
	return true
}

func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		if !jsonPlain[s[i]] {
			return false
		}
	}
	return true
}

// jsonPlain holds the bytes encoding/json copies into a string unchanged
// with HTML escaping off, restricted to printable ASCII.
var jsonPlain = func() *byteSet {
	var s byteSet
	for c := 0x20; c < 0x7f; c++ {
		s[c] = c != '"' && c != '\\'
	}
	return &s
}()
