package integration

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"strings"
	"testing"

	"github.com/cardgate/cardgate/internal/testprocessor"
)

func confWorldpay(card testprocessor.Card) *testprocessor.Worldpay {
	return &testprocessor.Worldpay{Username: confWorldpayCode, Password: confWorldpayPass, MerchantCode: confWorldpayCode, Card: card}
}

// TestConformanceWorldpay runs docs/processors.md §4: a Worldpay-style XML
// order with the DOCTYPE the entry names, the name escaped for XML, Basic
// auth from the gateway's credential. The reply, which carries the DOCTYPE
// too, keeps the declared network transaction id and ARN; an
// account-updater reply's new card comes back as a token; a changed XML
// password is refused.
func TestConformanceWorldpay(t *testing.T) {
	c := newConfEnv(t)
	card := confCard(visa2)
	wp := confWorldpay(card)
	proc := testprocessor.Start(t, c.procCA, wp)
	c.addEntry("worldpay-entry", proc.URL, nil)
	c.startGateway()

	// The unescaped body the page shows is the request's body.
	req := c.request("worldpay-request", c.tokenizeCard(card), proc.URL)
	if req["body"] != confBlock(t, "worldpay-body") {
		t.Errorf("docs/processors.md: the worldpay-body block is not the worldpay-request's body")
	}

	status, out := c.forward(req)
	body := c.answered("Worldpay-style order", status, out, http.StatusOK)
	x := accepted(t, "Worldpay-style order", proc)
	if got, want := x.Header.Get("Authorization"), "Basic "+base64.StdEncoding.EncodeToString([]byte(confWorldpayCode+":"+confWorldpayPass)); got != want {
		t.Errorf("the processor got Authorization %.12s…, want Basic auth with the XML login", got)
	}
	if !bytes.Contains(x.Body, []byte(testprocessor.WorldpayDocType)) {
		t.Errorf("the processor's order does not carry the DOCTYPE")
	}
	// As docs/processors.md says.
	if !bytes.Contains(x.Body, []byte("<cardHolderName>Jane &quot;JJ&quot; Doe &amp; Co</cardHolderName>")) {
		t.Errorf("the processor's order does not carry the name escaped as documented")
	}

	var reply struct {
		Payment struct {
			LastEvent  string `xml:"lastEvent"`
			CardNumber string `xml:"cardNumber"`
			NTI        string `xml:"schemeResponse>transactionIdentifier"`
			ARN        string `xml:"acquirerReferenceNumber"`
		} `xml:"reply>orderStatus>payment"`
	}
	if err := xml.Unmarshal([]byte(body), &reply); err != nil {
		t.Fatalf("the caller's answer is not the XML reply: %v\n%s", err, body)
	}
	if !strings.Contains(body, testprocessor.WorldpayDocType) {
		t.Errorf("the reply lost its DOCTYPE:\n%s", body)
	}
	p := reply.Payment
	if p.LastEvent != "AUTHORISED" || p.NTI != testprocessor.NetworkTransactionID || p.ARN != testprocessor.ARN {
		t.Errorf("reply: lastEvent %s, transactionIdentifier %s, ARN %s; want AUTHORISED and both identifiers kept", p.LastEvent, p.NTI, p.ARN)
	}

	// An account-updater reply: the new number (a Mastercard test card)
	// comes back as a token, its expiry stored with it from the
	// attributes the entry declares.
	proc.Update(func() { wp.Answer = testprocessor.AnswerAccountUpdated })
	status, out = c.forward(c.request("worldpay-request", c.tokenizeCard(card), proc.URL))
	body = c.answered("Worldpay-style order answered by the account updater", status, out, http.StatusOK)
	accepted(t, "Worldpay-style order answered by the account updater", proc)
	var updated struct {
		Number string `xml:"reply>orderStatus>payment>accountUpdater>cardNumber"`
	}
	if err := xml.Unmarshal([]byte(body), &updated); err != nil {
		t.Fatalf("the caller's answer is not the XML reply: %v\n%s", err, body)
	}
	returned := returnedCard(t, out, updated.Number)
	if returned["last4"] != "4444" || returned["brand"] == nil {
		t.Errorf("returned card %v, want last4 4444 and a brand", returned)
	}

	// With the XML password changed on Worldpay's side, the gateway's
	// login is refused with Worldpay's 401.
	proc.Update(func() { wp.Answer, wp.Password = testprocessor.AnswerAuthorised, confWorldpayPass+"-changed" })
	status, out = c.forward(c.request("worldpay-request", c.tokenizeCard(card), proc.URL))
	c.answered("Worldpay-style order with a changed password", status, out, http.StatusUnauthorized)
	if x, _ := proc.Last(); x.Verdict != testprocessor.RefusedAuth {
		t.Errorf("the processor judged the old password %s (%s), want %s", x.Verdict, x.Reason, testprocessor.RefusedAuth)
	}
}
