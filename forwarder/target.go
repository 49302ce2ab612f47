package forwarder

import (
	"errors"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/cardgate/cardgate/allowlist"
)

// target is the one normalized form of the destination URL. It is what the
// allowlist is asked about, what the dialer connects to, what TLS verifies
// (SNI) and what the logs name: there is no second parse anywhere.
type target struct {
	host string     // lowercase ASCII, no trailing dot; an IP in canonical form
	ip   netip.Addr // valid only when host is an IP literal
	port int
	path string // escaped path, starting with "/"
	// rawQuery is passed through as the caller wrote it (after the checks in
	// parseTarget); it never carries card data.
	rawQuery string
}

// URL returns the outbound URL.
func (t *target) URL() *url.URL {
	return &url.URL{Scheme: "https", Host: t.hostPort(), Path: mustUnescape(t.path), RawPath: t.path, RawQuery: t.rawQuery}
}

// hostPort is the authority as it goes on the wire and in the Host header;
// the port is omitted when it is the https default.
func (t *target) hostPort() string {
	h := t.host
	if t.ip.Is6() {
		h = "[" + h + "]"
	}
	if t.port == 443 {
		return h
	}
	return h + ":" + strconv.Itoa(t.port)
}

// dialAddr is host:port with the port always present.
func (t *target) dialAddr() string {
	h := t.host
	if t.ip.Is6() {
		h = "[" + h + "]"
	}
	return h + ":" + strconv.Itoa(t.port)
}

func mustUnescape(p string) string {
	s, err := url.PathUnescape(p)
	if err != nil {
		// parseTarget has already unescaped this path once.
		return p
	}
	return s
}

// parseTarget parses and normalizes the caller's URL, refusing every form
// that could make the checked destination differ from the one a server,
// proxy or other URL parser would see. It returns a *Error.
//
// Refused: anything but https; userinfo; an opaque or relative URL; a
// fragment; backslashes, whitespace and control characters anywhere;
// percent-encoding in the host; non-ASCII hosts (send punycode: we do not
// apply IDNA mapping ourselves, so two spellings can never meet in one
// entry); numeric hosts that some resolver would read as an IPv4 address
// (2130706433, 0x7f.1, 0177.0.0.1, 127.1); IPv6 zones; empty or
// non-decimal ports; "." and ".." segments, empty segments, ';' (path
// parameters), encoded "/", "\", ".", ";" and NUL, and escapes of spaces,
// controls and non-ASCII bytes in the path.
func parseTarget(raw string) (*target, *Error) {
	bad := func(msg string) (*target, *Error) {
		return nil, notSent(CodeDestinationNotAllowed, "url: "+msg)
	}
	if raw == "" {
		return nil, notSent(CodeInvalidRequest, "url: is required")
	}
	if len(raw) > maxURLBytes {
		return nil, notSent(CodeInvalidRequest, "url: longer than "+strconv.Itoa(maxURLBytes)+" bytes")
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c <= ' ' || c == 0x7f || c == '\\' || c >= 0x80 {
			return bad("contains a space, control, non-ASCII or backslash character")
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("does not parse")
	}
	if u.Scheme != "https" {
		return bad("scheme must be https")
	}
	if u.Opaque != "" || u.Host == "" {
		return bad("must be an absolute https://host/path URL")
	}
	if u.User != nil || strings.Contains(u.Host, "@") {
		return bad("must not contain userinfo")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return bad("must not contain a fragment")
	}
	if strings.Contains(u.Host, "%") {
		return bad("host must not be percent-encoded or carry an IPv6 zone")
	}

	t := &target{rawQuery: u.RawQuery}
	host, port, err := splitHostPort(u.Host)
	if err != nil {
		return bad(err.Error())
	}
	t.port = port

	if strings.HasPrefix(host, "[") {
		a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
		if err != nil || !a.Is6() || a.Zone() != "" {
			return bad("bad IPv6 literal")
		}
		t.ip, t.host = a, a.String()
	} else {
		h := strings.ToLower(strings.TrimSuffix(host, "."))
		if a, err := netip.ParseAddr(h); err == nil {
			t.ip, t.host = a, a.String()
		} else {
			if msg := checkHostname(h); msg != "" {
				return bad(msg)
			}
			t.host = h
		}
	}

	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	// The allowlist's own check, which Match applies to the same path: the
	// path prefix it checked must be the path the processor routes on.
	if err := allowlist.CheckPath(p); err != nil {
		var pe *allowlist.PathError
		if !errors.As(err, &pe) {
			return bad("path is not clean")
		}
		return bad("path " + pe.Reason)
	}
	t.path = p
	return t, nil
}

// splitHostPort splits an authority. The port must be 1–5 decimal digits
// in 1..65535; it is compared with the entry as an integer.
func splitHostPort(hostport string) (string, int, error) {
	host, portStr := hostport, ""
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return "", 0, errString("bad IPv6 literal")
		}
		host, portStr = hostport[:end+1], hostport[end+1:]
		if portStr != "" && portStr[0] != ':' {
			return "", 0, errString("bad authority")
		}
	} else if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
		host, portStr = hostport[:i], hostport[i:]
	}
	if portStr == "" {
		return host, 443, nil
	}
	portStr = portStr[1:]
	if portStr == "" || len(portStr) > 5 {
		return "", 0, errString("bad port")
	}
	n := 0
	for i := 0; i < len(portStr); i++ {
		c := portStr[i]
		if c < '0' || c > '9' {
			return "", 0, errString("bad port")
		}
		n = n*10 + int(c-'0')
	}
	if n < 1 || n > 65535 {
		return "", 0, errString("bad port")
	}
	return host, n, nil
}

type errString string

func (e errString) Error() string { return string(e) }

// checkHostname returns "" for an acceptable DNS name, or why it is not.
// Only LDH labels (plus "_", which some processors use) are accepted, and a
// name whose last label is numeric is refused: WHATWG URL parsers, curl and
// inet_aton read such names as IPv4 addresses (127.1, 0x7f000001, 017700000001).
func checkHostname(h string) string {
	if h == "" || len(h) > 253 {
		return "bad host"
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "bad host"
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "host must be an ASCII (punycode) name or an IP address"
			}
		}
	}
	if looksNumeric(labels[len(labels)-1]) {
		return "host is a numeric IPv4 form"
	}
	return ""
}

// looksNumeric reports whether a label would be parsed as a number by an
// IPv4 parser: decimal, octal (leading 0) or hex (0x…).
func looksNumeric(l string) bool {
	s := l
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		s = s[2:]
		for i := 0; i < len(s); i++ {
			c := s[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
