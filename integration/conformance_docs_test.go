package integration

import (
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestConformanceDocs checks docs/processors.md's marked blocks on their
// own, so a broken page fails here with a clear message rather than in
// the middle of a forward: each shape has an entry and a caller's request
// that name the same destination and URL, the requests are JSON holding
// a token placeholder and no credential, and the credentials section is
// YAML naming every credential an entry grants.
func TestConformanceDocs(t *testing.T) {
	var creds struct {
		Credentials map[string]map[string]any `yaml:"credentials"`
	}
	if err := yaml.Unmarshal([]byte(confBlock(t, "credentials")), &creds); err != nil {
		t.Fatalf("the credentials block is not YAML: %v", err)
	}
	idLine := regexp.MustCompile(`(?m)^  - id: (\S+)$`)
	grants := regexp.MustCompile(`(?m)^    credentials: \[([^\]]*)\]$`)
	for _, shape := range []struct{ entry, request string }{
		{"stripe-entry", "stripe-request"},
		{"adyen-entry", "adyen-request"},
		{"cybersource-entry", "cybersource-request"},
		{"cybersource-entry", "cybersource-mit-request"},
		{"worldpay-entry", "worldpay-request"},
		{"rfc9421-entry", "rfc9421-request"},
	} {
		t.Run(shape.request, func(t *testing.T) {
			entry := confBlock(t, shape.entry)
			var doc []map[string]any
			if err := yaml.Unmarshal([]byte(entry), &doc); err != nil || len(doc) != 1 {
				t.Fatalf("%s is not one YAML list item: %v", shape.entry, err)
			}
			if strings.Contains(entry, "unsafe_") {
				t.Errorf("%s carries an unsafe_ setting; the tests add what they need", shape.entry)
			}
			id := idLine.FindStringSubmatch(entry)
			m := confURLLine.FindStringSubmatch(entry)
			if id == nil || m == nil {
				t.Fatalf("%s has no id or url line", shape.entry)
			}
			for _, g := range grants.FindAllStringSubmatch(entry, -1) {
				for _, name := range strings.Split(g[1], ",") {
					if _, ok := creds.Credentials[strings.TrimSpace(name)]; !ok {
						t.Errorf("%s grants %s, which the credentials block does not configure", shape.entry, strings.TrimSpace(name))
					}
				}
			}
			raw := confBlock(t, shape.request)
			var req map[string]any
			if err := json.Unmarshal([]byte(raw), &req); err != nil {
				t.Fatalf("%s is not JSON: %v", shape.request, err)
			}
			if req["destination"] != id[1] || req["url"] != m[1] || req["card"] != "tok_…" {
				t.Errorf("%s: destination %v, url %v, card %v; want %s, %s and the placeholder tok_…",
					shape.request, req["destination"], req["url"], req["card"], id[1], m[1])
			}
			if u, err := url.Parse(m[1]); err != nil || u.Scheme != "https" {
				t.Errorf("%s: url %s is not https", shape.entry, m[1])
			}
			for _, s := range []string{"sk_test_", "sk_live_", "AQE", "BEGIN PRIVATE KEY"} {
				if strings.Contains(raw, s) {
					t.Errorf("%s holds what looks like a credential (%s…); callers hold none", shape.request, s)
				}
			}
		})
	}
}
