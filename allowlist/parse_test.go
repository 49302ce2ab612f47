package allowlist

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseFixture(t *testing.T) {
	doc, err := ParseUnverified(readFixture(t, "allowlist.yaml"))
	if err != nil {
		t.Fatalf("ParseUnverified(allowlist.yaml) = %v", err)
	}
	pin := [sha256.Size]byte{0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55}
	want := &Document{
		Format: Format, Namespace: Namespace, Environment: "test", Version: 1,
		IssuedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		Expires:  time.Date(2027, 1, 15, 0, 0, 0, 0, time.UTC),
		Destinations: []Destination{
			{
				ID: "acme-charges", Purpose: "card payments for subscriptions", Owner: "billing@example.com",
				URL: "https://api.acme.example/v1/charges", Methods: []string{"POST"}, Callers: []string{"billing"},
				Fields:  []Field{FieldNumber, FieldExpMonth, FieldExpYear, FieldCVC},
				Timeout: 30 * time.Second, MaxResponseBytes: 1 << 20,
				Host: "api.acme.example", Port: 443, PathPrefix: "/v1/charges", Line: 11,
			},
			{
				ID: "acme-wild", Purpose: "regional acme endpoints", Owner: "billing@example.com",
				URL: "https://*.acme.example:8443/", Methods: []string{"GET", "POST"}, Callers: []string{"billing", "payouts"},
				Fields: []Field{FieldNumber}, CardHeaders: []string{"X-Card-Token"},
				TLS:  &TLS{SPKIPins: [][sha256.Size]byte{pin}, CABundle: "acme-private", ClientCert: "acme-mtls"},
				Host: "*.acme.example", Port: 8443, PathPrefix: "/", Line: 20,
			},
			{
				ID: "local-test", Purpose: "local test processor for the demo", Owner: "platform@example.com",
				URL: "https://127.0.0.1:9443/pay", Methods: []string{"POST"}, Callers: []string{"demo"},
				Fields: []Field{FieldNumber, FieldName}, UnsafeAllowRanges: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
				Host: "127.0.0.1", Port: 9443, PathPrefix: "/pay", Line: 32,
			},
		},
	}
	if diff := cmp.Diff(want, doc, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("ParseUnverified(allowlist.yaml) mismatch (-want +got):\n%s", diff)
	}
}

