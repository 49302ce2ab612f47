package allowlist

import (
	"errors"
	"net/url"
	"testing"
	"time"
)

// fixtureAllowlist builds an Allowlist from the good fixture without
// signatures, for Match tests only. Real ones come from Verify.
func fixtureAllowlist(t testing.TB) *Allowlist {
	t.Helper()
	raw := readFixture(t, "allowlist.yaml")
	doc, err := ParseUnverified(raw)
	if err != nil {
		t.Fatal(err)
	}
	return &Allowlist{Doc: *doc, Raw: raw, SHA256: SHA256Hex(raw), now: fixedNow}
}

func TestMatch(t *testing.T) {
	a := fixtureAllowlist(t)
	all := []Field{FieldNumber, FieldExpMonth, FieldExpYear, FieldCVC}
	tests := []struct {
		name    string
		id      string
		caller  string
		method  string
		url     string
		fields  []Field
		now     time.Time
		wantID  string // "" means a denial is expected
		wantWhy Reason
	}{
		{"exact prefix", "acme-charges", "billing", "POST", "https://api.acme.example/v1/charges", all, testNow, "acme-charges", ""},
		{"under prefix", "acme-charges", "billing", "POST", "https://api.acme.example/v1/charges/ch_1/capture", all, testNow, "acme-charges", ""},
		{"query allowed", "acme-charges", "billing", "POST", "https://api.acme.example/v1/charges?expand=x", all, testNow, "acme-charges", ""},
		{"explicit 443", "acme-charges", "billing", "POST", "https://api.acme.example:443/v1/charges", nil, testNow, "acme-charges", ""},
		{"uppercase host", "acme-charges", "billing", "POST", "https://API.Acme.Example/v1/charges", nil, testNow, "acme-charges", ""},
		{"trailing dot", "acme-charges", "billing", "POST", "https://api.acme.example./v1/charges", nil, testNow, "acme-charges", ""},
		{"zero now uses policy clock", "acme-charges", "billing", "POST", "https://api.acme.example/v1/charges", nil, time.Time{}, "acme-charges", ""},
		{"segment boundary", "acme-charges", "billing", "POST", "https://api.acme.example/v1/chargesX", nil, testNow, "", ReasonDestinationNotAllowed},
		{"parent path", "acme-charges", "billing", "POST", "https://api.acme.example/v1", nil, testNow, "", ReasonDestinationNotAllowed},
		{"dot dot", "acme-charges", "billing", "POST", "https://api.acme.example/v1/charges/../refunds", nil, testNow, "", ReasonDestinationNotAllowed},
		{"encoded dot dot", "acme-charges", "billing", "POST", "https://api.acme.example/v1/charges/%2e%2e/refunds", nil, testNow, "", ReasonDestinationNotAllowed},
		{"encoded slash", "acme-charges", "billing", "POST", "https://api.acme.example/v1/charges%2Fx", nil, testNow, "", ReasonDestinationNotAllowed},
		{"backslash", "acme-charges", "billing", "POST", `https://api.acme.example/v1/charges\x`, nil, testNow, "", ReasonDestinationNotAllowed},
		{"dot dot semicolon", "acme-charges", "billing", "POST", "https://api.acme.example/v1/charges/..;/refunds", nil, testNow, "", ReasonDestinationNotAllowed},
		{"dot semicolon", "acme-charges", "billing", "POST", "https://api.acme.example/v1/charges/.;/x", nil, testNow, "", ReasonDestinationNotAllowed},
		{"encoded semicolon", "acme-charges", "billing", "POST", "https://api.acme.example/v1/charges/..%3b/x", nil, testNow, "", ReasonDestinationNotAllowed},
		{"overlong utf-8 dots", "acme-charges", "billing", "POST", "https://api.acme.example/v1/charges/%c0%ae%c0%ae/x", nil, testNow, "", ReasonDestinationNotAllowed},
		{"malformed escape", "acme-charges", "billing", "POST", "https://api.acme.example/v1/charges/%zz", nil, testNow, "", ReasonDestinationNotAllowed},
		{"double slash", "acme-charges", "billing", "POST", "https://api.acme.example/v1//charges", nil, testNow, "", ReasonDestinationNotAllowed},
		{"http", "acme-charges", "billing", "POST", "http://api.acme.example/v1/charges", nil, testNow, "", ReasonDestinationNotAllowed},
		{"userinfo", "acme-charges", "billing", "POST", "https://x@api.acme.example/v1/charges", nil, testNow, "", ReasonDestinationNotAllowed},
		{"fragment", "acme-charges", "billing", "POST", "https://api.acme.example/v1/charges#f", nil, testNow, "", ReasonDestinationNotAllowed},
		{"other host", "acme-charges", "billing", "POST", "https://evil.example/v1/charges", nil, testNow, "", ReasonDestinationNotAllowed},
		{"suffix host", "acme-charges", "billing", "POST", "https://api.acme.example.evil.example/v1/charges", nil, testNow, "", ReasonDestinationNotAllowed},
		{"other port", "acme-charges", "billing", "POST", "https://api.acme.example:8443/v1/charges", nil, testNow, "", ReasonDestinationNotAllowed},
		{"port leading zero", "acme-charges", "billing", "POST", "https://api.acme.example:0443/v1/charges", nil, testNow, "", ReasonDestinationNotAllowed},
		{"empty port", "acme-charges", "billing", "POST", "https://api.acme.example:/v1/charges", nil, testNow, "", ReasonDestinationNotAllowed},
		{"unknown id", "nope", "billing", "POST", "https://api.acme.example/v1/charges", nil, testNow, "", ReasonDestinationNotAllowed},
		{"empty id", "", "billing", "POST", "https://api.acme.example/v1/charges", nil, testNow, "", ReasonDestinationNotAllowed},
		{"wrong caller", "acme-charges", "payouts", "POST", "https://api.acme.example/v1/charges", nil, testNow, "", ReasonCallerNotAllowed},
		{"no caller", "acme-charges", "", "POST", "https://api.acme.example/v1/charges", nil, testNow, "", ReasonCallerNotAllowed},
		{"wrong method", "acme-charges", "billing", "GET", "https://api.acme.example/v1/charges", nil, testNow, "", ReasonMethodNotAllowed},
		{"lowercase method", "acme-charges", "billing", "post", "https://api.acme.example/v1/charges", nil, testNow, "", ReasonMethodNotAllowed},
		{"field not allowed", "acme-charges", "billing", "POST", "https://api.acme.example/v1/charges", []Field{FieldName}, testNow, "", ReasonFieldNotAllowed},
		{"unknown field", "acme-charges", "billing", "POST", "https://api.acme.example/v1/charges", []Field{"pin"}, testNow, "", ReasonFieldNotAllowed},
		{"expired", "acme-charges", "billing", "POST", "https://api.acme.example/v1/charges", nil, time.Date(2027, 1, 15, 0, 0, 0, 0, time.UTC), "", ReasonAllowlistExpired},
		{"wildcard one label", "acme-wild", "payouts", "GET", "https://eu.acme.example:8443/anything", nil, testNow, "acme-wild", ""},
		{"wildcard two labels", "acme-wild", "payouts", "GET", "https://a.eu.acme.example:8443/", nil, testNow, "acme-wild", ""},
		{"wildcard apex", "acme-wild", "payouts", "GET", "https://acme.example:8443/", nil, testNow, "", ReasonDestinationNotAllowed},
		{"wildcard lookalike", "acme-wild", "payouts", "GET", "https://evilacme.example:8443/", nil, testNow, "", ReasonDestinationNotAllowed},
		{"wildcard default port", "acme-wild", "payouts", "GET", "https://eu.acme.example/", nil, testNow, "", ReasonDestinationNotAllowed},
		{"ip exact", "local-test", "demo", "POST", "https://127.0.0.1:9443/pay", []Field{FieldName}, testNow, "local-test", ""},
		{"ip other", "local-test", "demo", "POST", "https://127.0.0.2:9443/pay", nil, testNow, "", ReasonDestinationNotAllowed},
		{"ip as name", "local-test", "demo", "POST", "https://localhost:9443/pay", nil, testNow, "", ReasonDestinationNotAllowed},
		{"ip mapped v6", "local-test", "demo", "POST", "https://[::ffff:127.0.0.1]:9443/pay", nil, testNow, "", ReasonDestinationNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.Parse(tt.url)
			if err != nil {
				// Go's parser refused it: the forwarder never gets this far.
				if tt.wantID != "" {
					t.Fatalf("url.Parse(%q) = %v", tt.url, err)
				}
				return
			}
			got, err := a.Match(Query{DestinationID: tt.id, Caller: tt.caller, Method: tt.method, URL: u, Fields: tt.fields, Now: tt.now})
			if tt.wantID != "" {
				if err != nil || got == nil || got.ID != tt.wantID {
					t.Fatalf("Match(%q) = %v, %v, want %s", tt.url, got, err, tt.wantID)
				}
				return
			}
			var de *DenyError
			if !errors.As(err, &de) || got != nil {
				t.Fatalf("Match(%q) = %v, %v, want a *DenyError %s", tt.url, got, err, tt.wantWhy)
			}
			if de.Reason != tt.wantWhy {
				t.Errorf("Match(%q) reason = %v (%s), want %v", tt.url, de.Reason, de.Detail, tt.wantWhy)
			}
			if de.ErrorCode() != string(tt.wantWhy) || de.PublicMessage() == "" {
				t.Errorf("Match(%q): ErrorCode %q, PublicMessage %q", tt.url, de.ErrorCode(), de.PublicMessage())
			}
		})
	}
}

func TestMatchNilAllowlist(t *testing.T) {
	var a *Allowlist
	u, _ := url.Parse("https://api.acme.example/v1/charges")
	_, err := a.Match(Query{DestinationID: "acme-charges", Caller: "billing", Method: "POST", URL: u})
	var de *DenyError
	if !errors.As(err, &de) || de.Reason != ReasonAllowlistUnavailable {
		t.Fatalf("(*Allowlist)(nil).Match = %v, want %s", err, ReasonAllowlistUnavailable)
	}
	a = fixtureAllowlist(t)
	if _, err := a.Match(Query{DestinationID: "acme-charges", Caller: "billing", Method: "POST"}); err == nil {
		t.Fatal("Match with a nil URL = nil error, want a denial")
	}
}
