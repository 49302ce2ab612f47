package hopbyhop

import (
	"net/http"
	"strings"
)

// Is reports whether the canonical header name is hop-by-hop by
// definition, whatever the Connection header says: Connection and the
// fields RFC 9110 and RFC 7230 name as per-connection, plus the
// widespread non-standard Proxy-Connection and HTTP/2's upgrade settings.
func Is(name string) bool {
	switch name {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Http2-Settings":
		return true
	}
	return false
}

// Named returns the canonical names that h's Connection header lists
// (RFC 9110 §7.6.1: "Connection: close, X-Foo" makes X-Foo hop-by-hop for
// this message), or nil when there are none. h may hold non-canonical
// keys, as a caller's JSON headers do: every key that canonicalizes to
// Connection counts, each value is a comma-separated list, and empty
// items are skipped.
func Named(h map[string][]string) map[string]bool {
	var out map[string]bool
	for name, vals := range h {
		if len(name) != len("Connection") || http.CanonicalHeaderKey(name) != "Connection" {
			continue
		}
		for _, v := range vals {
			for n := range strings.SplitSeq(v, ",") {
				if n = strings.TrimSpace(n); n == "" {
					continue
				}
				if out == nil {
					out = map[string]bool{}
				}
				out[http.CanonicalHeaderKey(n)] = true
			}
		}
	}
	return out
}