// TestParseBroken runs every testdata/broken/*.yaml. The first line of
// each is "# want: <text the error must contain>".
func TestParseBroken(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "broken", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no broken fixtures: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(raw), "\n")
			want, ok := strings.CutPrefix(first, "# want: ")
			if !ok {
				t.Fatalf("%s: first line must be '# want: …'", f)
			}
			_, err = ParseUnverified(raw)
			if err == nil {
				t.Fatalf("ParseUnverified(%s) = nil error, want one containing %q", f, want)
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("ParseUnverified(%s) = %v, want it to contain %q", f, err, want)
			}
			if !strings.HasPrefix(err.Error(), "allowlist: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

// TestParseMutations edits the good fixture one line at a time.
func TestParseMutations(t *testing.T) {
	good := string(readFixture(t, "allowlist.yaml"))
	tests := []struct {
		name, old, new, want string
	}{
		{"unknown top-level field", "environment: test\n", "environment: test\ncolour: blue\n", "field colour not found"},
		{"unknown destination field", "    timeout: 30s\n", "    timeout: 30s\n    retries: 3\n", "field retries not found"},
		{"duplicate id", "id: acme-wild", "id: acme-charges", `duplicate id "acme-charges" (first at line 11)`},
		{"wrong format", "cardgate.allowlist/v1", "cardgate.allowlist/v2", "field format"},
		{"wrong namespace", "namespace: cardgate-allowlist@v1", "namespace: git", "field namespace"},
		{"version leading zero", "version: 1\n", "version: 01\n", "field version"},
		{"version zero", "version: 1\n", "version: 0\n", "field version"},
		{"version 2 without prev", "version: 1\n", "version: 2\n", "field prev_sha256"},
		{"prev on version 1", `prev_sha256: ""`, "prev_sha256: " + strings.Repeat("a", 64), "version 1 has no previous"},
		{"local time", "issued_at: 2026-11-01T00:00:00Z", "issued_at: 2026-11-01T00:00:00+01:00", "field issued_at"},
		{"date only", "expires: 2027-01-15T00:00:00Z", "expires: 2027-01-15", "field expires"},
		{"expires before issued", "expires: 2027-01-15T00:00:00Z", "expires: 2026-10-15T00:00:00Z", "not after issued_at"},
		{"missing environment", "environment: test\n", "", "field environment is missing"},
		{"http", "https://api.acme.example/v1/charges", "http://api.acme.example/v1/charges", "must start with https://"},
		{"userinfo", "https://api.acme.example/v1/charges", "https://u:p@api.acme.example/v1/charges", "userinfo"},
		{"query", "https://api.acme.example/v1/charges", "https://api.acme.example/v1/charges?x=1", "query"},
		{"fragment", "https://api.acme.example/v1/charges", "https://api.acme.example/v1/charges#x", "fragment"},
		{"non-ascii host", "https://api.acme.example/v1/charges", "https://bücher.example/v1/charges", "punycode"},
		{"uppercase host", "https://api.acme.example/v1/charges", "https://API.acme.example/v1/charges", "lowercase"},
		{"inner wildcard", "https://*.acme.example:8443/", "https://a.*.acme.example:8443/", "single leading"},
		{"double wildcard", "https://*.acme.example:8443/", "https://*.*.acme.example:8443/", "single leading"},
		{"partial wildcard", "https://*.acme.example:8443/", "https://*acme.example:8443/", "single leading"},
		{"wildcard over tld", "https://*.acme.example:8443/", "https://*.example:8443/", "at least two labels"},
		{"wildcard ip", "https://127.0.0.1:9443/pay", "https://*.0.0.1:9443/pay", "all-digit"},
		{"trailing dot", "https://api.acme.example/v1/charges", "https://api.acme.example./v1/charges", "trailing dot"},
		{"port leading zero", "https://127.0.0.1:9443/pay", "https://127.0.0.1:09443/pay", "leading zeros"},
		{"port range", "https://127.0.0.1:9443/pay", "https://127.0.0.1:70000/pay", "port"},
		{"dot dot", "https://api.acme.example/v1/charges", "https://api.acme.example/v1/../charges", "dot segment"},
		{"encoded slash", "https://api.acme.example/v1/charges", "https://api.acme.example/v1%2fcharges", "encoded"},
		{"percent", "https://api.acme.example/v1/charges", "https://api.acme.example/v1/ch%41rges", "percent"},
		{"backslash", "https://api.acme.example/v1/charges", `https://api.acme.example/v1\charges`, "backslash"},
		{"path parameter", "https://api.acme.example/v1/charges", "https://api.acme.example/v1/charges;x", "';'"},
		{"trailing slash", "https://api.acme.example/v1/charges", "https://api.acme.example/v1/charges/", "trailing slash"},
		{"lowercase method", "methods: [POST]\n    callers: [billing]", "methods: [post]\n    callers: [billing]", "uppercase"},
		{"connect", "methods: [POST]\n    callers: [billing]", "methods: [CONNECT]\n    callers: [billing]", "CONNECT"},
		{"unknown card field", "fields: [number]", "fields: [number, pin]", `"pin" is not a card field`},
		{"duplicate field", "fields: [number]", "fields: [number, number]", "listed twice"},
		{"no callers", "callers: [demo]", "callers: []", "at least one"},
		{"bad pin", "sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "sha1/abc", "spki_pins"},
		{"client cert path", "client_cert: acme-mtls", "client_cert: /etc/cardgate/acme.pem", "tls.client_cert"},
		{"client cert empty", "client_cert: acme-mtls", `client_cert: ""`, "is not a client certificate name"},
		{"client cert leading dot", "client_cert: acme-mtls", "client_cert: .acme", "is not a client certificate name"},
		{"client cert too long", "client_cert: acme-mtls", "client_cert: " + strings.Repeat("a", 65), "is not a client certificate name"},
		{"client cert list", "client_cert: acme-mtls", "client_cert: [a, b]", "cannot unmarshal"},
		{"client cert misspelt", "client_cert: acme-mtls", "client_certificate: acme-mtls", "field client_certificate not found"},
		{"host header", "card_headers: [X-Card-Token]", "card_headers: [Host]", "may not carry card data"},
		{"unmasked cidr", "127.0.0.0/8", "127.0.0.1/8", "network address"},
		{"all addresses", "127.0.0.0/8", "0.0.0.0/0", "every address"},
		{"timeout huge", "timeout: 30s", "timeout: 1h", "timeout"},
		{"negative size", "max_response_bytes: 1048576", "max_response_bytes: -1", "max_response_bytes"},
		{"ipv6 unbracketed", "https://127.0.0.1:9443/pay", "https://::1/pay", "host"},
		{"ipv4 short", "https://127.0.0.1:9443/pay", "https://127.1:9443/pay", "all-digit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var raw string
			if tt.old == "" {
				raw = good + tt.new
			} else {
				if !strings.Contains(good, tt.old) {
					t.Fatalf("fixture lacks %q", tt.old)
				}
				raw = strings.Replace(good, tt.old, tt.new, 1)
			}
			_, err := ParseUnverified([]byte(raw))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseUnverified(%s) = %v, want an error containing %q", tt.name, err, tt.want)
			}
		})
	}
}

