package allowlist

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardgate/cardgate/cardscan"
)

func pathStrings(ps []cardscan.Path) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

func TestParseResponseRules(t *testing.T) {
	doc, err := ParseUnverified(readFixture(t, "response_rules.yaml"))
	if err != nil {
		t.Fatalf("ParseUnverified(response_rules.yaml) = %v", err)
	}
	d := doc.Destinations[0]
	if diff := cmp.Diff([]string{"$.processingInformation.previousTransactionId"}, pathStrings(d.RequestIdentifiers)); diff != "" {
		t.Errorf("request_identifiers (-want +got):\n%s", diff)
	}
	if d.Response == nil {
		t.Fatal("Response = nil")
	}
	wantIDs := []string{
		"$.processorInformation.networkTransactionId", "$.acquirerReferenceNumber",
		"/paymentService/reply/orderStatus/payment/schemeResponse/transactionIdentifier", "form:network_transaction_id",
	}
	if diff := cmp.Diff(wantIDs, pathStrings(d.Response.Identifiers)); diff != "" {
		t.Errorf("response.identifiers (-want +got):\n%s", diff)
	}
	var rcs []string
	for _, r := range d.Response.ReturnedCards {
		rcs = append(rcs, r.String())
	}
	wantRC := []string{
		"number $.accountUpdate.card.number, exp_month $.accountUpdate.card.expirationMonth, exp_year $.accountUpdate.card.expirationYear",
		"number /reply/card/@number, exp_month /reply/card/expMonth, exp_year /reply/card/expYear",
	}
	if diff := cmp.Diff(wantRC, rcs); diff != "" {
		t.Errorf("response.returned_cards (-want +got):\n%s", diff)
	}
	if p := doc.Destinations[1]; p.RequestIdentifiers != nil || p.Response != nil {
		t.Errorf("entry without rules has %v, %v", p.RequestIdentifiers, p.Response)
	}
}

// entryWith is the fixture's plain entry with extra lines appended.
func entryWith(extra string) []byte {
	return []byte(`format: cardgate.allowlist/v1
namespace: cardgate-allowlist@v1
environment: test
version: 1
issued_at: 2026-11-01T00:00:00Z
expires: 2027-01-15T00:00:00Z
destinations:
  - id: plain
    purpose: p
    owner: o@example.com
    url: https://api.acme.example/v1
    methods: [POST]
    callers: [billing]
    fields: [number]
` + extra)
}

func TestParseResponseRulesRefused(t *testing.T) {
	many := "    request_identifiers:\n"
	for i := range cardscan.MaxPaths + 1 {
		many += "      - \"$.a" + strings.Repeat("x", i+1) + "\"\n"
	}
	manyCards := "    response:\n      returned_cards:\n"
	for i := range cardscan.MaxReturnedCards + 1 {
		k := strings.Repeat("c", i+1)
		manyCards += "        - number: \"$." + k + ".n\"\n          exp_month: \"$." + k + ".m\"\n          exp_year: \"$." + k + ".y\"\n"
	}
	tests := []struct{ name, extra, want string }{
		{"bad request path", `    request_identifiers: ["$..id"]` + "\n", `request_identifiers[0]: "$..id": cardscan: path: recursive descent`},
		{"too many request paths", many, "request_identifiers: 33 paths, more than the limit of 32"},
		{"duplicate in another spelling", `    request_identifiers: ["$.a", "$['a']"]` + "\n", `request_identifiers[1]: "$['a']" selects the same values as "$.a"`},
		{"empty response block", "    response:\n      identifiers: []\n", "response: list identifiers or returned_cards"},
		{"bad identifier", "    response:\n      identifiers: [\"//a\"]\n", `response.identifiers[0]: "//a": cardscan: path:`},
		{"unknown response key", "    response:\n      mask: false\n", "field mask not found"},
		{"returned card as a plain path", "    response:\n      returned_cards: [\"$.card.number\"]\n",
			"returned_cards[0]: write number, exp_month and exp_year paths"},
		{"returned card unknown key", "    response:\n      returned_cards:\n        - number: \"$.c.n\"\n          exp_month: \"$.c.m\"\n          exp_year: \"$.c.y\"\n          cvc: \"$.c.v\"\n",
			`returned_cards[0]: unknown key "cvc"`},
		{"returned card without expiry", "    response:\n      returned_cards:\n        - number: \"$.c.n\"\n          exp_month: \"$.c.m\"\n",
			"returned_cards[0].exp_year: is required"},
		{"returned card list value", "    response:\n      returned_cards:\n        - number: [\"$.c.n\"]\n          exp_month: \"$.c.m\"\n          exp_year: \"$.c.y\"\n",
			"returned_cards[0].number: must be one path"},
		{"expiry not a sibling", "    response:\n      returned_cards:\n        - number: \"$.c.n\"\n          exp_month: \"$.d.m\"\n          exp_year: \"$.c.y\"\n",
			`exp_month: "$.d.m" must be a sibling of number "$.c.n"`},
		{"expiry of another kind", "    response:\n      returned_cards:\n        - number: \"$.c.n\"\n          exp_month: \"/c/m\"\n          exp_year: \"$.c.y\"\n",
			`exp_month: "/c/m" must be a sibling`},
		{"expiry is the number", "    response:\n      returned_cards:\n        - number: \"$.c.n\"\n          exp_month: \"$['c']['n']\"\n          exp_year: \"$.c.y\"\n",
			"is the number's own path"},
		{"month and year the same", "    response:\n      returned_cards:\n        - number: \"$.c.n\"\n          exp_month: \"$.c.e\"\n          exp_year: \"$.c.e\"\n",
			"exp_month and exp_year are the same path"},
		{"kept and tokenized", "    response:\n      identifiers: [\"$.c.n\"]\n      returned_cards:\n        - number: \"$.c.n\"\n          exp_month: \"$.c.m\"\n          exp_year: \"$.c.y\"\n",
			"is also listed in identifiers"},
		{"same number twice", "    response:\n      returned_cards:\n        - number: \"$.c.n\"\n          exp_month: \"$.c.m\"\n          exp_year: \"$.c.y\"\n        - number: \"$.c.n\"\n          exp_month: \"$.c.a\"\n          exp_year: \"$.c.b\"\n",
			"returned_cards[1]: number \"$.c.n\" is already returned_cards[0]'s"},
		{"too many returned cards", manyCards, "returned_cards: 9 entries, more than the limit of 8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseUnverified(entryWith(tt.extra))
			if err == nil {
				t.Fatalf("ParseUnverified = nil error, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseUnverified = %v\nwant it to contain %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "line ") {
				t.Errorf("error %q does not name a line", err)
			}
		})
	}
}

