package main

import (
	"strings"
	"testing"

	"github.com/cardgate/cardgate/allowlist"
)

// TestDiffClientCert checks that allowlist diff shows every change of an
// entry's tls.client_cert and flags the ones that present the gateway's
// credential somewhere new.
func TestDiffClientCert(t *testing.T) {
	const head = `format: cardgate.allowlist/v1
namespace: cardgate-allowlist@v1
environment: test
version: %V
issued_at: 2026-11-01T00:00:00Z
expires: 2027-01-15T00:00:00Z
prev_sha256: %P
destinations:
  - id: acme
    purpose: charges
    owner: billing@example.com
    url: https://api.acme.example/v1/charges
    methods: [POST]
    callers: [billing]
    fields: [number]
`
	doc := func(version, tlsBlock string) *allowlist.Document {
		t.Helper()
		prev := `""`
		if version != "1" {
			prev = strings.Repeat("a", 64)
		}
		raw := strings.NewReplacer("%V", version, "%P", prev).Replace(head) + tlsBlock
		d, err := allowlist.ParseUnverified([]byte(raw))
		if err != nil {
			t.Fatalf("ParseUnverified: %v", err)
		}
		return d
	}
	const none = ""
	cert := func(name string) string { return "    tls:\n      client_cert: " + name + "\n" }
	tests := []struct {
		name     string
		old, new string
		want     string // the change line, without its WIDENS mark
		widens   bool
	}{
		{"added", none, cert("acme-mtls"), "~ acme: client cert - -> acme-mtls", true},
		{"changed", cert("acme-mtls"), cert("acme-mtls-2027"), "~ acme: client cert acme-mtls -> acme-mtls-2027", true},
		{"removed", cert("acme-mtls"), none, "~ acme: client cert acme-mtls -> -", false},
		{"unchanged", cert("acme-mtls"), cert("acme-mtls"), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changes := diffDocuments(doc("1", tt.old), doc("2", tt.new), strings.Repeat("a", 64))
			var found *change
			for i, c := range changes {
				if strings.Contains(c.text, "client cert") {
					found = &changes[i]
				}
			}
			switch {
			case tt.want == "" && found != nil:
				t.Errorf("diffDocuments = %q, want no client cert change", found.text)
			case tt.want != "" && found == nil:
				t.Errorf("diffDocuments = %+v, want %q", changes, tt.want)
			case found != nil && (found.text != tt.want || found.widens != tt.widens):
				t.Errorf("diffDocuments = %q (widens %v), want %q (widens %v)", found.text, found.widens, tt.want, tt.widens)
			}
		})
	}
	t.Run("new destination", func(t *testing.T) {
		old := doc("1", none)
		old.Destinations = nil
		changes := diffDocuments(old, doc("2", cert("acme-mtls")), strings.Repeat("a", 64))
		var ok bool
		for _, c := range changes {
			ok = ok || c.text == "~ acme: client cert - -> acme-mtls" && c.widens
		}
		if !ok {
			t.Errorf("diffDocuments = %+v, want the new entry's client cert flagged", changes)
		}
	})
	t.Run("show", func(t *testing.T) {
		d := doc("1", cert("acme-mtls"))
		if n := strings.Join(notes(&d.Destinations[0]), "; "); !strings.Contains(n, "client cert acme-mtls") {
			t.Errorf("notes = %q, want it to name the client cert", n)
		}
	})
}