// TestParseTamper is the tamper table for the layout: each case is a form
// that YAML reads one way and grep, diff or a reviewer's eye could read
// another (AUDITING.md promises that grep reads the header reliably). The
// refusal must be a *SyntaxError with the code and the line of the form.
func TestParseTamper(t *testing.T) {
	good := string(readFixture(t, "allowlist.yaml"))
	tests := []struct {
		name     string
		old, new string // new replaces the first old; old "" appends new
		code     SyntaxCode
		line     int
	}{
		// The header: every top-level line is exactly "key: value".
		{"space before colon", "version: 1\n", "version : 1\n", SyntaxKeySpacing, 6},
		{"two spaces after colon", "version: 1\n", "version:  1\n", SyntaxKeySpacing, 6},
		{"top-level key indented", "version: 1\n", " version: 1\n", SyntaxYAML, 6},
		{"top-level single quotes", "environment: test\n", "environment: 'test'\n", SyntaxTopLevelLine, 5},
		{"top-level escape in quotes", "environment: test\n", `environment: "te\x73t"` + "\n", SyntaxTopLevelLine, 5},
		{"top-level value with a space", "environment: test\n", "environment: test test\n", SyntaxTopLevelLine, 5},
		{"top-level quoted value spans lines", "environment: test\n", "environment: \"test\nversion: 9\"\n", SyntaxMultiLine, 5},
		{"top-level empty value", `prev_sha256: ""`, "prev_sha256:", SyntaxEmptyValue, 9},
		{"value on next line", "version: 1\n", "version:\n  1\n", SyntaxValueNextLine, 6},
		{"block scalar", "environment: test\n", "environment: >-\n  test\n", SyntaxBlockScalar, 5},
		{"flow list spans lines at top level", "destinations:\n", "callers_note: [a,\nversion: 9]\ndestinations:\n", SyntaxMultiLine, 10},
		{"quoted key", "version: 1\n", "\"version\": 1\n", SyntaxKeyForm, 6},
		{"complex key", "version: 1\n", "? version\n: 1\n", SyntaxValueNextLine, 6},
		{"duplicate key", "version: 1\n", "version: 1\nversion: 2\n", SyntaxDuplicateKey, 7},
		{"flow top-level mapping", good, "{format: cardgate.allowlist/v1}\n", SyntaxFlowMapping, 1},
		// The case: a quoted purpose whose second line, at
		// column 0, reads as a version to grep '^version:'.
		{"quoted purpose with a version line", "    purpose: card payments for subscriptions\n", "    purpose: \"card payments for subscriptions\nversion: 9\"\n", SyntaxMultiLine, 12},
		{"quoted purpose with a full key line", "    purpose: card payments for subscriptions\n", "    purpose: \"card payments\nversion: 9\n    \"\n", SyntaxMultiLine, 12},
		{"single-quoted purpose spans lines", "    purpose: card payments for subscriptions\n", "    purpose: 'card payments\nversion: 9'\n", SyntaxMultiLine, 12},
		{"quoted purpose hides a comment-like line", "    purpose: card payments for subscriptions\n", "    purpose: \"card\n\n# unsafe_allow_ranges: [10.0.0.0/8]\n     payments\"\n", SyntaxMultiLine, 12},
		{"plain purpose spans lines", "    purpose: card payments for subscriptions\n", "    purpose: card payments\n      for subscriptions\n", SyntaxMultiLine, 13},
		{"block scalar purpose", "    purpose: card payments for subscriptions\n", "    purpose: |\n      card payments\n", SyntaxBlockScalar, 12},
		// Entries: each line shows one complete key or item.
		{"entry key space before colon", "    url: https://api.acme.example/v1/charges", "    url : https://api.acme.example/v1/charges", SyntaxKeySpacing, 14},
		{"entry value on next line", "    owner: billing@example.com\n    url: https://api.acme", "    owner:\n      billing@example.com\n    url: https://api.acme", SyntaxValueNextLine, 13},
		{"entry empty value", "    timeout: 30s\n", "    timeout:\n", SyntaxEmptyValue, 18},
		{"flow list spans lines", "fields: [number, exp_month, exp_year, cvc]", "fields: [number, exp_month,\n      exp_year, cvc]", SyntaxMultiLine, 17},
		{"flow mapping in an entry", "    tls:\n      spki_pins: [\"sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\"]\n      ca_bundle: acme-private\n      client_cert: acme-mtls\n", "    tls: {ca_bundle: acme-private}\n", SyntaxFlowMapping, 28},
		{"flow list closes on the next line", "fields: [number, exp_month, exp_year, cvc]", "fields: [number, exp_month, exp_year, cvc\n      ]", SyntaxMultiLine, 18},
		{"lone dash", "  - id: acme-wild\n", "  -\n    id: acme-wild\n", SyntaxMultiLine, 20},
		{"duplicate entry key", "    timeout: 30s\n", "    timeout: 30s\n    timeout: 1s\n", SyntaxDuplicateKey, 19},
		{"anchor", "callers: [demo]", "callers: &c [demo]", SyntaxAnchor, 37},
		{"merge key", "    timeout: 30s\n", "    timeout: 30s\n    <<: {timeout: 1s}\n", SyntaxMergeKey, 19},
		{"tag", "owner: platform@example.com", "owner: !!str platform@example.com", SyntaxTag, 34},
		// Documents.
		{"document start", "# cardgate", "---\n# cardgate", SyntaxDocumentMarker, 1},
		{"document end", "", "...\n", SyntaxDocumentMarker, 40},
		{"document end then comment", "", "...\n# version: 9\n", SyntaxDocumentMarker, 40},
		{"second document", "", "---\nversion: 9\n", SyntaxSecondDocument, 40},
		// Characters.
		{"tab after colon", "version: 1\n", "version:\t1\n", SyntaxTab, 6},
		{"tab in a comment", "# the auditors", "#\tthe auditors", SyntaxTab, 2},
		{"carriage return", "version: 1\n", "version: 1\r\n", SyntaxCarriageReturn, 6},
		{"bom", "# cardgate", "\ufeff# cardgate", SyntaxBOM, 1},
		{"not utf-8", "# the auditors", "# the \xffauditors", SyntaxNotUTF8, 2},
		{"line separator hides a key in a comment", "    timeout: 30s\n", "    timeout: 30s\n    # reviewed\u2028    unsafe_allow_ranges: [10.0.0.0/8]\n", SyntaxLineSeparator, 19},
		{"paragraph separator", "    timeout: 30s\n", "    timeout: 30s\n    # x\u2029\n", SyntaxLineSeparator, 19},
		{"next line", "    timeout: 30s\n", "    timeout: 30s\n    # x\u0085\n", SyntaxControl, 19},
		{"bidi override", "environment: test\n", "environment: test\n# \u202e\n", SyntaxFormatCharacter, 6},
		{"zero width space", "environment: test\n", "environment: test\n# a\u200bb\n", SyntaxFormatCharacter, 6},
		{"escape character", "environment: test\n", "environment: test\n# \x1b[2K\n", SyntaxControl, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var raw string
			switch {
			case tt.old == "":
				raw = good + tt.new
			case !strings.Contains(good, tt.old):
				t.Fatalf("fixture lacks %q", tt.old)
			default:
				raw = strings.Replace(good, tt.old, tt.new, 1)
			}
			_, err := ParseUnverified([]byte(raw))
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("ParseUnverified(%s) = %v, want a *SyntaxError", tt.name, err)
			}
			if se.Code != tt.code || se.Line != tt.line {
				t.Errorf("ParseUnverified(%s) = %v (code %s, line %d), want code %s at line %d", tt.name, err, se.Code, se.Line, tt.code, tt.line)
			}
			if !errors.Is(err, ErrMalformed) || !strings.HasPrefix(err.Error(), fmt.Sprintf("allowlist: line %d: ", tt.line)) {
				t.Errorf("error %q must match ErrMalformed and start with the line", err)
			}
		})
	}
}

