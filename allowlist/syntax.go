package allowlist

import (
	"strconv"
	"strings"
)

// maxIDBytes bounds an entry id.
const maxIDBytes = 63

// ValidID reports whether s is spelled as an entry id:
// ^[a-z0-9][a-z0-9._-]{0,62}$. Parse refuses an entry whose id is not;
// the forwarder and the kill switch call it too, so that a request or a
// switch naming anything else is refused before it is logged or stored,
// by the same rule.
func ValidID(s string) bool {
	if s == "" || len(s) > maxIDBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// PathError is CheckPath's error. Reason says what is wrong without
// repeating the path, so that it can be shown to whoever sent the path.
type PathError struct {
	Reason string // "has a dot segment", …
}

func (e *PathError) Error() string { return "allowlist: path " + e.Reason }

// CheckPath refuses an escaped URL path that different parsers could read
// differently: not absolute; a backslash, ';' (path parameters: Tomcat and
// Jetty strip them before they normalize, so "/v1/..;/admin" is
// "/v1/../admin" there), a space, control or non-ASCII byte; an encoded
// '/', '.', '\', ';' or NUL, a malformed escape or the escape of a space,
// control or non-ASCII byte (overlong UTF-8 dots such as %c0%ae among
// them, which old decoders read as '.'); an empty segment or a "." or ".."
// segment. A trailing slash is allowed. Match applies it to the request's
// path, raw and decoded, and the forwarder to the URL it will send, so
// that the path prefix an entry checked is the path the processor routes
// on. The error is a *PathError.
func CheckPath(p string) error {
	if r := pathProblem(p); r != "" {
		return &PathError{Reason: r}
	}
	return nil
}

// pathProblem returns what is wrong with p, or "".
func pathProblem(p string) string {
	if !strings.HasPrefix(p, "/") {
		return "must start with /"
	}
	if strings.Contains(p, `\`) {
		return "must not contain a backslash"
	}
	if strings.Contains(p, ";") {
		return "must not contain ';' (path parameters)"
	}
	lp := strings.ToLower(p)
	for _, bad := range []string{"%2f", "%2e", "%5c", "%00", "%3b"} {
		if strings.Contains(lp, bad) {
			return "must not contain encoded slashes, dots, backslashes, semicolons or NULs"
		}
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < 0x21 || c >= 0x7f {
			return "contains a space, control or non-ASCII character"
		}
		if c == '%' {
			if i+2 >= len(p) {
				return "has a malformed percent-escape"
			}
			// Base 16 admits exactly hex digits: no sign, prefix or '_'.
			b, err := strconv.ParseUint(p[i+1:i+3], 16, 8)
			if err != nil {
				return "has a malformed percent-escape"
			}
			if b < 0x21 || b >= 0x7f {
				return "escapes a space, control or non-ASCII byte"
			}
		}
	}
	if p == "/" {
		return ""
	}
	for s := range strings.SplitSeq(strings.TrimSuffix(p[1:], "/"), "/") {
		switch s {
		case "":
			return "has an empty segment (//)"
		case ".", "..":
			return "has a dot segment"
		}
	}
	return ""
}
