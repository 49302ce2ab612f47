package integration

import (
	"net/http"
	"testing"

	"github.com/cardgate/cardgate/internal/testprocessor"
)

// TestConformanceAdyen runs docs/processors.md §2: an Adyen Checkout-style
// payment, JSON paymentMethod with the zero-padded month, the API key
// sent by the gateway as X-API-Key.
func TestConformanceAdyen(t *testing.T) {
	c := newConfEnv(t)
	card := confCard(mastercard)
	adyen := &testprocessor.Adyen{APIKey: confAdyenKey, MerchantAccount: confAdyenMerchant, Card: card}
	proc := testprocessor.Start(t, c.procCA, adyen)
	c.addEntry("adyen-entry", proc.URL, nil)
	c.startGateway()

	status, out := c.forward(c.request("adyen-request", c.tokenizeCard(card), proc.URL))
	body := c.answered("Adyen-style payment", status, out, http.StatusOK)
	x := accepted(t, "Adyen-style payment", proc)
	if x.Header.Get("X-API-Key") != confAdyenKey {
		t.Error("the processor did not get the gateway's API key in X-API-Key")
	}
	if got := confJSON(t, body, "resultCode"); got != "Authorised" {
		t.Errorf("resultCode = %v, want Authorised", got)
	}
	kept(t, body, testprocessor.NetworkTransactionID, "additionalData", "networkTxReference")
	masked(t, body, testprocessor.ARN, "additionalData", "acquirerReference")

	// When the processor no longer takes the key (rotated on its side
	// first), its 401 reaches the caller as its answer, with nothing of
	// the key in it.
	proc.Update(func() { adyen.APIKey = confAdyenKey + "-rotated" })
	status, out = c.forward(c.request("adyen-request", c.tokenizeCard(card), proc.URL))
	body = c.answered("Adyen-style payment with a stale key", status, out, http.StatusUnauthorized)
	if x, _ := proc.Last(); x.Verdict != testprocessor.RefusedAuth {
		t.Errorf("the processor judged the stale key %s (%s), want %s", x.Verdict, x.Reason, testprocessor.RefusedAuth)
	}
	if got := confJSON(t, body, "errorType"); got != "security" {
		t.Errorf("errorType = %v, want security (Adyen's 401)", got)
	}
}
