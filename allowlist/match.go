package allowlist

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Query is what the forward path asks of the allowlist.
type Query struct {
	DestinationID string
	Caller        string // the authenticated identity; empty is refused
	Method        string
	URL           *url.URL
	Fields        []Field
	Now           time.Time // zero means the Policy's clock (time.Now by default), never "skip the expiry check"

	// Cards are the named cards and the fields each uses (entry_cards.go).
	Cards map[string][]Field
}

// Reason is a stable, documented deny code.
type Reason string

// Deny reasons. They are API: callers branch on them.
const (
	ReasonDestinationNotAllowed Reason = "destination_not_allowed" // unknown id, or url outside the entry
	ReasonMethodNotAllowed      Reason = "method_not_allowed"
	ReasonCallerNotAllowed      Reason = "caller_not_allowed"
	ReasonFieldNotAllowed       Reason = "card_field_not_allowed"
	ReasonAllowlistExpired      Reason = "allowlist_expired"
	ReasonAllowlistUnavailable  Reason = "allowlist_unavailable"
)

// DenyError says why a request was refused.
type DenyError struct {
	Reason Reason
	Detail string // safe to show the caller: never holds card data
}

func (e *DenyError) Error() string         { return "allowlist: " + string(e.Reason) + ": " + e.Detail }
func (e *DenyError) ErrorCode() string     { return string(e.Reason) }
func (e *DenyError) PublicMessage() string { return e.Detail }

func deny(r Reason, format string, args ...any) *DenyError {
	return &DenyError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// Match returns the destination q may use, or a *DenyError. The checks run
// in this order so that a caller learns nothing about an entry it may not
// use: expiry, destination id, caller, method, URL, card fields, named
// cards.
//
// URL rules: scheme https; no userinfo or fragment (a query is allowed and
// not matched); the host, lowercased and with one trailing dot removed,
// equals the entry's host — a "*.x" entry matches names one or more labels
// below x but not x itself, and an IP entry matches only that address; the
// port, 443 when absent, equals the entry's; and the path, which may not
// hold dot or empty segments, backslashes or encoded slashes/dots, is the
// prefix or lies under it on a segment boundary ("/v1/charges" matches
// "/v1/charges" and "/v1/charges/x", not "/v1/chargesX"). Match
// normalizes the URL and leaves the comparisons to (*Destination).Admits,
// which the forwarder applies again to what it dials and sends.
//
// The returned *Destination points into a; callers must not modify it.
func (a *Allowlist) Match(q Query) (*Destination, error) {
	if a == nil {
		return nil, deny(ReasonAllowlistUnavailable, "no verified allowlist is loaded")
	}
	now := q.Now
	if now.IsZero() {
		clock := a.now
		if clock == nil {
			clock = time.Now
		}
		now = clock()
	}
	if !now.Before(a.Doc.Expires) {
		return nil, deny(ReasonAllowlistExpired, "allowlist version %d expired at %s", a.Doc.Version, a.Doc.Expires.Format(time.RFC3339))
	}
	var d *Destination
	for i := range a.Doc.Destinations {
		if a.Doc.Destinations[i].ID == q.DestinationID {
			d = &a.Doc.Destinations[i]
			break
		}
	}
	if d == nil || q.DestinationID == "" {
		// The id is not echoed: it is caller input that matched nothing we
		// reviewed, and could be anything, a card number included.
		return nil, deny(ReasonDestinationNotAllowed, "destination is not on the allowlist")
	}
	if q.Caller == "" || !slices.Contains(d.Callers, q.Caller) {
		return nil, deny(ReasonCallerNotAllowed, "caller %q may not use destination %q", printable(q.Caller), d.ID)
	}
	if !slices.Contains(d.Methods, q.Method) {
		return nil, deny(ReasonMethodNotAllowed, "method %q is not allowed for destination %q", printable(q.Method), d.ID)
	}
	if why := matchURL(d, q.URL); why != "" {
		return nil, deny(ReasonDestinationNotAllowed, "url is outside destination %q: %s", d.ID, why)
	}
	for _, f := range q.Fields {
		if !knownField(f) || !slices.Contains(d.Fields, f) {
			return nil, deny(ReasonFieldNotAllowed, "card field %q may not be sent to destination %q", printable(string(f)), d.ID)
		}
	}
	if err := d.matchCards(q.Cards); err != nil {
		return nil, err
	}
	return d, nil
}

// printable bounds and sanitizes caller-supplied text echoed in a Detail.
func printable(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// matchURL returns "" when u lies inside d, else a short reason that does
// not reveal the entry's contents. It normalizes u (lowercase host, one
// trailing dot dropped, port 443 when absent) and leaves every comparison
// to Admits, which the forwarder applies again to what it sends.
func matchURL(d *Destination, u *url.URL) string {
	if u == nil {
		return "no url"
	}
	if u.Scheme != "https" {
		return "scheme must be https"
	}
	if u.Opaque != "" || u.User != nil {
		return "userinfo and opaque urls are not allowed"
	}
	if u.Fragment != "" || u.RawFragment != "" {
		return "fragments are not allowed"
	}
	host := strings.ToLower(u.Hostname())
	host = strings.TrimSuffix(host, ".")
	port := 443
	if p := u.Port(); p != "" {
		var err error
		if port, err = parsePort(p); err != nil {
			port = 0
		}
	} else if strings.HasSuffix(u.Host, ":") {
		port = 0
	}
	if port == 0 && d.admitsHost(host) {
		return "bad port"
	}
	raw := u.EscapedPath()
	if raw == "" {
		raw = "/"
	}
	if e := d.admits(host, port, raw); e != nil {
		return e.Reason
	}
	return ""
}

// parseIP parses s as an IP address, skipping netip.ParseAddr (which
// allocates its error) for what cannot be one: an address is all digits
// and dots, or holds a colon.
func parseIP(s string) (netip.Addr, bool) {
	if !strings.Contains(s, ":") && strings.Trim(s, "0123456789.") != "" {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	return a, err == nil
}
