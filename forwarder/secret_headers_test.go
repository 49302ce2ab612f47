package forwarder

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardgate/cardgate/audit"
)

// TestSecretOnlyInCredentialHeaders: a {{secret.NAME}} placeholder goes
// only in a header the entry lists in credential_headers, matched without
// regard to case; in any other header (an Idempotency-Key a processor
// shows in its dashboard above all), an underscore twin of a listed one
// included, it is refused as credential_not_allowed before any credential
// or card is read, and nothing is sent.
func TestSecretOnlyInCredentialHeaders(t *testing.T) {
	store := credStoreForTests(t)
	tests := []struct {
		name    string
		headers []string // credential_headers; nil: withCreds' Authorization, X-Api-Key
		set     map[string]string
		dryRun  bool
		// Accepted: the header the processor must get the key in.
		sentIn string
		// Refused: the message must hold wantMsg.
		wantMsg string
	}{
		{name: "declared header", set: map[string]string{"X-Api-Key": "{{secret.acme-key}}"}, sentIn: "X-Api-Key"},
		{name: "declared header in lower case", set: map[string]string{"x-api-key": "{{secret.acme-key}}"}, sentIn: "X-Api-Key"},
		{name: "declared header in upper case", set: map[string]string{"AUTHORIZATION": "Bearer {{secret.acme-key}}"}, sentIn: "Authorization"},
		{name: "another declared header", headers: []string{"X-Merchant-Key"}, set: map[string]string{"X-Merchant-Key": "{{secret.acme-key}}"}, sentIn: "X-Merchant-Key"},
		{name: "idempotency key without a secret is still sent", set: map[string]string{"X-Api-Key": "{{secret.acme-key}}", "Idempotency-Key": "order-1234"}, sentIn: "X-Api-Key"},

		{name: "idempotency key", set: map[string]string{"Idempotency-Key": "{{secret.acme-key}}"},
			wantMsg: "header Idempotency-Key: destination acme does not allow a {{secret.…}} placeholder in this header"},
		{name: "idempotency key next to a declared header", set: map[string]string{"X-Api-Key": "{{secret.acme-key}}", "Idempotency-Key": "{{secret.acme-key}}"},
			wantMsg: "header Idempotency-Key:"},
		{name: "idempotency key in a dry run", set: map[string]string{"Idempotency-Key": "{{secret.acme-key}}"}, dryRun: true,
			wantMsg: "header Idempotency-Key:"},
		{name: "basic auth in an undeclared header", set: map[string]string{"X-Request-Id": "Basic {{secret.acme-basic | base64}}"},
			wantMsg: "header X-Request-Id:"},
		{name: "underscore twin of a declared header", set: map[string]string{"X_Api_Key": "{{secret.acme-key}}"},
			wantMsg: "header X_api_key: a {{secret.…}} placeholder may go only in X-Api-Key"},
		{name: "underscore twin of an undeclared header", set: map[string]string{"Idempotency_Key": "{{secret.acme-key}}"},
			wantMsg: "header Idempotency_key: destination acme does not allow"},
		{name: "credentials that only sign", headers: []string{}, set: map[string]string{"Authorization": "Bearer {{secret.acme-key}}"},
			wantMsg: "header Authorization: destination acme does not allow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counter := &countingCreds{Credentials: store}
			opts := []envOpt{withCreds(counter, "acme-key", "acme-basic")}
			if tt.headers != nil {
				opts = append(opts, withCredHeaders(tt.headers...))
			}
			e := newEnv(t, echo, opts...)
			r := e.jsonRequest(`{"n":"{{card.number}}","cvc":"{{card.cvc}}"}`)
			for k, v := range tt.set {
				r.Headers[k] = []string{v}
			}
			r.DryRun = tt.dryRun
			if tt.wantMsg == "" {
				if _, err := e.f.Forward(context.Background(), r); err != nil {
					t.Fatalf("Forward: %v", err)
				}
				reqs := e.p.requests()
				if len(reqs) != 1 {
					t.Fatalf("processor got %d requests, want 1", len(reqs))
				}
				if got := reqs[0].header.Get(tt.sentIn); got == "" || !strings.Contains(got, testAPIKey) {
					t.Errorf("processor's %s = %q, want the credential", tt.sentIn, got)
				}
				return
			}
			fe := forwardErr(t, e.f, r)
			if fe.Code != CodeCredentialNotAllowed || fe.Outcome != NotSent {
				t.Errorf("Forward = %s/%s (%v), want %s/not_sent", fe.Code, fe.Outcome, fe, CodeCredentialNotAllowed)
			}
			if !strings.Contains(fe.Message, tt.wantMsg) {
				t.Errorf("message = %q, want it to contain %q", fe.Message, tt.wantMsg)
			}
			if n := len(e.p.requests()); n != 0 {
				t.Errorf("processor got %d requests, want 0", n)
			}
			if got := counter.gets(); got != 0 {
				t.Errorf("credential reads = %d, want 0", got)
			}
			if detok, consumed := e.cards.counts(); detok != 0 || consumed != 0 {
				t.Errorf("detokenized %d times (%d consuming the CVC), want 0", detok, consumed)
			}
			if got, want := e.auditKinds(), []audit.Kind{audit.KindDenied}; !cmp.Equal(got, want) {
				t.Errorf("audit kinds = %v, want %v", got, want)
			} else if rec := e.auditRecords()[0]; rec.Reason != CodeCredentialNotAllowed {
				t.Errorf("denied record reason = %q, want %s", rec.Reason, CodeCredentialNotAllowed)
			}
			assertNoSecret(t, "error", fe.Error(), testAPIKey, testBasicUser)
			assertNoSecret(t, "log", e.logText(), testAPIKey, testBasicUser)
		})
	}
}
