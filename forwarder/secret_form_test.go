package forwarder

import (
	"context"
	"strings"
	"testing"
)

// TestSecretValueForm: a credential stands alone in its header value, or
// after one auth-scheme word ("Basic ", "Bearer "). Written inside other
// text, a URL above all, it would go wherever a processor sends that text
// (a callback it fetches, a page it shows), out of the auditors' sight.
func TestSecretValueForm(t *testing.T) {
	tests := []struct {
		name, value string
		ok          bool
	}{
		{"whole value", "{{secret.acme-key}}", true},
		{"whole value with spaces", "{{ secret.acme-key }}", true},
		{"basic", "Basic {{secret.acme-key | base64}}", true},
		{"bearer", "Bearer {{secret.acme-key}}", true},
		{"in a url", "https://attacker.example/cb?k={{secret.acme-key}}", false},
		{"after text", "key={{secret.acme-key}}", false},
		{"before text", "{{secret.acme-key}} extra", false},
		{"two scheme words", "Basic Basic {{secret.acme-key}}", false},
		{"twice", "{{secret.acme-key}}{{secret.acme-key}}", false},
		{"two spaces", "Bearer  {{secret.acme-key}}", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, echo, withCreds(newCredStore(t, cred{name: "acme-key", value: testAPIKey}), "acme-key"))
			r := e.jsonRequest(cardBody)
			r.Headers["X-Api-Key"] = []string{tt.value}
			if tt.ok {
				if _, err := e.f.Forward(context.Background(), r); err != nil {
					t.Fatalf("Forward(%q): %v", tt.value, err)
				}
				return
			}
			fe := forwardErr(t, e.f, r)
			if fe.Code != CodeInvalidTemplate || fe.Outcome != NotSent || !strings.Contains(fe.Message, "X-Api-Key") {
				t.Errorf("Forward(%q) = %s/%s %q, want invalid_template/not_sent naming the header", tt.value, fe.Code, fe.Outcome, fe.Message)
			}
			if n := len(e.p.requests()); n != 0 {
				t.Errorf("processor got %d requests, want none", n)
			}
		})
	}
}
