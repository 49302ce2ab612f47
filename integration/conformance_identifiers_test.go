package integration

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cardgate/cardgate/internal/testprocessor"
)

// withoutResponseRules removes the entry's response block, which the
// documented Cybersource entry ends with.
func withoutResponseRules(t *testing.T) func(string) string {
	return func(e string) string {
		i := strings.Index(e, "    response:\n")
		if i < 0 {
			t.Fatal("cybersource-entry has no response block")
		}
		return e[:i]
	}
}

// TestConformanceIdentifiersNeedDeclaring: the same Cybersource answer
// through an entry that declares no response rules comes back with its
// network transaction id (Luhn-valid, 15 digits) and its 23-digit ARN
// masked, as card numbers. TestConformanceCybersource shows them kept by
// the documented entry.
func TestConformanceIdentifiersNeedDeclaring(t *testing.T) {
	c := newConfEnv(t)
	card := confCard(visa)
	proc := testprocessor.Start(t, c.procCA, confCybersource(card))
	c.addEntry("cybersource-entry", proc.URL, withoutResponseRules(t))
	c.startGateway()

	status, out := c.forward(c.request("cybersource-request", c.tokenizeCard(card), proc.URL))
	body := c.answered("Cybersource-style payment, no response rules", status, out, http.StatusCreated)
	accepted(t, "Cybersource-style payment, no response rules", proc)
	masked(t, body, testprocessor.NetworkTransactionID, "processorInformation", "networkTransactionId")
	masked(t, body, testprocessor.ARN, "acquirerReferenceNumber")
	if out["returned_cards"] != nil {
		t.Errorf("returned_cards = %v, want none without rules", out["returned_cards"])
	}
}

// TestConformanceIdentifiersNeedDeclaringXML: the Worldpay-style XML
// reply, which carries a DOCTYPE, through an entry without response
// rules is still scanned as XML: its network transaction id and ARN are
// masked, and an account updater's new card number is masked, not
// tokenized.
func TestConformanceIdentifiersNeedDeclaringXML(t *testing.T) {
	c := newConfEnv(t)
	card := confCard(visa)
	wp := confWorldpay(card)
	wp.Answer = testprocessor.AnswerAccountUpdated
	proc := testprocessor.Start(t, c.procCA, wp)
	c.addEntry("worldpay-entry", proc.URL, func(e string) string {
		i := strings.Index(e, "    response:\n")
		if i < 0 {
			t.Fatal("worldpay-entry has no response block")
		}
		return e[:i]
	})
	c.startGateway()

	status, out := c.forward(c.request("worldpay-request", c.tokenizeCard(card), proc.URL))
	body := c.answered("Worldpay-style order, no response rules", status, out, http.StatusOK)
	accepted(t, "Worldpay-style order, no response rules", proc)
	if !strings.Contains(body, testprocessor.WorldpayDocType) || !strings.Contains(body, "<lastEvent>AUTHORISED</lastEvent>") {
		t.Fatalf("the caller's answer is not the XML reply with its DOCTYPE:\n%s", body)
	}
	for what, v := range map[string]string{
		"network transaction id": testprocessor.NetworkTransactionID, "ARN": testprocessor.ARN, "updated card": testprocessor.UpdatedNumber,
	} {
		if strings.Contains(body, v) {
			t.Errorf("the XML answer holds the %s unmasked", what)
		}
	}
	if out["returned_cards"] != nil {
		t.Errorf("returned_cards = %v, want none without rules", out["returned_cards"])
	}
}

