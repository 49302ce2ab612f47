package integration

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cardgate/cardgate/internal/testprocessor"
)

// confCybersource is the documented Cybersource-style processor for card.
func confCybersource(card testprocessor.Card) *testprocessor.Cybersource {
	return &testprocessor.Cybersource{MerchantID: confCybsMerchantID, KeyID: confCybsKeyID, SharedSecret: confCybsSecret, Card: card}
}

// TestConformanceCybersource runs docs/processors.md §3: a
// Cybersource-style payment, JSON, signed by the gateway with Digest and
// a draft-cavage Signature (HmacSHA256 keyed with the base64-decoded
// shared secret, request-target in its 2024 spelling), the merchant id
// header from the caller. The answer's network transaction id and ARN
// are declared identifiers and come back unmasked. The same entry with
// secret_encoding: raw keys the HMAC with the base64 text, and the
// processor refuses it.
func TestConformanceCybersource(t *testing.T) {
	c := newConfEnv(t)
	card := confCard(visa2)
	proc := testprocessor.Start(t, c.procCA, confCybersource(card))
	c.addEntry("cybersource-entry", proc.URL, nil)
	// The same entry keying the HMAC with the base64 text itself, as
	// Cybersource's SDKs do not.
	undecoded := testprocessor.Start(t, c.procCA, confCybersource(card))
	c.addEntry("cybersource-entry", undecoded.URL, func(e string) string {
		for old, new := range map[string]string{"id: cybs-payments\n": "id: cybs-payments-undecoded\n", "secret_encoding: base64\n": "secret_encoding: raw\n"} {
			if !strings.Contains(e, old) {
				t.Fatalf("cybersource-entry has no %q", old)
			}
			e = strings.Replace(e, old, new, 1)
		}
		return e
	})
	c.startGateway()

	req := c.request("cybersource-request", c.tokenizeCard(card), undecoded.URL)
	req["destination"] = "cybs-payments-undecoded"
	status, out := c.forward(req)
	c.answered("Cybersource-style payment keyed with the undecoded secret", status, out, http.StatusUnauthorized)
	if x, _ := undecoded.Last(); x.Verdict != testprocessor.RefusedAuth || x.Reason != "signature: signature_invalid" {
		t.Errorf("the processor judged the undecoded secret's signature %s (%s), want %s (signature: signature_invalid)", x.Verdict, x.Reason, testprocessor.RefusedAuth)
	}

	status, out = c.forward(c.request("cybersource-request", c.tokenizeCard(card), proc.URL))
	body := c.answered("Cybersource-style payment", status, out, http.StatusCreated)
	x := accepted(t, "Cybersource-style payment", proc)
	sig := x.Header.Get("Signature")
	for _, want := range []string{`keyid="` + confCybsKeyID + `"`, `algorithm="HmacSHA256"`, `headers="host date request-target digest v-c-merchant-id"`} {
		if !strings.Contains(sig, want) {
			t.Errorf("Signature %q lacks %s", sig, want)
		}
	}
	if !strings.HasPrefix(x.Header.Get("Digest"), "SHA-256=") || x.Header.Get("Date") == "" {
		t.Errorf("the processor got Digest %q and Date %q, want both set by the gateway", x.Header.Get("Digest"), x.Header.Get("Date"))
	}

	if got := confJSON(t, body, "status"); got != "AUTHORIZED" {
		t.Errorf("status = %v, want AUTHORIZED", got)
	}
	kept(t, body, testprocessor.NetworkTransactionID, "processorInformation", "networkTransactionId")
	kept(t, body, testprocessor.NetworkTransactionID, "processorInformation", "transactionId")
	kept(t, body, testprocessor.ARN, "acquirerReferenceNumber")
	kept(t, body, testprocessor.AuthCode, "processorInformation", "approvalCode")
}

// TestConformanceCybersourceLegacySpelling: the entry chooses the spelling
// of request-target. A processor that still wants the draft's
// "(request-target)" is reached by an entry that says so, and refuses
// the 2024 spelling.
func TestConformanceCybersourceLegacySpelling(t *testing.T) {
	c := newConfEnv(t)
	card := confCard(visa)
	legacy := func() *testprocessor.Cybersource {
		p := confCybersource(card)
		p.LegacyRequestTarget = true
		return p
	}
	draft := testprocessor.Start(t, c.procCA, legacy())
	current := testprocessor.Start(t, c.procCA, legacy())
	c.addEntry("cybersource-entry", draft.URL, func(e string) string {
		return strings.Replace(e, "headers: [host, date, request-target,", `headers: [host, date, "(request-target)",`, 1)
	})
	c.addEntry("cybersource-entry", current.URL, func(e string) string {
		return strings.Replace(e, "id: cybs-payments\n", "id: cybs-payments-2024\n", 1)
	})
	c.startGateway()

	status, out := c.forward(c.request("cybersource-request", c.tokenizeCard(card), draft.URL))
	c.answered("(request-target) to a processor that wants it", status, out, http.StatusCreated)
	x := accepted(t, "(request-target) to a processor that wants it", draft)
	if sig := x.Header.Get("Signature"); !strings.Contains(sig, `headers="host date (request-target) digest v-c-merchant-id"`) {
		t.Errorf("Signature %q, want the draft's spelling", sig)
	}

	req := c.request("cybersource-request", c.tokenizeCard(card), current.URL)
	req["destination"] = "cybs-payments-2024"
	status, out = c.forward(req)
	c.answered("request-target to a processor that wants (request-target)", status, out, http.StatusUnauthorized)
	if x, _ := current.Last(); x.Verdict != testprocessor.RefusedAuth {
		t.Errorf("the processor judged the 2024 spelling %s (%s), want %s", x.Verdict, x.Reason, testprocessor.RefusedAuth)
	}
}
