package forwarder

import (
	"context"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cardgate/cardgate/allowlist"
)

// TestForwardBypassAttempts is the table of ways to make the gateway send a
// card somewhere the allowlist entry did not name. Every refused case must
// leave the processor untouched; the few allowed cases prove that the
// normalization accepts the harmless spellings of the entry's own URL.
//
// The entry is https://pay.example.com:PORT/v1, resolving to 127.0.0.1,
// opened to 127.0.0.1/32 only (the test processor listens there).
func TestForwardBypassAttempts(t *testing.T) {
	const (
		notAllowed = CodeDestinationNotAllowed
		forbidden  = CodeAddressForbidden
	)
	noLoopback := func(o *Options, d *allowlist.Destination) { d.UnsafeAllowRanges = nil }
	ipEntry := func(ip string, allow ...string) envOpt {
		return func(o *Options, d *allowlist.Destination) {
			d.Host = ip
			d.UnsafeAllowRanges = nil
			for _, a := range allow {
				d.UnsafeAllowRanges = append(d.UnsafeAllowRanges, netip.MustParsePrefix(a))
			}
		}
	}
	tests := []struct {
		name    string
		url     string // PORT is replaced by the processor's port
		mod     envOpt
		dns     []string // answers for pay.example.com; nil keeps 127.0.0.1
		headers http.Header
		want    []string // acceptable codes; empty means the forward succeeds
	}{
		// URL-parsing confusions.
		{name: "plain http", url: "http://pay.example.com:PORT/v1/charges", want: []string{notAllowed}},
		{name: "scheme case", url: "HTTPS://pay.example.com:PORT/v1/charges"}, // the scheme is case-insensitive
		{name: "userinfo with real host", url: "https://u:p@pay.example.com:PORT/v1/charges", want: []string{notAllowed}},
		{name: "userinfo hides host", url: "https://pay.example.com:PORT@evil.test/v1/charges", want: []string{notAllowed}},
		{name: "fragment hides host", url: "https://evil.test#@pay.example.com:PORT/v1/charges", want: []string{notAllowed}},
		{name: "backslash before at", url: `https://evil.test\@pay.example.com:PORT/v1/charges`, want: []string{notAllowed}},
		{name: "backslash after host", url: `https://pay.example.com:PORT\@evil.test/v1/charges`, want: []string{notAllowed}},
		{name: "backslash in path", url: `https://pay.example.com:PORT/v1\..\admin`, want: []string{notAllowed}},
		{name: "dot-dot out of prefix", url: "https://pay.example.com:PORT/v1/../admin", want: []string{notAllowed}},
		{name: "encoded dot-dot", url: "https://pay.example.com:PORT/v1/%2e%2e/admin", want: []string{notAllowed}},
		{name: "encoded slash", url: "https://pay.example.com:PORT/v1%2fcharges", want: []string{notAllowed}},
		{name: "encoded backslash", url: "https://pay.example.com:PORT/v1%5ccharges", want: []string{notAllowed}},
		{name: "dot segment", url: "https://pay.example.com:PORT/v1/./charges", want: []string{notAllowed}},
		{name: "empty segment", url: "https://pay.example.com:PORT//v1/charges", want: []string{notAllowed}},
		{name: "encoded NUL", url: "https://pay.example.com:PORT/v1/a%00b", want: []string{notAllowed}},
		{name: "prefix boundary", url: "https://pay.example.com:PORT/v1charges", want: []string{notAllowed}},
		{name: "dot-dot-semicolon", url: "https://pay.example.com:PORT/v1/..;/admin", want: []string{notAllowed}}, // Tomcat, Jetty: /v1/../admin
		{name: "path parameter", url: "https://pay.example.com:PORT/v1;x=1/charges", want: []string{notAllowed}},
		{name: "encoded semicolon", url: "https://pay.example.com:PORT/v1/..%3b/admin", want: []string{notAllowed}},
		{name: "encoded semicolon upper", url: "https://pay.example.com:PORT/v1/..%3B/admin", want: []string{notAllowed}},
		{name: "overlong utf-8 dots", url: "https://pay.example.com:PORT/v1/%c0%ae%c0%ae/admin", want: []string{notAllowed}},
		{name: "three-byte overlong dot", url: "https://pay.example.com:PORT/v1/%e0%80%ae%e0%80%ae/admin", want: []string{notAllowed}},
		{name: "encoded control byte", url: "https://pay.example.com:PORT/v1/a%0d%0aX:1", want: []string{notAllowed}},
		{name: "encoded DEL", url: "https://pay.example.com:PORT/v1/a%7f", want: []string{notAllowed}},
		{name: "space in host", url: "https://pay example.com:PORT/v1/charges", want: []string{notAllowed}},
		{name: "percent-encoded host", url: "https://pay%2eexample.com:PORT/v1/charges", want: []string{notAllowed}},
		{name: "unicode look-alike host", url: "https://pаy.example.com:PORT/v1/charges", want: []string{notAllowed}}, // Cyrillic а
		{name: "suffix host", url: "https://pay.example.com.evil.test:PORT/v1/charges", want: []string{notAllowed}},
		{name: "prefix host", url: "https://evilpay.example.com:PORT/v1/charges", want: []string{notAllowed}},
		{name: "trailing dot", url: "https://pay.example.com.:PORT/v1/charges"},
		{name: "two trailing dots", url: "https://pay.example.com..:PORT/v1/charges", want: []string{notAllowed}},
		{name: "uppercase host", url: "https://PAY.Example.COM:PORT/v1/charges"},

		// Port tricks.
		{name: "default port", url: "https://pay.example.com/v1/charges", want: []string{notAllowed}},
		{name: "empty port", url: "https://pay.example.com:/v1/charges", want: []string{notAllowed}},
		{name: "port overflow", url: "https://pay.example.com:PORT0000/v1/charges", want: []string{notAllowed}},
		{name: "two ports", url: "https://pay.example.com:443:PORT/v1/charges", want: []string{notAllowed}},
		{name: "port sign", url: "https://pay.example.com:+PORT/v1/charges", want: []string{notAllowed}},

		// IPv4 encodings of loopback in the URL host.
		{name: "ipv4 literal not named", url: "https://127.0.0.1:PORT/v1/charges", want: []string{notAllowed, forbidden}},
		{name: "decimal ipv4", url: "https://2130706433:PORT/v1/charges", want: []string{notAllowed}},
		{name: "hex ipv4", url: "https://0x7f000001:PORT/v1/charges", want: []string{notAllowed}},
		{name: "octal ipv4", url: "https://0177.0.0.1:PORT/v1/charges", want: []string{notAllowed}},
		{name: "short ipv4", url: "https://127.1:PORT/v1/charges", want: []string{notAllowed}},
		{name: "dotted hex ipv4", url: "https://0x7f.0x0.0x0.0x1:PORT/v1/charges", want: []string{notAllowed}},
		{name: "zero-padded ipv4", url: "https://127.000.000.001:PORT/v1/charges", want: []string{notAllowed}},
		{name: "zero address", url: "https://0.0.0.0:PORT/v1/charges", want: []string{notAllowed, forbidden}},
		{name: "metadata address", url: "https://169.254.169.254:PORT/v1/charges", want: []string{notAllowed, forbidden}},

		// IPv6 forms.
		{name: "ipv6 loopback", url: "https://[::1]:PORT/v1/charges", want: []string{notAllowed, forbidden}},
		{name: "ipv4-mapped", url: "https://[::ffff:127.0.0.1]:PORT/v1/charges", want: []string{notAllowed, forbidden}},
		{name: "ipv4-mapped hex", url: "https://[::ffff:7f00:1]:PORT/v1/charges", want: []string{notAllowed, forbidden}},
		{name: "ipv4-compatible", url: "https://[::127.0.0.1]:PORT/v1/charges", want: []string{notAllowed, forbidden}},
		{name: "nat64", url: "https://[64:ff9b::7f00:1]:PORT/v1/charges", want: []string{notAllowed, forbidden}},
		{name: "6to4", url: "https://[2002:7f00:1::1]:PORT/v1/charges", want: []string{notAllowed, forbidden}},
		{name: "teredo", url: "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]:PORT/v1/charges", want: []string{notAllowed, forbidden}},
		{name: "ula", url: "https://[fd00::1]:PORT/v1/charges", want: []string{notAllowed, forbidden}},
		{name: "link-local with zone", url: "https://[fe80::1%25eth0]:PORT/v1/charges", want: []string{notAllowed}},
		{name: "unbracketed ipv6", url: "https://::1:PORT/v1/charges", want: []string{notAllowed}},

		// Entries that name an IP literal.
		{name: "ip entry, exact ip", url: "https://127.0.0.1:PORT/v1/charges", mod: ipEntry("127.0.0.1", "127.0.0.1/32")},
		{name: "ip entry, not unsafe-allowed", url: "https://127.0.0.1:PORT/v1/charges", mod: ipEntry("127.0.0.1"), want: []string{forbidden}},
		{name: "ip entry, decimal form", url: "https://2130706433:PORT/v1/charges", mod: ipEntry("127.0.0.1", "127.0.0.1/32"), want: []string{notAllowed}},
		{name: "ip entry, mapped form", url: "https://[::ffff:127.0.0.1]:PORT/v1/charges", mod: ipEntry("127.0.0.1", "127.0.0.1/32"), want: []string{notAllowed, forbidden}},
		{name: "ip entry, name", url: "https://pay.example.com:PORT/v1/charges", mod: ipEntry("127.0.0.1", "127.0.0.1/32"), want: []string{notAllowed}},

		// DNS answers.
		{name: "loopback without unsafe range", url: "https://pay.example.com:PORT/v1/charges", mod: noLoopback, want: []string{forbidden}},
		{name: "private answer", url: "https://pay.example.com:PORT/v1/charges", dns: []string{"10.0.0.1"}, want: []string{forbidden}},
		{name: "cgnat answer", url: "https://pay.example.com:PORT/v1/charges", dns: []string{"100.64.0.1"}, want: []string{forbidden}},
		{name: "metadata answer", url: "https://pay.example.com:PORT/v1/charges", dns: []string{"169.254.169.254"}, want: []string{forbidden}},
		{name: "mixed answers", url: "https://pay.example.com:PORT/v1/charges", dns: []string{"127.0.0.1", "10.0.0.1"}, want: []string{forbidden}},
		{name: "mixed, bad one last", url: "https://pay.example.com:PORT/v1/charges", dns: []string{"127.0.0.1", "fe80::1"}, want: []string{forbidden}},
		{name: "outside unsafe range", url: "https://pay.example.com:PORT/v1/charges", dns: []string{"127.0.0.2"}, want: []string{forbidden}},
		{name: "mapped private answer", url: "https://pay.example.com:PORT/v1/charges", dns: []string{"::ffff:10.0.0.1"}, want: []string{forbidden}},
		{name: "mapped loopback answer", url: "https://pay.example.com:PORT/v1/charges", dns: []string{"::ffff:127.0.0.1"}}, // how LookupNetIP returns A records
		{name: "nat64 answer", url: "https://pay.example.com:PORT/v1/charges", dns: []string{"64:ff9b::7f00:1"}, want: []string{forbidden}},
		{name: "zero answer", url: "https://pay.example.com:PORT/v1/charges", dns: []string{"0.0.0.0"}, want: []string{forbidden}},
		{name: "no answers", url: "https://pay.example.com:PORT/v1/charges", dns: []string{}, want: []string{CodeDNSFailure}},

		// Header and Host tricks: stripped, and the request still goes to
		// the entry's host.
		{name: "host header", url: "https://pay.example.com:PORT/v1/charges", headers: http.Header{"Host": {"evil.test"}}},
		{name: "forwarded headers", url: "https://pay.example.com:PORT/v1/charges", headers: http.Header{"X-Forwarded-Host": {"evil.test"}, "Forwarded": {"host=evil.test"}}},
		{name: "connection header", url: "https://pay.example.com:PORT/v1/charges", headers: http.Header{"Connection": {"close, Authorization"}, "Authorization": {"Basic x"}}},

		// Routing overrides that IIS, Symfony and method-override
		// middlewares honour over the request line: refused, never sent.
		{name: "x-original-url", url: "https://pay.example.com:PORT/v1/charges", headers: http.Header{"X-Original-URL": {"/admin/export"}}, want: []string{CodeInvalidRequest}},
		{name: "x-rewrite-url", url: "https://pay.example.com:PORT/v1/charges", headers: http.Header{"X-Rewrite-URL": {"/admin/export"}}, want: []string{CodeInvalidRequest}},
		{name: "x-http-method-override", url: "https://pay.example.com:PORT/v1/charges", headers: http.Header{"X-HTTP-Method-Override": {"DELETE"}}, want: []string{CodeInvalidRequest}},
		{name: "x-http-method", url: "https://pay.example.com:PORT/v1/charges", headers: http.Header{"X-HTTP-Method": {"DELETE"}}, want: []string{CodeInvalidRequest}},
		{name: "x-method-override", url: "https://pay.example.com:PORT/v1/charges", headers: http.Header{"x-method-override": {"DELETE"}}, want: []string{CodeInvalidRequest}},
		{name: "override named in connection", url: "https://pay.example.com:PORT/v1/charges", headers: http.Header{"Connection": {"X-Original-URL"}, "X-Original-URL": {"/admin"}}, want: []string{CodeInvalidRequest}},
	}
	if len(tests) < 40 {
		t.Fatalf("only %d bypass cases", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []envOpt
			if tt.mod != nil {
				opts = append(opts, tt.mod)
			}
			e := newEnv(t, echo, opts...)
			if tt.dns != nil {
				e.res.set("pay.example.com", tt.dns...)
			}
			req := e.jsonRequest(`{"n":"{{card.number}}"}`)
			req.URL = strings.ReplaceAll(tt.url, "PORT", strconv.Itoa(e.p.port))
			for k, v := range tt.headers {
				req.Headers[k] = v
			}
			resp, err := e.f.Forward(context.Background(), req)
			got := e.p.requests()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Forward(%q) = %v, want success", req.URL, err)
				}
				if len(got) != 1 || resp.Outcome != Answered {
					t.Fatalf("processor got %d requests, outcome %q; want 1, answered", len(got), resp.Outcome)
				}
				if wantHost := "pay.example.com:" + strconv.Itoa(e.p.port); tt.mod == nil && got[0].host != wantHost {
					t.Errorf("processor saw Host %q, want %q", got[0].host, wantHost)
				}
				for _, h := range []string{"X-Forwarded-Host", "Forwarded", "Authorization"} {
					if tt.headers != nil && got[0].header.Get(h) != "" {
						t.Errorf("processor got %s", h)
					}
				}
				return
			}
			fe := forwardErrFrom(t, resp, err)
			if !slices.Contains(tt.want, fe.Code) || fe.Outcome != NotSent {
				t.Errorf("Forward(%q) = %q/%q (%v), want one of %v, not_sent", req.URL, fe.Code, fe.Outcome, fe, tt.want)
			}
			for name := range tt.headers {
				if c := http.CanonicalHeaderKey(name); fe.Code == CodeInvalidRequest && c != "Connection" && !strings.Contains(fe.Message, c) {
					t.Errorf("message %q does not name the header %s", fe.Message, c)
				}
			}
			if len(got) != 0 {
				t.Errorf("processor got %d requests, want 0", len(got))
			}
		})
	}
}

func forwardErrFrom(t *testing.T, resp *Response, err error) *Error {
	t.Helper()
	if err == nil {
		t.Fatalf("Forward = %+v, want an error", resp)
	}
	fe, ok := err.(*Error)
	if !ok {
		t.Fatalf("Forward error %T %v, want *Error", err, err)
	}
	return fe
}
