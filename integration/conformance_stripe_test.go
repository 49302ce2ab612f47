package integration

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/cardgate/cardgate/internal/testprocessor"
)

// TestConformanceStripe runs docs/processors.md §1: a Stripe-style charge,
// form-encoded card[…] fields, Basic auth with the gateway's secret key as
// the user and an empty password. The caller holds a token and the
// template only. A credential the entry does not grant is refused, and
// once Stripe no longer takes the key, it refuses the charge.
func TestConformanceStripe(t *testing.T) {
	c := newConfEnv(t)
	card := confCard(visa)
	stripe := &testprocessor.Stripe{SecretKey: confStripeKey, Card: card}
	proc := testprocessor.Start(t, c.procCA, stripe)
	c.addEntry("stripe-entry", proc.URL, nil)
	c.startGateway()
	tok := c.tokenizeCard(card)

	// A dry run shows where the key would go, never the key; nothing is
	// sent and the CVC stays for the real forward.
	dry := c.request("stripe-request", tok, proc.URL)
	dry["dry_run"] = true
	status, out := c.forward(dry)
	preview, _ := out["dry_run"].(map[string]any)
	headers, _ := preview["headers"].(map[string]any)
	if status != http.StatusOK || fmt.Sprint(headers["Authorization"]) != "[Basic [secret.stripe-secret-key]]" {
		t.Errorf("dry run = %d %v, want the Authorization shown as Basic [secret.stripe-secret-key]", status, out)
	}
	if n := len(proc.Exchanges()); n != 0 {
		t.Fatalf("a dry run reached the processor (%d requests)", n)
	}

	// A credential the entry does not grant (Adyen's key, a secret
	// like Stripe's) is refused before anything is read or sent.
	stray := c.request("stripe-request", tok, proc.URL)
	stray["headers"].(map[string]any)["X-Adyen-Key"] = []string{"{{secret.adyen-api-key}}"}
	status, out = c.forward(stray)
	if e, _ := out["error"].(map[string]any); status != http.StatusForbidden || errCode(out) != "credential_not_allowed" || e["outcome"] != "not_sent" {
		t.Errorf("a credential the entry does not grant = %d %v, want 403 credential_not_allowed, not_sent", status, out)
	}
	if n := len(proc.Exchanges()); n != 0 {
		t.Fatalf("a request with an ungranted credential reached the processor (%d requests)", n)
	}

	status, out = c.forward(c.request("stripe-request", tok, proc.URL))
	body := c.answered("Stripe-style charge", status, out, http.StatusOK)
	x := accepted(t, "Stripe-style charge", proc)
	if got, want := x.Header.Get("Authorization"), "Basic "+base64.StdEncoding.EncodeToString([]byte(confStripeKey+":")); got != want {
		t.Errorf("the processor got Authorization %.12s…, want Basic auth with the secret key as user and no password", got)
	}
	// As docs/processors.md says.
	if !strings.Contains(string(x.Body), "&card[name]=Jane+%22JJ%22+Doe+%26+Co") {
		t.Errorf("the processor's form does not carry the name escaped as documented")
	}
	form, err := url.ParseQuery(string(x.Body))
	if err != nil || form.Get("card[name]") != card.Name || form.Get("card[exp_month]") != "03" {
		t.Errorf("the processor's form: name %q, exp_month %q (err %v); want the name form-escaped and read back, the month zero-padded",
			form.Get("card[name]"), form.Get("card[exp_month]"), err)
	}

	kept(t, body, testprocessor.NetworkTransactionID, "payment_method_details", "card", "network_transaction_id")
	masked(t, body, testprocessor.ARN, "payment_method_details", "card", "acquirer_reference_number")
	if got := confJSON(t, body, "payment_method_details", "card", "last4"); got != "4242" {
		t.Errorf("last4 = %v, want 4242", got)
	}

	// Once Stripe no longer takes the gateway's key (rolled on its
	// side), it refuses the charge with its 401, which reaches the
	// caller as Stripe's answer.
	proc.Update(func() { stripe.SecretKey = confStripeKey + "Rolled" })
	status, out = c.forward(c.request("stripe-request", c.tokenizeCard(card), proc.URL))
	body = c.answered("Stripe-style charge with a rolled key", status, out, http.StatusUnauthorized)
	if x, _ := proc.Last(); x.Verdict != testprocessor.RefusedAuth {
		t.Errorf("the processor judged the rolled key %s (%s), want %s", x.Verdict, x.Reason, testprocessor.RefusedAuth)
	}
	if got := confJSON(t, body, "error", "type"); got != "invalid_request_error" {
		t.Errorf("error.type = %v, want invalid_request_error (Stripe's 401)", got)
	}
}
