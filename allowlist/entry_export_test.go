package allowlist

import (
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/google/go-cmp/cmp"
)

func newRecipient(t *testing.T) string {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id.Recipient().String()
}

func withExports(t *testing.T, exports string) []byte {
	t.Helper()
	return append(docSpec{}.yaml(), []byte(exports)...)
}

func TestParseExports(t *testing.T) {
	r1 := newRecipient(t)
	raw := withExports(t, "exports:\n  - id: newvault\n    purpose: migration to the new vault\n    owner: payments@example.com\n    recipient: "+r1+"\n")
	doc, err := ParseUnverified(raw)
	if err != nil {
		t.Fatalf("ParseUnverified = %v", err)
	}
	if err := schemaCheck(loadSchema(t), raw); err != nil {
		t.Errorf("the schema refuses a document with exports:\n%v", err)
	}
	want := []Export{{ID: "newvault", Purpose: "migration to the new vault", Owner: "payments@example.com", Recipient: r1, Line: 18}}
	if diff := cmp.Diff(want, doc.Exports); diff != "" {
		t.Errorf("Exports (-want +got):\n%s", diff)
	}
	if e := doc.ExportTo("newvault"); e == nil || e.Recipient != r1 {
		t.Errorf("ExportTo(newvault) = %v, want the entry", e)
	}
	if e := doc.ExportTo("acme-charges"); e != nil {
		t.Errorf("ExportTo(a destination id) = %v, want nil", e)
	}
	if e := doc.ExportTo(""); e != nil {
		t.Errorf("ExportTo(\"\") = %v, want nil", e)
	}
}

func TestParseExportsRefused(t *testing.T) {
	r1, r2 := newRecipient(t), newRecipient(t)
	entry := func(id, rcpt string) string {
		return "  - id: " + id + "\n    purpose: p\n    owner: o\n    recipient: " + rcpt + "\n"
	}
	tests := []struct {
		name, exports, want string
	}{
		{"empty list", "exports: []\n", "empty list"},
		{"no recipient", "exports:\n  - id: a\n    purpose: p\n    owner: o\n", "recipient"},
		{"not age", "exports:\n" + entry("a", "ssh-ed25519 AAAA"), "not an age X25519 recipient"},
		{"uppercase recipient", "exports:\n" + entry("a", strings.ToUpper(r1)), "not an age X25519 recipient"},
		{"an identity, not a recipient", "exports:\n" + entry("a", "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ"), "not an age X25519 recipient"},
		{"destination id", "exports:\n" + entry("acme-charges", r1), "duplicate id"},
		{"export id twice", "exports:\n" + entry("a", r1) + entry("a", r2), "duplicate id"},
		{"recipient twice", "exports:\n" + entry("a", r1) + entry("b", r1), "same recipient"},
		{"bad id", "exports:\n" + entry("A!", r1), "lowercase"},
		{"unknown key", "exports:\n" + entry("a", r1) + "    fields: [number]\n", "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseUnverified(withExports(t, tt.exports))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseUnverified(%s) = %v, want an error containing %q", tt.name, err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "AGE-SECRET-KEY") {
				t.Errorf("error quotes the identity: %v", err)
			}
		})
	}
}