// TestParseLayoutAccepts: the forms the layout rules keep, each read by
// AUDITING.md's grep recipe as the gateway reads it.
func TestParseLayoutAccepts(t *testing.T) {
	good := string(readFixture(t, "allowlist.yaml"))
	tests := []struct{ name, old, new string }{
		{"comment after a header value", "version: 1\n", "version: 1   # first version\n"},
		{"trailing spaces", "environment: test\n", "environment: test  \n"},
		{"quoted header value", "environment: test\n", "environment: \"test\"\n"},
		{"comment after destinations", "destinations:\n", "destinations:  # reviewed 2026-11-01\n"},
		{"comment lines inside entries", "    timeout: 30s\n", "    # why: slow processor\n    timeout: 30s\n"},
		{"block list items", "    fields: [number]\n", "    fields:\n      - number\n"},
		{"quoted purpose with a colon", "    purpose: local test processor for the demo\n", "    purpose: \"local: test processor\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(good, tt.old) {
				t.Fatalf("fixture lacks %q", tt.old)
			}
			raw := []byte(strings.Replace(good, tt.old, tt.new, 1))
			doc, err := ParseUnverified(raw)
			if err != nil {
				t.Fatalf("ParseUnverified(%s) = %v", tt.name, err)
			}
			if err := checkGrepReadsHeader(raw, doc); err != nil {
				t.Errorf("ParseUnverified(%s): %v", tt.name, err)
			}
		})
	}
}
