package forwarder

import (
	"strings"
	"testing"
)

// TestParseTargetRawBytes: bytes that url.Parse lets through in a query
// (space, backslash, bytes of 0x80 and up) would go on the request line
// as the caller wrote them; parseTarget's byte check is all that refuses
// them. Found by mutation testing (scripts/mutation): nothing else failed
// when that check was weakened.
func TestParseTargetRawBytes(t *testing.T) {
	const base = "https://pay.example.com/v1/charges"
	tests := []struct {
		name, url string
		ok        bool
	}{
		{"plain query", base + "?a=b", true},
		{"tilde, the last printable ASCII byte", base + "?a=~", true},
		{"space in the query", base + "?a=b c", false},
		{"backslash in the query", base + `?a=b\c`, false},
		{"DEL in the query", base + "?a=b\x7fc", false},
		{"byte 0x80 in the query", base + "?a=b\x80c", false},
		{"byte 0xff in the query", base + "?a=b\xffc", false},
		{"UTF-8 in the query", base + "?a=caf\u00e9", false},
		{"tab in the query", base + "?a=b\tc", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, e := parseTarget(tt.url)
			switch {
			case tt.ok && e != nil:
				t.Errorf("parseTarget(%q) = %s (%s), want it accepted", tt.url, e.Code, e.Message)
			case !tt.ok && e == nil:
				t.Errorf("parseTarget(%q) accepted, want %s", tt.url, CodeDestinationNotAllowed)
			case !tt.ok && e.Code != CodeDestinationNotAllowed:
				t.Errorf("parseTarget(%q) = %s, want %s", tt.url, e.Code, CodeDestinationNotAllowed)
			}
		})
	}
}

// TestParseTargetLength: a URL of exactly maxURLBytes is accepted, one
// byte more is refused.
func TestParseTargetLength(t *testing.T) {
	base := "https://pay.example.com/v1/charges?pad="
	at := base + strings.Repeat("a", maxURLBytes-len(base))
	if _, e := parseTarget(at); e != nil {
		t.Errorf("parseTarget(%d bytes) = %s (%s), want it accepted", len(at), e.Code, e.Message)
	}
	if _, e := parseTarget(at + "a"); e == nil || e.Code != CodeInvalidRequest {
		t.Errorf("parseTarget(%d bytes) = %v, want %s", len(at)+1, e, CodeInvalidRequest)
	}
}