func TestDiffResponseRules(t *testing.T) {
	parse := func(extra string) *Destination {
		t.Helper()
		doc, err := ParseUnverified(entryWith(extra))
		if err != nil {
			t.Fatal(err)
		}
		return &doc.Destinations[0]
	}
	base := parse("")
	rules := parse(`    request_identifiers: ["$.prev"]
    response:
      identifiers: ["$.nti", "$.arn"]
      returned_cards:
        - number: "$.c.n"
          exp_month: "$.c.m"
          exp_year: "$.c.y"
`)
	respelled := parse(`    request_identifiers: ["$['prev']"]
    response:
      identifiers: ["$.arn", "$['nti']"]
      returned_cards:
        - number: "$['c'].n"
          exp_month: "$.c.m"
          exp_year: "$.c.y"
`)
	changed := parse(`    response:
      identifiers: ["$.nti"]
      returned_cards:
        - number: "$.c.n"
          exp_month: "$.c.month"
          exp_year: "$.c.y"
`)
	tests := []struct {
		name string
		o, n *Destination
		want []RuleChange
	}{
		{"none", base, base, nil},
		{"added", base, rules, []RuleChange{
			{"+ request identifier $.prev", true},
			{"+ response identifier $.nti", true},
			{"+ response identifier $.arn", true},
			{"+ returned card (tokenized) number $.c.n, exp_month $.c.m, exp_year $.c.y", true},
		}},
		{"new entry", &Destination{}, rules, DiffResponseRules(base, rules)},
		{"removed", rules, base, []RuleChange{
			{"- request identifier $.prev", false},
			{"- response identifier $.nti", false},
			{"- response identifier $.arn", false},
			{"- returned card number $.c.n, exp_month $.c.m, exp_year $.c.y", false},
		}},
		{"respelled and reordered", rules, respelled, nil},
		{"changed", rules, changed, []RuleChange{
			{"- request identifier $.prev", false},
			{"- response identifier $.arn", false},
			{"+ returned card (tokenized) number $.c.n, exp_month $.c.month, exp_year $.c.y", true},
			{"- returned card number $.c.n, exp_month $.c.m, exp_year $.c.y", false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, DiffResponseRules(tt.o, tt.n)); diff != "" {
				t.Errorf("DiffResponseRules (-want +got):\n%s", diff)
			}
		})
	}
	if got := ResponseRuleNotes(rules); !cmp.Equal(got, []string{"1 request identifier path(s)", "2 response identifier path(s) kept", "1 returned card(s) tokenized"}) {
		t.Errorf("ResponseRuleNotes = %q", got)
	}
	if got := ResponseRuleNotes(base); got != nil {
		t.Errorf("ResponseRuleNotes(no rules) = %q, want nil", got)
	}
}
