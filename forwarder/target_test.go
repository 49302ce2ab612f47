package forwarder

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardgate/cardgate/allowlist"
)

// TestParseTarget pins down the one normalization: what Match sees, what is
// dialed, what TLS verifies and what is logged.
func TestParseTarget(t *testing.T) {
	type out struct {
		Host, Path, Query, HostPort, DialAddr, URL string
		Port                                       int
	}
	tests := []struct {
		in   string
		want *out // nil means refused
	}{
		{"https://pay.example.com/v1/charges", &out{"pay.example.com", "/v1/charges", "", "pay.example.com", "pay.example.com:443", "https://pay.example.com/v1/charges", 443}},
		{"https://PAY.Example.com.:8443/v1?a=b&c=%20", &out{"pay.example.com", "/v1", "a=b&c=%20", "pay.example.com:8443", "pay.example.com:8443", "https://pay.example.com:8443/v1?a=b&c=%20", 8443}},
		{"https://pay.example.com", &out{"pay.example.com", "/", "", "pay.example.com", "pay.example.com:443", "https://pay.example.com/", 443}},
		{"https://pay.example.com:00443/x", &out{"pay.example.com", "/x", "", "pay.example.com", "pay.example.com:443", "https://pay.example.com/x", 443}},
		{"https://[2606:4700::1]:8443/v1", &out{"2606:4700::1", "/v1", "", "[2606:4700::1]:8443", "[2606:4700::1]:8443", "https://[2606:4700::1]:8443/v1", 8443}},
		{"https://93.184.215.14/v1/a%41b", &out{"93.184.215.14", "/v1/a%41b", "", "93.184.215.14", "93.184.215.14:443", "https://93.184.215.14/v1/a%41b", 443}},
		{"https://93.184.215.14/v1/a%20b", nil}, // allowlist Match refuses escaped spaces too
		{"https://pay.example.com/v1/..;/admin", nil},
		{"https://pay.example.com/v1;jsessionid=1", nil},
		{"https://pay.example.com/v1/%3B", nil},
		{"https://pay.example.com/v1/%c0%ae%c0%ae/x", nil},
		{"https://pay.example.com/v1/%C0%AE", nil},
		{"https://pay.example.com/v1/%e2%80%ae", nil},
		{"https://pay.example.com/v1/%09", nil},
		{"https://pay.example.com/v1/%zz", nil},
		{"https://pay.example.com/v1/%4", nil},
		{"https://xn--bcher-kva.example/v1", &out{"xn--bcher-kva.example", "/v1", "", "xn--bcher-kva.example", "xn--bcher-kva.example:443", "https://xn--bcher-kva.example/v1", 443}},
		{"https://bücher.example/v1", nil},
		{"https://pay.example.com:0/v1", nil},
		{"https://pay.example.com:65536/v1", nil},
		{"https://pay.example.com:1e3/v1", nil},
		{"https://pay.example.com/v1#frag", nil},
		{"https://pay.example.com/v1#", nil},
		{"https:pay.example.com/v1", nil},
		{"//pay.example.com/v1", nil},
		{"https:///v1", nil},
		{"https://pay..example.com/v1", nil},
		{"https://-.example.com/v1", nil},
		{"https://pay-.example.com/v1", nil},
		{"https://pay.example.123/v1", nil},
		{"https://pay.example.0x1f/v1", nil},
		{"https://pay.example.com/v1\t", nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			tg, e := parseTarget(tt.in)
			if tt.want == nil {
				if e == nil {
					t.Fatalf("parseTarget(%q) = %+v, want refused", tt.in, tg)
				}
				if e.Outcome != NotSent {
					t.Errorf("outcome %q", e.Outcome)
				}
				return
			}
			if e != nil {
				t.Fatalf("parseTarget(%q) = %v, want ok", tt.in, e)
			}
			got := &out{tg.host, tg.path, tg.rawQuery, tg.hostPort(), tg.dialAddr(), tg.URL().String(), tg.port}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseTarget(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// TestParseTargetPathAgreesWithAllowlist: the forwarder refuses exactly the
// paths the allowlist's Match would, with the allowlist's reason and
// without repeating the path.
func TestParseTargetPathAgreesWithAllowlist(t *testing.T) {
	for _, p := range []string{"/", "/v1/charges", "/v1/charges/", "/v1/a%41b", "/v1/a%20b", "/v1;x", "/v1/..;/admin",
		"/v1/%2e%2e/x", "/v1%2Fx", "/v1%5c", "/v1%00", "/v1%3B", "/v1/%c0%ae", "/v1//x", "/v1/../x", "/v1/./x", "/v1/.",
		"/v1/%7e", "/v1/~user/x-y_z.json"} {
		t.Run(p, func(t *testing.T) {
			_, e := parseTarget("https://pay.example.com" + p)
			err := allowlist.CheckPath(p)
			if (e == nil) != (err == nil) {
				t.Fatalf("parseTarget(%q) = %v, allowlist.CheckPath = %v; want both to refuse or both to accept", p, e, err)
			}
			var pe *allowlist.PathError
			if err != nil && errors.As(err, &pe) && !strings.Contains(e.Message, pe.Reason) {
				t.Errorf("parseTarget(%q) message %q, want the allowlist's reason %q", p, e.Message, pe.Reason)
			}
			if e != nil && len(p) > 3 && strings.Contains(e.Message, p) {
				t.Errorf("parseTarget(%q) message %q repeats the path", p, e.Message)
			}
		})
	}
}
