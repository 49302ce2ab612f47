package allowlist

import (
	"bufio"
	"bytes"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// admitsEntries parses the named fixtures and returns their entries by id.
func admitsEntries(t *testing.T, names ...string) map[string]Destination {
	t.Helper()
	out := map[string]Destination{}
	for _, name := range names {
		doc, err := ParseUnverified(readFixture(t, name))
		if err != nil {
			t.Fatalf("testdata/%s: %v", name, err)
		}
		for _, d := range doc.Destinations {
			if _, dup := out[d.ID]; dup {
				t.Fatalf("testdata/%s: id %q is in two fixtures", name, d.ID)
			}
			out[d.ID] = d
		}
	}
	return out
}

// TestAdmits table-tests the URL rule on its own, for hosts, ports and
// paths in the form Match and the forwarder pass it: each case changes
// one thing from a request the entry admits.
func TestAdmits(t *testing.T) {
	entries := admitsEntries(t, "admits.yaml")
	const ok URLPart = "" // admitted
	tests := []struct {
		name  string
		entry string
		edit  func(d *Destination) // an entry Parse would not produce
		host  string
		port  int
		path  string
		want  URLPart
	}{
		// exact host pay.example.com:8443 under /v1/charges
		{"exact: the prefix", "acme", nil, "pay.example.com", 8443, "/v1/charges", ok},
		{"exact: a trailing slash", "acme", nil, "pay.example.com", 8443, "/v1/charges/", ok},
		{"exact: below the prefix", "acme", nil, "pay.example.com", 8443, "/v1/charges/ch_1/capture", ok},
		{"exact: another name", "acme", nil, "api.example.com", 8443, "/v1/charges", URLHost},
		{"exact: the parent domain", "acme", nil, "example.com", 8443, "/v1/charges", URLHost},
		{"exact: a subdomain", "acme", nil, "a.pay.example.com", 8443, "/v1/charges", URLHost},
		{"exact: a longer label", "acme", nil, "xpay.example.com", 8443, "/v1/charges", URLHost},
		{"exact: a shorter last label", "acme", nil, "pay.example.co", 8443, "/v1/charges", URLHost},
		{"exact: the entry as a prefix", "acme", nil, "pay.example.com.evil.test", 8443, "/v1/charges", URLHost},
		{"exact: not lowercased", "acme", nil, "PAY.example.com", 8443, "/v1/charges", URLHost},
		{"exact: a trailing dot", "acme", nil, "pay.example.com.", 8443, "/v1/charges", URLHost},
		{"exact: an empty host", "acme", nil, "", 8443, "/v1/charges", URLHost},
		{"exact: a percent in the host", "acme", nil, "pay.example.com%25", 8443, "/v1/charges", URLHost},
		{"exact: a non-ASCII host", "acme", nil, "päy.example.com", 8443, "/v1/charges", URLHost},
		{"exact: an IP", "acme", nil, "93.184.216.34", 8443, "/v1/charges", URLHost},
		{"port: another", "acme", nil, "pay.example.com", 8444, "/v1/charges", URLPort},
		{"port: the default", "acme", nil, "pay.example.com", 443, "/v1/charges", URLPort},
		{"port: zero", "acme", nil, "pay.example.com", 0, "/v1/charges", URLPort},
		{"port: negative", "acme", nil, "pay.example.com", -1, "/v1/charges", URLPort},
		{"port: the lowest", "acme", func(d *Destination) { d.Port = 1 }, "pay.example.com", 1, "/v1/charges", ok},
		{"port: the highest", "acme", func(d *Destination) { d.Port = 65535 }, "pay.example.com", 65535, "/v1/charges", ok},
		{"port: out of range on both sides", "acme", func(d *Destination) { d.Port = 70000 }, "pay.example.com", 70000, "/v1/charges", URLPort},
		{"port: zero on both sides", "acme", func(d *Destination) { d.Port = 0 }, "pay.example.com", 0, "/v1/charges", URLPort},
		{"path: continued without a slash", "acme", nil, "pay.example.com", 8443, "/v1/chargesX", URLPath},
		{"path: shorter", "acme", nil, "pay.example.com", 8443, "/v1/charge", URLPath},
		{"path: the parent", "acme", nil, "pay.example.com", 8443, "/v1", URLPath},
		{"path: root", "acme", nil, "pay.example.com", 8443, "/", URLPath},
		{"path: empty", "acme", nil, "pay.example.com", 8443, "", URLPath},
		{"path: relative", "acme", nil, "pay.example.com", 8443, "v1/charges", URLPath},
		{"path: a sibling", "acme", nil, "pay.example.com", 8443, "/v2/charges", URLPath},
		{"path: other case", "acme", nil, "pay.example.com", 8443, "/V1/charges", URLPath},
		{"path: an escaped letter inside the prefix", "acme", nil, "pay.example.com", 8443, "/v1/charge%73", ok},
		{"path: an escaped letter past the boundary", "acme", nil, "pay.example.com", 8443, "/v1/charges%58", URLPath},
		{"path: an encoded slash", "acme", nil, "pay.example.com", 8443, "/v1%2Fcharges", URLPath},
		{"path: encoded dot segments", "acme", nil, "pay.example.com", 8443, "/v1/charges/%2e%2e/admin", URLPath},
		{"path: dot segments", "acme", nil, "pay.example.com", 8443, "/v1/charges/../admin", URLPath},
		{"path: an empty segment", "acme", nil, "pay.example.com", 8443, "/v1//charges", URLPath},
		{"path: a backslash", "acme", nil, "pay.example.com", 8443, `/v1/charges\x`, URLPath},
		{"path: path parameters", "acme", nil, "pay.example.com", 8443, "/v1/charges/..;/admin", URLPath},
		{"path: a malformed escape", "acme", nil, "pay.example.com", 8443, "/v1/charges/%zz", URLPath},
		{"path: an escaped percent that decodes to a bad escape", "acme", nil, "pay.example.com", 8443, "/v1/charges/%25zz", URLPath},
		{"path: an escaped percent that decodes to encoded dots", "acme", nil, "pay.example.com", 8443, "/v1/charges/%252e%252e/admin", URLPath},

		// wildcard *.example.com on 443 under /
		{"wildcard: one label below", "acme-wild", nil, "eu.example.com", 443, "/v1", ok},
		{"wildcard: two labels below", "acme-wild", nil, "eu.pay.example.com", 443, "/v1", ok},
		{"wildcard: digits in a label", "acme-wild", nil, "1.2.3.example.com", 443, "/", ok},
		{"wildcard: punycode", "acme-wild", nil, "xn--bcher-kva.example.com", 443, "/", ok},
		{"wildcard: the base name", "acme-wild", nil, "example.com", 443, "/v1", URLHost},
		{"wildcard: an empty label", "acme-wild", nil, ".example.com", 443, "/v1", URLHost},
		{"wildcard: an empty label below", "acme-wild", nil, "eu..example.com", 443, "/v1", URLHost},
		{"wildcard: the suffix without its dot", "acme-wild", nil, "evilexample.com", 443, "/v1", URLHost},
		{"wildcard: the suffix mid-name", "acme-wild", nil, "eu.example.com.evil.test", 443, "/v1", URLHost},
		{"wildcard: another domain", "acme-wild", nil, "eu.example.org", 443, "/v1", URLHost},
		{"wildcard: a wildcard as the host", "acme-wild", nil, "*.example.com", 443, "/v1", URLHost},
		{"wildcard: an underscore", "acme-wild", nil, "a_b.example.com", 443, "/v1", URLHost},
		{"wildcard: a leading hyphen", "acme-wild", nil, "-eu.example.com", 443, "/v1", URLHost},
		{"wildcard: not lowercased", "acme-wild", nil, "EU.example.com", 443, "/v1", URLHost},
		{"wildcard: a trailing dot", "acme-wild", nil, "eu.example.com.", 443, "/v1", URLHost},
		{"wildcard: an IP", "acme-wild", nil, "93.184.216.34", 443, "/v1", URLHost},
		{"wildcard: another port", "acme-wild", nil, "eu.example.com", 8443, "/v1", URLPort},
		{"wildcard: without its dot", "acme-wild", func(d *Destination) { d.Host = "*example.com" }, "a.example.com", 443, "/", URLHost},
		{"wildcard: a bare star", "acme-wild", func(d *Destination) { d.Host = "*" }, "a.example.com", 443, "/", URLHost},
		{"wildcard: a star and a dot", "acme-wild", func(d *Destination) { d.Host = "*." }, "a.", 443, "/", URLHost},
		{"entry: no host", "acme", func(d *Destination) { d.Host = "" }, "pay.example.com", 8443, "/v1/charges", URLHost},
		{"entry: no host, nor the request", "acme", func(d *Destination) { d.Host = "" }, "", 8443, "/v1/charges", URLHost},
		{"entry: a zone", "acme-ip6", func(d *Destination) { d.Host += "%eth0" }, "2606:2800:220:1::1", 443, "/pay", URLHost},
		{"entry: a zone on both sides", "acme-ip6", func(d *Destination) { d.Host += "%eth0" }, "2606:2800:220:1::1%eth0", 443, "/pay", URLHost},

		// IP literals
		{"ipv4: the address", "acme-ip4", nil, "93.184.216.34", 9443, "/pay", ok},
		{"ipv4: a neighbour", "acme-ip4", nil, "93.184.216.35", 9443, "/pay", URLHost},
		{"ipv4: mapped into IPv6", "acme-ip4", nil, "::ffff:93.184.216.34", 9443, "/pay", URLHost},
		{"ipv4: a name spelling it", "acme-ip4", nil, "93.184.216.34.nip.io", 9443, "/pay", URLHost},
		{"ipv4: a leading zero", "acme-ip4", nil, "093.184.216.34", 9443, "/pay", URLHost},
		{"ipv4: outside the prefix", "acme-ip4", nil, "93.184.216.34", 9443, "/payouts", URLPath},
		{"ipv6: the address", "acme-ip6", nil, "2606:2800:220:1::1", 443, "/pay", ok},
		{"ipv6: spelled long", "acme-ip6", nil, "2606:2800:220:1:0:0:0:1", 443, "/pay", ok},
		{"ipv6: an entry host in brackets", "acme-ip6", func(d *Destination) { d.Host = "[" + d.Host + "]" }, "2606:2800:220:1::1", 443, "/pay", ok},
		{"ipv6: an entry host with one bracket", "acme-ip6", func(d *Destination) { d.Host = "[" + d.Host }, "2606:2800:220:1::1", 443, "/pay", URLHost},
		{"ipv6: a request host in brackets", "acme-ip6", nil, "[2606:2800:220:1::1]", 443, "/pay", URLHost},
		{"ipv6: a zone", "acme-ip6", nil, "2606:2800:220:1::1%eth0", 443, "/pay", URLHost},
		{"ipv6: a neighbour", "acme-ip6", nil, "2606:2800:220:1::2", 443, "/pay", URLHost},

		// prefixes
		{"root: any clean path", "acme-root", nil, "api.example.org", 443, "/anything/at/all", ok},
		{"root: root", "acme-root", nil, "api.example.org", 443, "/", ok},
		{"root: an unclean path", "acme-root", nil, "api.example.org", 443, "//x", URLPath},
		{"prefix: empty admits nothing", "acme-root", func(d *Destination) { d.PathPrefix = "" }, "api.example.org", 443, "/x", URLPath},
		{"prefix: a trailing slash is the boundary", "acme-root", func(d *Destination) { d.PathPrefix = "/v1/" }, "api.example.org", 443, "/v1/x", ok},
		{"prefix: a trailing slash, the name without it", "acme-root", func(d *Destination) { d.PathPrefix = "/v1/" }, "api.example.org", 443, "/v10", URLPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, found := entries[tt.entry]
			if !found {
				t.Fatalf("no entry %q in testdata/admits.yaml", tt.entry)
			}
			if tt.edit != nil {
				tt.edit(&d)
			}
			err := d.Admits(tt.host, tt.port, tt.path)
			var got URLPart
			if err != nil {
				var ue *URLError
				if !errors.As(err, &ue) || ue.Reason == "" {
					t.Fatalf("Admits(%q, %d, %q) = %v, want a *URLError with a reason", tt.host, tt.port, tt.path, err)
				}
				got = ue.Part
			}
			if got != tt.want {
				t.Errorf("Admits(%q, %d, %q) = %v, want part %q", tt.host, tt.port, tt.path, err, tt.want)
			}
		})
	}
}

