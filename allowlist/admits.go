// URL admission: the one rule for whether a request URL lies inside an
// entry. Match applies it after normalizing the caller's URL, and the
// forwarder applies it again, to the host, port and path it will dial and
// send, after Match has decided; there is no second copy to drift.

package allowlist

import (
	"net/url"
	"strings"
)

// URLPart names the part of a URL that Admits refused.
type URLPart string

// The parts of a URL Admits compares.
const (
	URLHost URLPart = "host"
	URLPort URLPart = "port"
	URLPath URLPart = "path"
)

// URLError is Admits' error. Reason says which rule the URL broke without
// repeating the URL or revealing the entry's contents, so that it can be
// shown to whoever sent the URL.
type URLError struct {
	Part   URLPart
	Reason string // "host does not match", …
}

func (e *URLError) Error() string { return "allowlist: url " + string(e.Part) + ": " + e.Reason }

// Admits returns nil when a request to host, port and the escaped path
// lies inside d, else a *URLError. It is the URL rule Match documents,
// applied to a URL already split and normalized:
//
//   - host is lowercase ASCII without a trailing dot, or an IP address
//     without brackets. It is compared as it is, never normalized here, so
//     that the host compared is the host dialled: "PAY.example.com" or
//     "pay.example.com." is refused. A name equals the entry's host, or,
//     for a "*.x" entry, is a valid name one or more labels below x (never
//     x itself); an IP address equals the entry's address, and nothing
//     else matches an IP entry.
//   - port is in 1–65535 and equals the entry's.
//   - path, escaped and decoded, passes CheckPath, and the decoded path is
//     the entry's prefix or lies under it on a segment boundary
//     ("/v1/charges" admits "/v1/charges" and "/v1/charges/x", not
//     "/v1/chargesX"). Encoded slashes, dots and backslashes are refused
//     by CheckPath, so the decoded path has the raw path's segments, each
//     decoded: the processor routes on what was compared.
//
// An entry Parse would never produce (no host, a port out of range, a
// wildcard other than a leading "*.") admits nothing it should not: its
// host or port matches no request.
func (d *Destination) Admits(host string, port int, path string) error {
	if e := d.admits(host, port, path); e != nil {
		return e
	}
	return nil
}

// admits is Admits with its concrete error type, for Match.
func (d *Destination) admits(host string, port int, path string) *URLError {
	if !d.admitsHost(host) {
		return &URLError{Part: URLHost, Reason: "host does not match"}
	}
	if port < 1 || port > 65535 || port != d.Port {
		return &URLError{Part: URLPort, Reason: "port does not match"}
	}
	return d.admitsPath(path)
}

// admitsHost is Admits' host rule.
func (d *Destination) admitsHost(host string) bool {
	// An empty host would equal the empty host of a broken entry, and a
	// zoned address ("fe80::1%eth0") the same zone in one. A non-ASCII
	// byte (an IDN not in punycode) needs no check of its own: a name
	// must equal the entry's host or pass checkHostName.
	if host == "" || strings.Contains(host, "%") {
		return false
	}
	if ea, ok := parseIP(entryHostAddr(d.Host)); ok {
		ha, ok := parseIP(host)
		return ok && ha == ea
	}
	if _, ok := parseIP(host); ok {
		return false
	}
	if suffix, ok := strings.CutPrefix(d.Host, "*"); ok {
		// A "*.x" entry: host ends in ".x" and is a valid name, which
		// puts at least one non-empty label before ".x" (checkHostName
		// refuses the empty label of ".x" itself, and a trailing dot).
		return strings.HasPrefix(suffix, ".") && strings.HasSuffix(host, suffix) && checkHostName(host, false) == nil
	}
	return host == d.Host
}

// entryHostAddr strips the brackets an IPv6 entry host may carry when a
// Destination is built by hand; Parse stores the bare address.
func entryHostAddr(h string) string {
	if s, ok := strings.CutPrefix(h, "["); ok {
		if s, ok := strings.CutSuffix(s, "]"); ok {
			return s
		}
	}
	return h
}

// admitsPath is Admits' path rule.
func (d *Destination) admitsPath(raw string) *URLError {
	if CheckPath(raw) != nil {
		return &URLError{Part: URLPath, Reason: "path is not clean"}
	}
	p, err := url.PathUnescape(raw)
	// CheckPath again, decoded: an escaped '%' ("%25zz") must not decode
	// to something another parser would decode a second time.
	if err != nil || CheckPath(p) != nil {
		return &URLError{Part: URLPath, Reason: "path is not clean"}
	}
	if !pathUnder(p, d.PathPrefix) {
		return &URLError{Part: URLPath, Reason: "path is outside the allowed prefix"}
	}
	return nil
}

// pathUnder reports whether the decoded path p is prefix or lies under it
// on a segment boundary. A prefix ending in "/" ("/" itself; Parse allows
// no other) is its own boundary. An empty prefix, which Parse never
// produces, admits nothing.
func pathUnder(p, prefix string) bool {
	if prefix == "" {
		return false
	}
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(p, prefix)
	}
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}
