package review

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardgate/cardgate/allowlist"
)

const head = `format: cardgate.allowlist/v1
namespace: cardgate-allowlist@v1
environment: test
version: %V
issued_at: 2026-11-01T00:00:00Z
expires: 2027-01-15T00:00:00Z
prev_sha256: %P
destinations:
`

// entry is the base destination; extra lines are appended to it.
const entry = `  - id: acme
    purpose: charges
    owner: billing@example.com
    url: https://api.acme.example/v1/charges
    methods: [POST]
    callers: [billing]
    fields: [number]
`

const prevSHA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

// doc parses a document of version v (1 or 2) with the given entries.
func doc(t *testing.T, v string, entries ...string) *allowlist.Document {
	t.Helper()
	prev := `""`
	if v != "1" {
		prev = prevSHA
	}
	raw := strings.NewReplacer("%V", v, "%P", prev).Replace(head) + strings.Join(entries, "")
	if len(entries) == 0 {
		raw = strings.Replace(raw, "destinations:\n", "destinations: []\n", 1)
	}
	d, err := allowlist.ParseUnverified([]byte(raw))
	if err != nil {
		t.Fatalf("ParseUnverified: %v\n%s", err, raw)
	}
	return d
}

// marked renders changes as the CLI prints them.
func marked(changes []Change) []string {
	var out []string
	for _, c := range changes {
		mark := "       "
		if c.Widens {
			mark = "WIDENS "
		}
		out = append(out, mark+c.Text)
	}
	return out
}

// destinationLines returns the changes that mention the entry acme.
func destinationLines(changes []Change) []string {
	var out []string
	for _, l := range marked(changes) {
		if strings.Contains(l, " acme: ") || strings.Contains(l, "destination acme") {
			out = append(out, l)
		}
	}
	return out
}