// TestConformanceAccountUpdater: a Cybersource-style answer carrying an
// account updater's new card (5555 5555 5555 4444, 03/2031) at the
// entry's returned_cards paths gives the caller a token for it, never the
// number; the caller then forwards that token, and the processor
// receives the new number and expiry.
func TestConformanceAccountUpdater(t *testing.T) {
	c := newConfEnv(t)
	card := confCard(visa)
	cybs := confCybersource(card)
	cybs.Answer = testprocessor.AnswerAccountUpdated
	proc := testprocessor.Start(t, c.procCA, cybs)
	c.addEntry("cybersource-entry", proc.URL, nil)
	c.startGateway()

	status, out := c.forward(c.request("cybersource-request", c.tokenizeCard(card), proc.URL))
	body := c.answered("payment answered by the account updater", status, out, http.StatusCreated)
	accepted(t, "payment answered by the account updater", proc)
	token, _ := confJSON(t, body, "accountUpdate", "card", "number").(string)
	returned := returnedCard(t, out, token)
	if returned["last4"] != "4444" || returned["brand"] == nil {
		t.Errorf("returned card %v, want last4 4444 and a brand", returned)
	}
	if strings.Contains(body, testprocessor.UpdatedNumber) {
		t.Error("the answer holds the new card number")
	}

	// The next payment, merchant-initiated on the updated card, uses the
	// new token; the processor now expects the new card, without CVC.
	proc.Update(func() {
		cybs.Answer = testprocessor.AnswerAuthorised
		cybs.Card = testprocessor.Card{Number: testprocessor.UpdatedNumber, ExpMonth: testprocessor.UpdatedExpMonth, ExpYear: testprocessor.UpdatedExpYear}
	})
	status, out = c.forward(c.request("cybersource-mit-request", token, proc.URL))
	c.answered("payment with the returned token", status, out, http.StatusCreated)
	accepted(t, "payment with the returned token", proc)
}

// TestConformanceRequestIdentifier: a merchant-initiated payment quotes
// the first payment's network transaction id (Luhn-valid, so card-like)
// in the one request field the entry declares, and is sent. The same id
// anywhere else is refused as literal_card_in_request before anything is
// sent.
func TestConformanceRequestIdentifier(t *testing.T) {
	c := newConfEnv(t)
	card := confCard(visa2)
	card.CVC, card.Name = "", ""
	cybs := confCybersource(card)
	cybs.PreviousTransactionID = testprocessor.NetworkTransactionID
	proc := testprocessor.Start(t, c.procCA, cybs)
	c.addEntry("cybersource-entry", proc.URL, nil)
	c.startGateway()
	tok := c.tokenizeCard(card)

	status, out := c.forward(c.request("cybersource-mit-request", tok, proc.URL))
	c.answered("merchant-initiated payment", status, out, http.StatusCreated)
	accepted(t, "merchant-initiated payment", proc)

	nti := testprocessor.NetworkTransactionID
	declared := `"previousTransactionId":"` + nti + `"`
	tests := []struct {
		name   string
		mutate func(req map[string]any)
	}{
		{"in another body field", func(req map[string]any) {
			req["body"] = strings.Replace(req["body"].(string), `"code":"order-1002"`, `"code":"`+nti+`"`, 1)
		}},
		{"in a sibling of the declared field", func(req map[string]any) {
			req["body"] = strings.Replace(req["body"].(string), declared, declared+`,"originalTransactionId":"`+nti+`"`, 1)
		}},
		{"in the declared field's name's twin at another depth", func(req map[string]any) {
			req["body"] = strings.Replace(req["body"].(string), `"commerceIndicator":"recurring"`, `"commerceIndicator":"recurring","previousTransactionId":"`+nti+`"`, 1)
		}},
		{"in a header", func(req map[string]any) {
			req["headers"].(map[string]any)["X-Reference"] = []string{nti}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The env's helpers fail the test they hold: this subtest.
			parent := c.t
			c.t = t
			defer func() { c.t = parent }()
			before := len(proc.Exchanges())
			req := c.request("cybersource-mit-request", tok, proc.URL)
			tt.mutate(req)
			status, out := c.forward(req)
			if status != http.StatusUnprocessableEntity || errCode(out) != "literal_card_in_request" {
				t.Errorf("forward = %d %v, want 422 literal_card_in_request", status, out)
			}
			if e, _ := out["error"].(map[string]any); e["outcome"] != "not_sent" {
				t.Errorf("outcome = %v, want not_sent", e["outcome"])
			}
			if n := len(proc.Exchanges()) - before; n != 0 {
				t.Errorf("the processor received %d requests, want none", n)
			}
		})
	}
}