// readCorpus returns the URLs in a corpus file: one a line, '#' comments.
func readCorpus(t *testing.T, name string) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(readFixture(t, name)))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	if err := sc.Err(); err != nil || len(out) == 0 {
		t.Fatalf("testdata/%s: %d urls, %v", name, len(out), err)
	}
	return out
}

// splitURL is the normalization Match documents, written again here so
// that the test does not call the code it checks: https only, no
// userinfo, opaque part or fragment, the host lowercased with one
// trailing dot dropped, a decimal port without leading zeros or 443.
func splitURL(u *url.URL) (host string, port int, path string, ok bool) {
	if u.Scheme != "https" || u.User != nil || u.Opaque != "" || u.Fragment != "" || u.RawFragment != "" {
		return "", 0, "", false
	}
	host = strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	port = 443
	if strings.HasSuffix(u.Host, ":") {
		return "", 0, "", false
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || p[0] < '1' || p[0] > '9' || n > 65535 {
			return "", 0, "", false
		}
		port = n
	}
	path = u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return host, port, path, true
}

// TestMatchAgreesWithAdmits runs every URL in testdata/admits_corpus.txt
// against every entry in two fixtures, and checks that Match admits
// exactly what Admits admits once the URL is normalized, and refuses
// with Admits' reason. The corpus must hold, for each entry, at least one
// URL admitted and one refused.
func TestMatchAgreesWithAdmits(t *testing.T) {
	var docs []*Allowlist
	for _, name := range []string{"admits.yaml", "allowlist.yaml"} {
		raw := readFixture(t, name)
		doc, err := ParseUnverified(raw)
		if err != nil {
			t.Fatalf("testdata/%s: %v", name, err)
		}
		docs = append(docs, &Allowlist{Doc: *doc, now: fixedNow})
	}
	corpus := readCorpus(t, "admits_corpus.txt")
	for _, a := range docs {
		for _, d := range a.Doc.Destinations {
			admitted, refused := 0, 0
			for _, raw := range corpus {
				u, err := url.Parse(raw)
				if err != nil {
					continue // Go's parser refused it: nothing reaches Match
				}
				var want error = &URLError{Reason: "not normalized"}
				host, port, path, ok := splitURL(u)
				if ok {
					want = d.Admits(host, port, path)
				}
				got, err := a.Match(Query{DestinationID: d.ID, Caller: d.Callers[0], Method: d.Methods[0], URL: u})
				switch {
				case want == nil && (err != nil || got == nil || got.ID != d.ID):
					t.Errorf("%s: Match(%q) = %v, but Admits(%q, %d, %q) = nil", d.ID, raw, err, host, port, path)
				case want != nil && err == nil:
					t.Errorf("%s: Match(%q) admitted, but Admits(%q, %d, %q) = %v", d.ID, raw, host, port, path, want)
				case want != nil:
					var de *DenyError
					if !errors.As(err, &de) || de.Reason != ReasonDestinationNotAllowed {
						t.Errorf("%s: Match(%q) = %v, want %s", d.ID, raw, err, ReasonDestinationNotAllowed)
						break
					}
					if ue := (*URLError)(nil); ok && errors.As(want, &ue) && !strings.HasSuffix(de.Detail, ": "+ue.Reason) {
						t.Errorf("%s: Match(%q) detail %q, want Admits' reason %q", d.ID, raw, de.Detail, ue.Reason)
					}
				}
				if want == nil {
					admitted++
				} else {
					refused++
				}
			}
			if admitted == 0 || refused == 0 {
				t.Errorf("%s: the corpus has %d admitted and %d refused urls; it needs both", d.ID, admitted, refused)
			}
		}
	}
}
