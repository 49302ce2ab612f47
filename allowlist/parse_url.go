// The grammar of an entry's url: scheme, host, port and path prefix.

package allowlist

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// parseEntryURL applies the rules for a destination URL in the document:
// https only; no userinfo, query or fragment; a lowercase ASCII host (IDNs
// in punycode), a wildcard only as a single leading "*." over at least two
// labels, IP literals only as exact hosts; a decimal port (default 443);
// and a clean path prefix.
func parseEntryURL(s string) (host string, port int, prefix string, err error) {
	if !strings.HasPrefix(s, "https://") {
		return "", 0, "", errors.New("must start with https://")
	}
	for _, c := range s {
		if c > 0x7e || c < 0x21 {
			return "", 0, "", errors.New("must be printable ASCII without spaces; write international host names in punycode (xn--…)")
		}
	}
	if strings.ContainsAny(s, `\`) {
		return "", 0, "", errors.New("must not contain a backslash")
	}
	rest := s[len("https://"):]
	authority, path, _ := strings.Cut(rest, "/")
	path = "/" + path
	if strings.ContainsAny(authority, "?#") || strings.ContainsAny(path, "?#") {
		return "", 0, "", errors.New("must not have a query or fragment; the path is a prefix")
	}
	if strings.Contains(authority, "@") {
		return "", 0, "", errors.New("must not contain userinfo (user@)")
	}
	if strings.Contains(authority, "%") {
		return "", 0, "", errors.New("host must not contain percent-escapes or zones")
	}
	hostPart, portPart := authority, ""
	if strings.HasPrefix(authority, "[") {
		end := strings.Index(authority, "]")
		if end < 0 {
			return "", 0, "", errors.New("unterminated [ in host")
		}
		hostPart, portPart = authority[1:end], authority[end+1:]
		a, perr := netip.ParseAddr(hostPart)
		if perr != nil || !a.Is6() || a.Is4In6() {
			return "", 0, "", fmt.Errorf("[%s] is not an IPv6 address", hostPart)
		}
		host = a.String()
	} else {
		if i := strings.LastIndex(authority, ":"); i >= 0 {
			hostPart, portPart = authority[:i], authority[i:]
		}
		if a, perr := netip.ParseAddr(hostPart); perr == nil {
			if !a.Is4() || a.String() != hostPart {
				return "", 0, "", fmt.Errorf("%q: IPv6 literals go in brackets and IPv4 in dotted decimal", hostPart)
			}
			host = a.String()
		} else {
			if hostPart != strings.ToLower(hostPart) {
				return "", 0, "", fmt.Errorf("host %q must be lowercase", hostPart)
			}
			if err := checkHostName(hostPart, true); err != nil {
				return "", 0, "", err
			}
			host = hostPart
		}
	}
	port = 443
	if portPart != "" {
		p, ok := strings.CutPrefix(portPart, ":")
		if !ok {
			return "", 0, "", fmt.Errorf("unexpected %q after the host", portPart)
		}
		if port, err = parsePort(p); err != nil {
			return "", 0, "", err
		}
	}
	if err := checkPath(path, true); err != nil {
		return "", 0, "", err
	}
	if path != "/" && strings.HasSuffix(path, "/") {
		return "", 0, "", fmt.Errorf("path prefix %q: drop the trailing slash; prefixes match on whole segments", path)
	}
	return host, port, path, nil
}

// parsePort accepts 1–65535 in decimal without sign or leading zeros, so
// the port a reviewer reads is the only way to write it.
func parsePort(p string) (int, error) {
	if p == "" || len(p) > 5 || p[0] == '0' {
		return 0, fmt.Errorf("port %q must be a decimal from 1 to 65535 without leading zeros", p)
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("port %q must be decimal", p)
		}
	}
	n, _ := strconv.Atoi(p)
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q is out of range", p)
	}
	return n, nil
}

// checkHostName checks a lowercase DNS name. With wildcard set, a single
// leading "*." over at least two labels is allowed: "*.acme.example" but
// not "*.example", "a.*.example" or "*acme.example".
func checkHostName(h string, wildcard bool) error {
	if h == "" {
		return errors.New("host is empty")
	}
	if len(h) > 253 {
		return fmt.Errorf("host %q is longer than 253 characters", h)
	}
	if strings.HasSuffix(h, ".") {
		return fmt.Errorf("host %q: drop the trailing dot", h)
	}
	labels := strings.Split(h, ".")
	if labels[0] == "*" && wildcard {
		labels = labels[1:]
		if len(labels) < 2 {
			return fmt.Errorf("host %q: a wildcard must sit over at least two labels (*.acme.example)", h)
		}
	}
	for _, l := range labels {
		if strings.Contains(l, "*") {
			return fmt.Errorf("host %q: the only wildcard allowed is a single leading \"*.\"", h)
		}
		if l == "" || len(l) > 63 {
			return fmt.Errorf("host %q has an empty label or one longer than 63 characters", h)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("host %q: a label may not start or end with '-'", h)
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("host %q: only a-z, 0-9 and '-' are allowed; write international names in punycode (xn--…)", h)
			}
		}
	}
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" {
		// "10.1" or "1.2.3" are read as addresses by some resolvers.
		return fmt.Errorf("host %q ends in an all-digit label; write IP addresses in full", h)
	}
	return nil
}

// checkPath is CheckPath with the path named in the message, for the
// document's errors. In the document (entry set) no percent-escape is
// allowed at all.
func checkPath(p string, entry bool) error {
	if r := pathProblem(p); r != "" {
		return fmt.Errorf("path %q %s", p, r)
	}
	if entry && strings.Contains(p, "%") {
		return fmt.Errorf("path prefix %q must not contain percent-escapes", p)
	}
	return nil
}
