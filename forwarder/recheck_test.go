package forwarder

import (
	"net/netip"
	"os"
	"testing"

	"github.com/cardgate/cardgate/allowlist"
)

// recheckEntries parses testdata/recheck.yaml, so that the entries' host,
// port and path prefix are in the form allowlist.Parse gives them.
func recheckEntries(t *testing.T) map[string]allowlist.Destination {
	t.Helper()
	raw, err := os.ReadFile("testdata/recheck.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := allowlist.ParseUnverified(raw)
	if err != nil {
		t.Fatalf("testdata/recheck.yaml: %v", err)
	}
	out := map[string]allowlist.Destination{}
	for _, d := range doc.Destinations {
		out[d.ID] = d
	}
	return out
}

// rawTarget is a target as parseTarget would never build it (not
// lowercased, a trailing dot, unclean paths), to show that the re-check
// does not lean on parseTarget having refused it.
func rawTarget(host string, port int, path string) *target {
	t := &target{host: host, port: port, path: path}
	if a, err := netip.ParseAddr(host); err == nil {
		t.ip = a
	}
	return t
}

// TestRecheck table-tests the re-check that runs after Match: every field
// in which the request can differ from the entry it matched has a case
// that must be refused, next to a control that passes. Each case starts
// from a request that passes (the entry's own id, POST, the listed caller,
// the number field, url) and changes one thing.
func TestRecheck(t *testing.T) {
	entries := recheckEntries(t)
	const (
		admitted  = ""
		notAllow  = CodeDestinationNotAllowed
		forbidden = CodeAddressForbidden
	)
	tests := []struct {
		name  string
		entry string
		url   string                                                   // parsed by parseTarget
		raw   *target                                                  // used instead of url when set
		edit  func(r *Request, v *validated, d *allowlist.Destination) // the one difference
		want  string                                                   // "" admitted, else the code
	}{
		// An exact host on a non-default port under /v1/charges.
		{name: "exact: the prefix itself", entry: "acme", url: "https://pay.example.com:8443/v1/charges", want: admitted},
		{name: "exact: below the prefix", entry: "acme", url: "https://pay.example.com:8443/v1/charges/ch_1/capture", want: admitted},
		{name: "exact: a query is not matched", entry: "acme", url: "https://pay.example.com:8443/v1/charges?expand=customer", want: admitted},
		{name: "exact: host case and trailing dot normalized", entry: "acme", url: "https://PAY.Example.COM.:8443/v1/charges", want: admitted},
		{name: "exact: every listed field", entry: "acme", url: "https://pay.example.com:8443/v1/charges", want: admitted,
			edit: func(r *Request, v *validated, d *allowlist.Destination) {
				v.fields = []allowlist.Field{allowlist.FieldExpMonth, allowlist.FieldExpYear, allowlist.FieldNumber}
			}},

		// id
		{name: "id: another entry's", entry: "acme", url: "https://pay.example.com:8443/v1/charges", want: notAllow,
			edit: func(r *Request, v *validated, d *allowlist.Destination) { r.Destination = "acme-wild" }},
		{name: "id: empty", entry: "acme", url: "https://pay.example.com:8443/v1/charges", want: notAllow,
			edit: func(r *Request, v *validated, d *allowlist.Destination) { r.Destination = "" }},
		{name: "id: other case", entry: "acme", url: "https://pay.example.com:8443/v1/charges", want: notAllow,
			edit: func(r *Request, v *validated, d *allowlist.Destination) { r.Destination = "ACME" }},

		// host
		{name: "host: another name", entry: "acme", url: "https://api.example.com:8443/v1/charges", want: notAllow},
		{name: "host: the parent domain", entry: "acme", url: "https://example.com:8443/v1/charges", want: notAllow},
		{name: "host: a subdomain of an exact entry", entry: "acme", url: "https://a.pay.example.com:8443/v1/charges", want: notAllow},
		{name: "host: a longer label", entry: "acme", url: "https://xpay.example.com:8443/v1/charges", want: notAllow},
		{name: "host: the entry as a prefix", entry: "acme", url: "https://pay.example.com.evil.test:8443/v1/charges", want: notAllow},
		{name: "host: an IP where the entry names a host", entry: "acme", url: "https://93.184.216.34:8443/v1/charges", want: forbidden},
		{name: "host: not lowercased", entry: "acme", raw: rawTarget("PAY.EXAMPLE.COM", 8443, "/v1/charges"), want: notAllow},
		{name: "host: trailing dot kept", entry: "acme", raw: rawTarget("pay.example.com.", 8443, "/v1/charges"), want: notAllow},

		// port
		{name: "port: the default where the entry names another", entry: "acme", url: "https://pay.example.com/v1/charges", want: notAllow},
		{name: "port: one off", entry: "acme", url: "https://pay.example.com:8444/v1/charges", want: notAllow},
		{name: "port: zero", entry: "acme", raw: rawTarget("pay.example.com", 0, "/v1/charges"), want: notAllow},

		// path prefix, on a segment boundary
		{name: "path: prefix continued without a slash", entry: "acme", url: "https://pay.example.com:8443/v1/chargesX", want: notAllow},
		{name: "path: shorter than the prefix", entry: "acme", url: "https://pay.example.com:8443/v1/charge", want: notAllow},
		{name: "path: the prefix's parent", entry: "acme", url: "https://pay.example.com:8443/v1", want: notAllow},
		{name: "path: root", entry: "acme", url: "https://pay.example.com:8443/", want: notAllow},
		{name: "path: a sibling", entry: "acme", url: "https://pay.example.com:8443/v1/refunds", want: notAllow},
		{name: "path: other case", entry: "acme", url: "https://pay.example.com:8443/V1/charges", want: notAllow},

		// escaped paths: compared decoded, as the processor routes them
		{name: "escaped: a letter inside the prefix, compared decoded as Match does", entry: "acme", url: "https://pay.example.com:8443/v1/charge%73", want: admitted},
		{name: "escaped: a letter that decodes past the boundary", entry: "acme", url: "https://pay.example.com:8443/v1/charges%58", want: notAllow},
		{name: "escaped: a letter that decodes to a sibling", entry: "acme", url: "https://pay.example.com:8443/v1/%72efunds", want: notAllow},
		{name: "escaped: an encoded slash", entry: "acme", raw: rawTarget("pay.example.com", 8443, "/v1%2Fcharges"), want: notAllow},
		{name: "escaped: encoded dot segments", entry: "acme", raw: rawTarget("pay.example.com", 8443, "/v1/charges/%2E%2E/%2E%2E/admin"), want: notAllow},
		{name: "escaped: dot segments", entry: "acme", raw: rawTarget("pay.example.com", 8443, "/v1/charges/../../admin"), want: notAllow},
		{name: "escaped: an encoded backslash", entry: "acme", raw: rawTarget("pay.example.com", 8443, "/v1/charges/..%5C..%5Cadmin"), want: notAllow},

		// method
		{name: "method: not listed", entry: "acme", url: "https://pay.example.com:8443/v1/charges", want: notAllow,
			edit: func(r *Request, v *validated, d *allowlist.Destination) { r.Method = "GET" }},
		{name: "method: other case", entry: "acme", url: "https://pay.example.com:8443/v1/charges", want: notAllow,
			edit: func(r *Request, v *validated, d *allowlist.Destination) { r.Method = "post" }},
		{name: "method: empty", entry: "acme", url: "https://pay.example.com:8443/v1/charges", want: notAllow,
			edit: func(r *Request, v *validated, d *allowlist.Destination) { r.Method = "" }},

		// caller
		{name: "caller: another", entry: "acme", url: "https://pay.example.com:8443/v1/charges", want: notAllow,
			edit: func(r *Request, v *validated, d *allowlist.Destination) { r.Caller = "spiffe://cardgate.test/payouts" }},
		{name: "caller: the listed one with a suffix", entry: "acme", url: "https://pay.example.com:8443/v1/charges", want: notAllow,
			edit: func(r *Request, v *validated, d *allowlist.Destination) { r.Caller = caller + "/x" }},
		{name: "caller: empty", entry: "acme", url: "https://pay.example.com:8443/v1/charges", want: notAllow,
			edit: func(r *Request, v *validated, d *allowlist.Destination) { r.Caller = "" }},

		// fields
		{name: "fields: the cvc, not listed", entry: "acme", url: "https://pay.example.com:8443/v1/charges", want: notAllow,
			edit: func(r *Request, v *validated, d *allowlist.Destination) {
				v.fields = []allowlist.Field{allowlist.FieldCVC, allowlist.FieldNumber}
			}},
		{name: "fields: the name, not listed", entry: "acme", url: "https://pay.example.com:8443/v1/charges", want: notAllow,
			edit: func(r *Request, v *validated, d *allowlist.Destination) {
				v.fields = []allowlist.Field{allowlist.FieldName}
			}},
		{name: "fields: unknown", entry: "acme", url: "https://pay.example.com:8443/v1/charges", want: notAllow,
			edit: func(r *Request, v *validated, d *allowlist.Destination) {
				v.fields = []allowlist.Field{"pin"}
			}},

		// an entry the dial could not use
		{name: "entry: no host", entry: "acme", url: "https://pay.example.com:8443/v1/charges", want: notAllow,
			edit: func(r *Request, v *validated, d *allowlist.Destination) { d.Host = "" }},
		{name: "entry: no port", entry: "acme", url: "https://pay.example.com:8443/v1/charges", want: notAllow,
			edit: func(r *Request, v *validated, d *allowlist.Destination) { d.Port = 0 }},
		{name: "entry: the lowest port", entry: "acme", url: "https://pay.example.com:1/v1/charges", want: admitted,
			edit: func(r *Request, v *validated, d *allowlist.Destination) { d.Port = 1 }},
		{name: "entry: the highest port", entry: "acme", url: "https://pay.example.com:65535/v1/charges", want: admitted,
			edit: func(r *Request, v *validated, d *allowlist.Destination) { d.Port = 65535 }},
		{name: "entry: port out of range", entry: "acme", raw: rawTarget("pay.example.com", 70000, "/v1/charges"), want: notAllow,
			edit: func(r *Request, v *validated, d *allowlist.Destination) { d.Port = 70000 }},

		// wildcard depth: one or more labels below example.com, never
		// example.com itself
		{name: "wildcard: one label below", entry: "acme-wild", url: "https://eu.example.com/v1", want: admitted},
		{name: "wildcard: two labels below", entry: "acme-wild", url: "https://eu.pay.example.com/v1", want: admitted},
		{name: "wildcard: the base name itself", entry: "acme-wild", url: "https://example.com/v1", want: notAllow},
		{name: "wildcard: the suffix without its dot", entry: "acme-wild", url: "https://evilexample.com/v1", want: notAllow},
		{name: "wildcard: the suffix mid-name", entry: "acme-wild", url: "https://eu.example.com.evil.test/v1", want: notAllow},
		{name: "wildcard: another domain", entry: "acme-wild", url: "https://eu.example.org/v1", want: notAllow},
		{name: "wildcard: an IP", entry: "acme-wild", url: "https://93.184.216.34/v1", want: forbidden},
		{name: "wildcard: another port", entry: "acme-wild", url: "https://eu.example.com:8443/v1", want: notAllow},
		{name: "wildcard: an empty label", entry: "acme-wild", raw: rawTarget(".example.com", 443, "/v1"), want: notAllow},
		{name: "wildcard: an empty label below", entry: "acme-wild", raw: rawTarget("eu..example.com", 443, "/v1"), want: notAllow},
		{name: "wildcard: a wildcard as the host", entry: "acme-wild", raw: rawTarget("*.example.com", 443, "/v1"), want: notAllow},

		// IP literals: only the exact address the entry names
		{name: "ipv4: the entry's address", entry: "acme-ip4", url: "https://93.184.216.34:9443/pay", want: admitted},
		{name: "ipv4: a neighbour", entry: "acme-ip4", url: "https://93.184.216.35:9443/pay", want: forbidden},
		{name: "ipv4: mapped into IPv6", entry: "acme-ip4", url: "https://[::ffff:93.184.216.34]:9443/pay", want: forbidden},
		{name: "ipv4: a name spelling the address", entry: "acme-ip4", url: "https://93.184.216.34.nip.io:9443/pay", want: notAllow},
		{name: "ipv4: another port", entry: "acme-ip4", url: "https://93.184.216.34/pay", want: notAllow},
		{name: "ipv4: outside the path prefix", entry: "acme-ip4", url: "https://93.184.216.34:9443/payouts", want: notAllow},
		{name: "ipv6: the entry's address", entry: "acme-ip6", url: "https://[2606:2800:220:1::1]/pay", want: admitted},
		{name: "ipv6: the entry's address spelled long", entry: "acme-ip6", url: "https://[2606:2800:220:1:0:0:0:1]/pay", want: admitted},
		{name: "ipv6: an entry host in brackets", entry: "acme-ip6", url: "https://[2606:2800:220:1::1]/pay", want: admitted,
			edit: func(r *Request, v *validated, d *allowlist.Destination) { d.Host = "[" + d.Host + "]" }},
		{name: "ipv6: a neighbour", entry: "acme-ip6", url: "https://[2606:2800:220:1::2]/pay", want: forbidden},
		{name: "ipv6: another port", entry: "acme-ip6", url: "https://[2606:2800:220:1::1]:8443/pay", want: notAllow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ok := entries[tt.entry]
			if !ok {
				t.Fatalf("no entry %q in testdata/recheck.yaml", tt.entry)
			}
			tgt := tt.raw
			if tgt == nil {
				var e *Error
				if tgt, e = parseTarget(tt.url); e != nil {
					t.Fatalf("parseTarget(%q) = %v; the case needs a URL it accepts", tt.url, e)
				}
			}
			r := &Request{Destination: d.ID, Method: "POST", Caller: caller}
			v := &validated{target: tgt, fields: []allowlist.Field{allowlist.FieldNumber}}
			if tt.edit != nil {
				tt.edit(r, v, &d)
			}
			e := recheck(&d, r, v)
			switch {
			case tt.want == admitted && e != nil:
				t.Errorf("recheck = %s (%s), want admitted", e.Code, e.Message)
			case tt.want != admitted && e == nil:
				t.Errorf("recheck = admitted, want %s", tt.want)
			case e != nil && (e.Code != tt.want || e.Outcome != NotSent):
				t.Errorf("recheck = %s, %s; want %s, %s", e.Code, e.Outcome, tt.want, NotSent)
			}
		})
	}
}