// TestDiffNewDestination: a destination OLD did not have is listed with
// every risk-bearing setting on its own line, each marked WIDENS
// (AUDITING.md step 1 calls each of them widening).
func TestDiffNewDestination(t *testing.T) {
	base := []string{
		"WIDENS + destination acme: https://api.acme.example/v1/charges (host api.acme.example, port 443, path prefix /v1/charges)",
		"WIDENS + acme: method POST",
		"WIDENS + acme: caller billing",
		"WIDENS + acme: card field number",
	}
	tail := []string{
		`       + acme: purpose "charges"`,
		"       + acme: owner billing@example.com",
	}
	tests := []struct {
		name  string
		extra string   // YAML lines added to the entry
		want  []string // lines between base and tail
	}{
		{"minimal entry", "", nil},
		{"unsafe_allow_ranges", "    unsafe_allow_ranges: [10.20.0.0/16, 192.168.1.0/24]\n", []string{
			"WIDENS + acme: unsafe range 10.20.0.0/16",
			"WIDENS + acme: unsafe range 192.168.1.0/24",
		}},
		{"card_headers", "    card_headers: [X-Card-Token, X-Card-Number]\n", []string{
			"WIDENS + acme: card header X-Card-Token",
			"WIDENS + acme: card header X-Card-Number",
		}},
		{"credential_headers", "    credentials: [acme-key]\n    credential_headers: [Authorization, x-api-key]\n", []string{
			"WIDENS + acme: + credential acme-key",
			"WIDENS + acme: + credential header Authorization",
			"WIDENS + acme: + credential header X-Api-Key",
		}},
		{"tls.ca_bundle", "    tls:\n      ca_bundle: acme-private\n", []string{
			"WIDENS + acme: CA bundle acme-private (replaces the system roots)",
		}},
		{"tls.client_cert", "    tls:\n      client_cert: acme-mtls\n", []string{
			"WIDENS + acme: client cert acme-mtls",
		}},
		{"tls.spki_pins narrow", "    tls:\n      spki_pins: [\"sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\"]\n", []string{
			"       + acme: SPKI pin (sha256 hex) e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		}},
		{"timeout and max_response_bytes", "    timeout: 30s\n    max_response_bytes: 1048576\n", []string{
			"       + acme: timeout 30s",
			"       + acme: max_response_bytes 1048576",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := destinationLines(Diff(doc(t, "1"), doc(t, "2", entry+tt.extra), prevSHA))
			want := append(append(append([]string{}, base...), tt.want...), tail...)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Diff(new destination with %s) mismatch (-want +got):\n%s", tt.name, diff)
			}
		})
	}

	t.Run("wildcard and every list value", func(t *testing.T) {
		wild := strings.NewReplacer(
			"https://api.acme.example/v1/charges", "https://*.acme.example:8443/",
			"methods: [POST]", "methods: [GET, POST]",
			"callers: [billing]", "callers: [billing, payouts]",
			"fields: [number]", "fields: [number, cvc]").Replace(entry)
		got := destinationLines(Diff(doc(t, "1"), doc(t, "2", wild), prevSHA))
		want := []string{
			"WIDENS + destination acme: https://*.acme.example:8443/ (host *.acme.example, port 8443, path prefix /)",
			"WIDENS + acme: WILDCARD host *.acme.example matches every name below acme.example",
			"WIDENS + acme: method GET",
			"WIDENS + acme: method POST",
			"WIDENS + acme: caller billing",
			"WIDENS + acme: caller payouts",
			"WIDENS + acme: card field number",
			"WIDENS + acme: card field cvc",
		}
		if diff := cmp.Diff(append(want, tail...), got); diff != "" {
			t.Errorf("Diff(new wildcard destination) mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestDiffChangedDestination keeps the behaviour for an entry in both
// documents: one line per change, marked when it widens.
func TestDiffChangedDestination(t *testing.T) {
	const none = ""
	cert := func(name string) string { return "    tls:\n      client_cert: " + name + "\n" }
	tests := []struct {
		name     string
		old, new string // YAML lines added to the entry in OLD and NEW
		want     []string
	}{
		{"unchanged", none, none, nil},
		{"client cert added", none, cert("acme-mtls"), []string{"WIDENS ~ acme: client cert - -> acme-mtls"}},
		{"client cert changed", cert("acme-mtls"), cert("acme-mtls-2027"), []string{"WIDENS ~ acme: client cert acme-mtls -> acme-mtls-2027"}},
		{"client cert removed", cert("acme-mtls"), none, []string{"       ~ acme: client cert acme-mtls -> -"}},
		{"unsafe range added", none, "    unsafe_allow_ranges: [10.0.0.0/8]\n", []string{"WIDENS ~ acme: + unsafe range 10.0.0.0/8"}},
		{"unsafe range removed", "    unsafe_allow_ranges: [10.0.0.0/8]\n", none, []string{"       ~ acme: - unsafe range 10.0.0.0/8"}},
		{"card header added", none, "    card_headers: [X-Card-Token]\n", []string{"WIDENS ~ acme: + card header X-Card-Token"}},
		{"CA bundle added", none, "    tls:\n      ca_bundle: acme-private\n", []string{"WIDENS ~ acme: CA bundle - -> acme-private"}},
		{"pins removed", "    tls:\n      spki_pins: [\"sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\"]\n", none, []string{
			"WIDENS ~ acme: - SPKI pin (sha256 hex) e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
			"WIDENS ~ acme: all SPKI pins removed",
		}},
		{"timeout longer", "    timeout: 10s\n", "    timeout: 30s\n", []string{"WIDENS ~ acme: timeout 10s -> 30s"}},
		{"timeout shorter", "    timeout: 30s\n", "    timeout: 10s\n", []string{"       ~ acme: timeout 30s -> 10s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := destinationLines(Diff(doc(t, "1", entry+tt.old), doc(t, "2", entry+tt.new), prevSHA))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Diff(%s) mismatch (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

func TestDiffHeader(t *testing.T) {
	old := doc(t, "1", entry)
	tests := []struct {
		name string
		new  *allowlist.Document
		sha  string
		want []string
	}{
		{"next version", doc(t, "2", entry), prevSHA, []string{
			"       ~ version 1 -> 2",
			"       ~ expires 2027-01-15T00:00:00Z -> 2027-01-15T00:00:00Z (validity 1800h0m0s -> 1800h0m0s)",
		}},
		{"chain broken", doc(t, "2", entry), strings.Repeat("b", 64), []string{
			"       ~ version 1 -> 2",
			"WIDENS ~ prev_sha256 " + prevSHA + " does NOT match sha256 of OLD " + strings.Repeat("b", 64),
			"       ~ expires 2027-01-15T00:00:00Z -> 2027-01-15T00:00:00Z (validity 1800h0m0s -> 1800h0m0s)",
		}},
		{"rollback", doc(t, "1", entry), "", []string{
			"WIDENS ~ version 1 -> 1: NOT increasing; the gateway refuses it as a rollback",
			"       ~ expires 2027-01-15T00:00:00Z -> 2027-01-15T00:00:00Z (validity 1800h0m0s -> 1800h0m0s)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, marked(Diff(old, tt.new, tt.sha))); diff != "" {
				t.Errorf("Diff(%s) mismatch (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

func TestDiffRemovedDestination(t *testing.T) {
	got := destinationLines(Diff(doc(t, "1", entry), doc(t, "2"), prevSHA))
	want := []string{"       - destination acme: https://api.acme.example/v1/charges"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Diff(removed destination) mismatch (-want +got):\n%s", diff)
	}
}

func TestNotes(t *testing.T) {
	d := doc(t, "1", entry+"    unsafe_allow_ranges: [10.0.0.0/8]\n    tls:\n      client_cert: acme-mtls\n")
	want := []string{"UNSAFE range 10.0.0.0/8", "client cert acme-mtls"}
	if diff := cmp.Diff(want, Notes(&d.Destinations[0])); diff != "" {
		t.Errorf("Notes mismatch (-want +got):\n%s", diff)
	}
}
