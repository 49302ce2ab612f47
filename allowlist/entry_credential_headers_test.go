package allowlist

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseCredentialHeadersFixture(t *testing.T) {
	doc, err := ParseUnverified(readFixture(t, "credentials.yaml"))
	if err != nil {
		t.Fatalf("ParseUnverified(credentials.yaml) = %v", err)
	}
	got := map[string][]string{}
	for _, d := range doc.Destinations {
		got[d.ID] = d.CredentialHeaders
	}
	want := map[string][]string{
		"stripe-charges":  nil,
		"cybs-payments":   nil,
		"digest-only":     nil,
		"rfc9421-ed25519": {"X-Api-Key"}, // written X-API-Key: kept canonical
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CredentialHeaders mismatch (-want +got):\n%s", diff)
	}
}

func TestAllowsCredentialHeader(t *testing.T) {
	d := &Destination{CredentialHeaders: []string{"Authorization", "X-Api-Key"}}
	tests := []struct {
		name string
		want bool
	}{
		{"Authorization", true},
		{"X-Api-Key", true},
		{"Idempotency-Key", false},
		{"X_api_key", false}, // an underscore twin is another header
		{"x-api-key", false}, // the forwarder passes canonical names only
		{"", false},
	}
	for _, tt := range tests {
		if got := d.AllowsCredentialHeader(tt.name); got != tt.want {
			t.Errorf("AllowsCredentialHeader(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
	if (&Destination{}).AllowsCredentialHeader("Authorization") {
		t.Errorf("AllowsCredentialHeader(%q) on an entry with no credential_headers = true, want false", "Authorization")
	}
}

func TestParseCredentialHeaders(t *testing.T) {
	const at = "line 9: destinations[0] (id \"acme\")"
	const creds = "    credentials: [acme-key]\n"
	tests := []struct {
		name, extra string
		want        []string // nil: refused with err
		err         string
	}{
		{name: "one", extra: creds + "    credential_headers: [Authorization]\n", want: []string{"Authorization"}},
		{name: "canonicalised", extra: creds + "    credential_headers: [x-api-key, AUTHORIZATION]\n", want: []string{"X-Api-Key", "Authorization"}},
		{name: "exactly the limit", extra: creds + "    credential_headers: [A, B, C, D]\n", want: []string{"A", "B", "C", "D"}},
		{name: "absent", extra: creds, want: nil},

		{name: "empty list", extra: creds + "    credential_headers: []\n", err: at + ".credential_headers: an empty list allows no header"},
		{name: "without credentials", extra: "    credential_headers: [Authorization]\n", err: at + ".credential_headers: the entry names no credentials"},
		{name: "too many", extra: creds + "    credential_headers: [A, B, C, D, E]\n", err: at + ".credential_headers: 5 names, more than the limit of 4"},
		{name: "not a token", extra: creds + "    credential_headers: [\"X Api\"]\n", err: at + `.credential_headers[0]: "X Api" is not a header name`},
		{name: "underscore", extra: creds + "    credential_headers: [X_API_Key]\n", err: at + `.credential_headers[0]: "X_API_Key" has an underscore`},
		{name: "idempotency key", extra: creds + "    credential_headers: [Authorization, Idempotency-Key]\n", err: at + `.credential_headers[1]: "Idempotency-Key" may not carry a credential`},
		{name: "forbidden in another case", extra: creds + "    credential_headers: [hOST]\n", err: `"hOST" may not carry a credential`},
		{name: "forbidden prefix", extra: creds + "    credential_headers: [X-Forwarded-Auth]\n", err: `"X-Forwarded-Auth" may not carry a credential`},
		{name: "duplicate in two cases", extra: creds + "    credential_headers: [X-Api-Key, x-api-key]\n", err: at + `.credential_headers[1]: "x-api-key" is listed twice`},
		{name: "not a list", extra: creds + "    credential_headers: Authorization\n", err: "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := ParseUnverified([]byte(entryDoc("[POST]", tt.extra)))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseUnverified = %v, want an error containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseUnverified = %v, want nil", err)
			}
			if diff := cmp.Diff(tt.want, doc.Destinations[0].CredentialHeaders); diff != "" {
				t.Errorf("CredentialHeaders mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestForbiddenCredentialHeadersInSchema holds the schema's pattern to
// ForbiddenCredentialHeader: every listed name, in two cases, is refused
// by both, and ordinary credential headers are accepted by both.
func TestForbiddenCredentialHeadersInSchema(t *testing.T) {
	sch := loadSchema(t)
	var names []string
	for n := range forbiddenCredentialHeaders {
		names = append(names, n, strings.ToLower(n))
	}
	for _, p := range forbiddenCredentialHeaderPrefixes {
		names = append(names, p+"Key", strings.ToUpper(p)+"key")
	}
	for _, n := range append(names, "Authorization", "X-Api-Key", "x-api-key", "Api-Key", "X-Merchant-Key") {
		raw := []byte(entryDoc("[POST]", "    credentials: [acme-key]\n    credential_headers: ["+n+"]\n"))
		_, perr := ParseUnverified(raw)
		serr := schemaCheck(sch, raw)
		if (perr == nil) != (serr == nil) {
			t.Errorf("credential_headers: [%s]: parser error %v, schema error %v; want both or neither", n, perr, serr)
		}
		if forbidden := ForbiddenCredentialHeader(n); forbidden != (perr != nil) {
			t.Errorf("credential_headers: [%s]: ForbiddenCredentialHeader = %v, parser error %v", n, forbidden, perr)
		}
	}
}
