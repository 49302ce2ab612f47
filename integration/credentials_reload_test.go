package integration

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestCredentialsFromEnvReloadOnFileChange: on the built binary, the
// Stripe-style key comes from the gateway's environment and the
// Cybersource-style secret from a file. When the file changes the
// gateway reloads on its own, with no SIGHUP, and the next signed
// forward uses the new secret.
func TestCredentialsFromEnvReloadOnFileChange(t *testing.T) {
	e := newEnv(t)
	proc := startCredProcessor(t, e.procCA)
	proc.expect(stripeKeyV1, cybsSecret1)
	t.Setenv("CG_TEST_STRIPE_KEY", stripeKeyV1)
	cybsPath := e.write("creds/cybs-secret", []byte(cybsSecret1+"\n"))
	e.writeConfig(fmt.Sprintf(`credentials:
  stripe-key:
    env: CG_TEST_STRIPE_KEY
  cybs-secret:
    file: %s
    kind: hmac-key
`, cybsPath))
	e.signAllowlist(e.credAllowlist(1, proc.addr, ""))
	e.start()
	c := e.client(billing)

	forward := func(what, destination, path string, headers map[string][]string, body string, want float64) {
		t.Helper()
		status, out := e.post(c, "/v1/forward", map[string]any{
			"destination": destination, "url": "https://" + proc.addr + path, "method": "POST",
			"card": e.tokenize(c, visa), "headers": headers, "body": body,
		})
		if status != http.StatusOK || out["status"] != want {
			t.Fatalf("%s = %d %v, want 200 with processor status %v\nlog:\n%s", what, status, out, want, e.gw.log())
		}
	}
	stripe := func(what string) {
		t.Helper()
		forward(what, "stripe-charges", "/v1/charges",
			map[string][]string{"Content-Type": {"application/x-www-form-urlencoded"}, "Authorization": {"Basic {{secret.stripe-key | base64}}"}},
			"amount=2000&currency=usd&card[number]={{card.number}}&card[exp_month]={{card.exp_month}}&card[exp_year]={{card.exp_year}}", 200)
	}
	cybs := func(what string) {
		t.Helper()
		forward(what, "cybs-payments", "/pts/v2/payments",
			map[string][]string{"Content-Type": {"application/json"}, "V-C-Merchant-Id": {"testrest"}},
			`{"paymentInformation":{"card":{"number":"{{card.number}}","expirationMonth":"{{card.exp_month}}","expirationYear":"{{card.exp_year}}"}}}`, 201)
	}
	stripe("forward with the key from the environment")
	cybs("signed forward with the secret from the file")
	if d := e.checks(t)["credentials"]; !strings.Contains(d, "stripe-key (env)") {
		t.Errorf("readyz credentials detail = %q, want stripe-key from env", d)
	}

	// Rotate the file only. The watcher polls every
	// credentials.DefaultPollInterval (10s).
	loaded := e.countLog("credentials: loaded")
	proc.expect(stripeKeyV1, cybsSecret2)
	if err := os.WriteFile(cybsPath, []byte(cybsSecret2+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for e.countLog("credentials: loaded") <= loaded {
		if time.Now().After(deadline) {
			t.Fatalf("no credentials reload 30s after the file changed\nlog:\n%s", e.gw.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	refused := proc.refused("/pts/v2/payments")
	cybs("signed forward after the file changed")
	stripe("forward with the key from the environment, after the reload")
	if n := proc.refused("/pts/v2/payments"); n != refused {
		t.Errorf("the processor refused %d signed requests after the reload", n-refused)
	}
	for _, s := range []string{stripeKeyV1, cybsSecret1, cybsSecret2} {
		if strings.Contains(e.gw.log(), s) {
			t.Errorf("the gateway log holds a credential (%d bytes)", len(s))
		}
	}
}
