package review

import (
	"strings"
	"testing"

	"github.com/cardgate/cardgate/allowlist"
)

// TestDiffCredentials checks that allowlist diff flags a credential newly
// granted to an entry, a header newly listed in its credential_headers
// and a new or changed signing block as WIDENS, and
// shows removals without the mark.
func TestDiffCredentials(t *testing.T) {
	const head = `format: cardgate.allowlist/v1
namespace: cardgate-allowlist@v1
environment: test
version: %V
issued_at: 2026-11-01T00:00:00Z
expires: 2027-01-15T00:00:00Z
prev_sha256: %P
destinations:
  - id: cybs
    purpose: charges
    owner: billing@example.com
    url: https://api.cybs.example/pts/v2/payments
    methods: [POST]
    callers: [billing]
    fields: [number]
`
	doc := func(version, extra string) *allowlist.Document {
		t.Helper()
		prev := `""`
		if version != "1" {
			prev = strings.Repeat("a", 64)
		}
		raw := strings.NewReplacer("%V", version, "%P", prev).Replace(head) + extra
		d, err := allowlist.ParseUnverified([]byte(raw))
		if err != nil {
			t.Fatalf("ParseUnverified: %v", err)
		}
		return d
	}
	creds := func(names string) string { return "    credentials: [" + names + "]\n" }
	cavage := func(keyID, headers string) string {
		return "    signing:\n      scheme: cavage\n      credential: cybs-secret\n      secret_encoding: base64\n" +
			"      cavage:\n        key_id: " + keyID + "\n        algorithm: HmacSHA256\n        headers: [" + headers + "]\n"
	}
	headers := func(names string) string { return "    credential_headers: [" + names + "]\n" }
	const hdrs = "host, date, request-target, digest, v-c-merchant-id"
	const summary = `{scheme=cavage credential=cybs-secret secret_encoding=base64 cavage.key_id=k1 cavage.algorithm=HmacSHA256 cavage.headers=[host,date,request-target,digest,v-c-merchant-id]}`
	type line struct {
		text   string
		widens bool
	}
	tests := []struct {
		name     string
		old, new string
		want     []line
	}{
		{"credential granted", creds("cybs-key"), creds("cybs-key, cybs-other"),
			[]line{{"~ cybs: + credential cybs-other", true}}},
		{"first credential", "", creds("cybs-key"),
			[]line{{"~ cybs: + credential cybs-key", true}}},
		{"credential withdrawn", creds("cybs-key, cybs-other"), creds("cybs-key"),
			[]line{{"~ cybs: - credential cybs-other", false}}},
		{"credential swapped", creds("cybs-key"), creds("cybs-key-2027"),
			[]line{{"~ cybs: + credential cybs-key-2027", true}, {"~ cybs: - credential cybs-key", false}}},
		{"signing added", creds("cybs-secret"), creds("cybs-secret") + cavage("k1", hdrs),
			[]line{{"~ cybs: signing - -> " + summary, true}}},
		{"signing changed", creds("cybs-secret") + cavage("k1", hdrs), creds("cybs-secret") + cavage("k1", "host, date, digest"),
			[]line{{"~ cybs: signing " + summary + " -> {scheme=cavage credential=cybs-secret secret_encoding=base64 cavage.key_id=k1 cavage.algorithm=HmacSHA256 cavage.headers=[host,date,digest]}", true}}},
		{"signing key id changed", creds("cybs-secret") + cavage("k1", hdrs), creds("cybs-secret") + cavage("k2", hdrs),
			[]line{{"~ cybs: signing " + summary + " -> " + strings.Replace(summary, "key_id=k1", "key_id=k2", 1), true}}},
		{"signing removed", creds("cybs-secret") + cavage("k1", hdrs), creds("cybs-secret"),
			[]line{{"~ cybs: signing " + summary + " -> -", false}}},
		{"unchanged", creds("cybs-secret") + cavage("k1", hdrs), creds("cybs-secret") + cavage("k1", hdrs), nil},
		{"first credential header", creds("cybs-key"), creds("cybs-key") + headers("Authorization"),
			[]line{{"~ cybs: + credential header Authorization", true}}},
		{"credential header added", creds("cybs-key") + headers("Authorization"), creds("cybs-key") + headers("Authorization, Idempotency-Token"),
			[]line{{"~ cybs: + credential header Idempotency-Token", true}}},
		{"credential header withdrawn", creds("cybs-key") + headers("Authorization, X-Api-Key"), creds("cybs-key") + headers("X-Api-Key"),
			[]line{{"~ cybs: - credential header Authorization", false}}},
		{"credential header respelt", creds("cybs-key") + headers("X-API-Key"), creds("cybs-key") + headers("x-api-key"), nil},
	}
	relevant := func(c Change) bool {
		return strings.Contains(c.Text, "credential") || strings.Contains(c.Text, "signing")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []line
			for _, c := range Diff(doc("1", tt.old), doc("2", tt.new), strings.Repeat("a", 64)) {
				if relevant(c) {
					got = append(got, line{c.Text, c.Widens})
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("diffDocuments = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("diffDocuments[%d] = %q (widens %v), want %q (widens %v)", i, got[i].text, got[i].widens, tt.want[i].text, tt.want[i].widens)
				}
			}
		})
	}
	t.Run("new destination", func(t *testing.T) {
		old := doc("1", "")
		old.Destinations = nil
		var got []line
		for _, c := range Diff(old, doc("2", creds("cybs-secret")+cavage("k1", hdrs)), strings.Repeat("a", 64)) {
			if relevant(c) {
				got = append(got, line{c.Text, c.Widens})
			}
		}
		want := []line{{"+ cybs: + credential cybs-secret", true}, {"+ cybs: signing - -> " + summary, true}}
		if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("diffDocuments = %+v, want %+v", got, want)
		}
	})
	t.Run("new destination with a credential header", func(t *testing.T) {
		old := doc("1", "")
		old.Destinations = nil
		var got []line
		for _, c := range Diff(old, doc("2", creds("cybs-key")+headers("X-API-Key")), strings.Repeat("a", 64)) {
			if relevant(c) {
				got = append(got, line{c.Text, c.Widens})
			}
		}
		want := []line{{"+ cybs: + credential cybs-key", true}, {"+ cybs: + credential header X-Api-Key", true}}
		if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("diffDocuments = %+v, want %+v", got, want)
		}
	})
	t.Run("show credential headers", func(t *testing.T) {
		for _, tt := range []struct{ extra, want string }{
			{creds("cybs-key") + headers("authorization, X-API-Key"), "CREDENTIAL HEADERS Authorization,X-Api-Key"},
			{creds("cybs-secret") + cavage("k1", hdrs), "credentials in no header (signing only)"},
		} {
			d := doc("1", tt.extra)
			if n := strings.Join(Notes(&d.Destinations[0]), "; "); !strings.Contains(n, tt.want) {
				t.Errorf("notes = %q, want %q", n, tt.want)
			}
		}
	})
	t.Run("show", func(t *testing.T) {
		d := doc("1", creds("cybs-key, cybs-secret")+cavage("k1", hdrs))
		n := strings.Join(Notes(&d.Destinations[0]), "; ")
		if !strings.Contains(n, "CREDENTIALS cybs-key,cybs-secret") || !strings.Contains(n, "signing cavage with cybs-secret") {
			t.Errorf("notes = %q, want the credentials and the signing scheme", n)
		}
	})
}

// TestSigningSummaryQuotes checks that separators and prefixes holding
// spaces or escapes are quoted, so one setting cannot read as two.
func TestSigningSummaryQuotes(t *testing.T) {
	d := func(sep, prefix string) string {
		raw := `format: cardgate.allowlist/v1
namespace: cardgate-allowlist@v1
environment: test
version: 1
issued_at: 2026-11-01T00:00:00Z
expires: 2027-01-15T00:00:00Z
prev_sha256: ""
destinations:
  - id: p
    purpose: charges
    owner: billing@example.com
    url: https://api.p.example/v1
    methods: [POST]
    callers: [billing]
    fields: [number]
    credentials: [p-key]
    signing:
      scheme: hmac
      credential: p-key
      hmac:
        hash: sha256
        parts: [method, body]
        separator: ` + sep + `
        header: X-Sig
        prefix: ` + prefix + `
        encoding: hex
`
		doc, err := allowlist.ParseUnverified([]byte(raw))
		if err != nil {
			t.Fatalf("ParseUnverified: %v", err)
		}
		return signingSummary(doc.Destinations[0].Signing)
	}
	a, b := d(`"\n"`, `"v1="`), d(`"x"`, `"v1 x"`)
	if !strings.Contains(a, `hmac.separator="\n"`) || !strings.Contains(a, `hmac.prefix="v1="`) {
		t.Errorf("signingSummary = %s, want the separator and prefix quoted", a)
	}
	if !strings.Contains(b, `hmac.separator=x`) || !strings.Contains(b, `hmac.prefix="v1 x"`) {
		t.Errorf("signingSummary = %s, want the prefix with a space quoted", b)
	}
}
