package testprocessor

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	wpUser     = "CARDGATECONF"
	wpPassword = "xml-password-0001"
	wpMerchant = "CARDGATECONF"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wpReply is the part of a reply the tests read.
type wpReply struct {
	XMLName xml.Name `xml:"paymentService"`
	Reply   struct {
		Error *struct {
			Code string `xml:"code,attr"`
		} `xml:"error"`
		OrderStatus *struct {
			OrderCode string `xml:"orderCode,attr"`
			Payment   struct {
				LastEvent       string `xml:"lastEvent"`
				AuthorisationID struct {
					ID string `xml:"id,attr"`
				} `xml:"AuthorisationId"`
				CardNumber     string `xml:"cardNumber"`
				SchemeResponse struct {
					TransactionIdentifier string `xml:"transactionIdentifier"`
				} `xml:"schemeResponse"`
				ARN            string `xml:"acquirerReferenceNumber"`
				AccountUpdater *struct {
					CardNumber  string `xml:"cardNumber"`
					ExpiryMonth string `xml:"expiryMonth"`
					ExpiryYear  string `xml:"expiryYear"`
				} `xml:"accountUpdater"`
			} `xml:"payment"`
		} `xml:"orderStatus"`
	} `xml:"reply"`
}

func parseReply(t *testing.T, b []byte) wpReply {
	t.Helper()
	var r wpReply
	if err := xml.NewDecoder(bytes.NewReader(b)).Decode(&r); err != nil {
		t.Fatalf("reply does not parse: %v\n%s", err, b)
	}
	return r
}

func TestWorldpay(t *testing.T) {
	s := Start(t, newCA(t), &Worldpay{Username: wpUser, Password: wpPassword, MerchantCode: wpMerchant, Card: testCard})
	tests := []struct {
		name      string
		fixture   string
		user      string
		pass      string
		ctype     string
		status    int
		verdict   Verdict
		errorCode string // <error code>, for refusals answered in XML
		lastEvent string // for orders answered with an orderStatus
	}{
		{"authorised", "worldpay-order.xml", wpUser, wpPassword, "text/xml", 200, Accepted, "", "AUTHORISED"},
		{"authorised, VISA-SSL", "worldpay-order-visa-ssl.xml", wpUser, wpPassword, "text/xml; charset=UTF-8", 200, Accepted, "", "AUTHORISED"},
		{"no basic auth", "worldpay-order.xml", "", "", "text/xml", 401, RefusedAuth, "", ""},
		{"wrong password", "worldpay-order.xml", wpUser, "guess", "text/xml", 401, RefusedAuth, "", ""},
		{"another merchant's code", "worldpay-other-merchant.xml", wpUser, wpPassword, "text/xml", 200, RefusedAuth, "4", ""},
		{"json content type", "worldpay-order.xml", wpUser, wpPassword, "application/json", 200, RefusedRequest, "5", ""},
		{"no DOCTYPE", "worldpay-no-doctype.xml", wpUser, wpPassword, "text/xml", 200, RefusedRequest, "2", ""},
		{"another DOCTYPE spelling", "worldpay-other-doctype.xml", wpUser, wpPassword, "text/xml", 200, RefusedRequest, "2", ""},
		{"internal subset with an entity", "worldpay-internal-subset.xml", wpUser, wpPassword, "text/xml", 200, RefusedRequest, "2", ""},
		{"undeclared entity", "worldpay-undeclared-entity.xml", wpUser, wpPassword, "text/xml", 200, RefusedRequest, "2", ""},
		{"processing instruction", "worldpay-processing-instruction.xml", wpUser, wpPassword, "text/xml", 200, RefusedRequest, "2", ""},
		{"name not escaped", "worldpay-name-unescaped.xml", wpUser, wpPassword, "text/xml", 200, RefusedRequest, "2", ""},
		{"month not zero-padded", "worldpay-month-unpadded.xml", wpUser, wpPassword, "text/xml", 200, RefusedCard, "", "REFUSED"},
		{"another card", "worldpay-other-card.xml", wpUser, wpPassword, "text/xml", 200, RefusedCard, "", "REFUSED"},
		{"no cvc", "worldpay-no-cvc.xml", wpUser, wpPassword, "text/xml", 200, RefusedCard, "", "REFUSED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newRequest(t, http.MethodPost, s.URL+WorldpayPath, tt.ctype, readFixture(t, tt.fixture))
			if tt.user != "" {
				req.SetBasicAuth(tt.user, tt.pass)
			}
			got := do(t, s, req)
			check(t, got, tt.status, tt.verdict)
			if tt.status == 401 {
				if got.header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				return
			}
			if !bytes.Contains(got.body, []byte(WorldpayDocType)) {
				t.Errorf("reply does not carry the DOCTYPE:\n%s", got.body)
			}
			r := parseReply(t, got.body)
			if tt.errorCode != "" {
				if r.Reply.Error == nil || r.Reply.Error.Code != tt.errorCode {
					t.Errorf("reply error = %+v, want code %s\n%s", r.Reply.Error, tt.errorCode, got.body)
				}
				return
			}
			if r.Reply.OrderStatus == nil {
				t.Fatalf("reply has no orderStatus:\n%s", got.body)
			}
			p := r.Reply.OrderStatus.Payment
			if p.LastEvent != tt.lastEvent {
				t.Errorf("lastEvent = %s, want %s", p.LastEvent, tt.lastEvent)
			}
			if tt.verdict != Accepted {
				return
			}
			want := []string{"order-0001", AuthCode, NetworkTransactionID, ARN, "4242********4242"}
			gotIDs := []string{r.Reply.OrderStatus.OrderCode, p.AuthorisationID.ID, p.SchemeResponse.TransactionIdentifier, p.ARN, p.CardNumber}
			if d := cmp.Diff(want, gotIDs); d != "" {
				t.Errorf("reply identifiers (-want +got):\n%s", d)
			}
			if p.AccountUpdater != nil {
				t.Error("a plain authorisation carries an accountUpdater block")
			}
		})
	}
}

func TestWorldpayDocTypeIsConfigurable(t *testing.T) {
	other := strings.Replace(WorldpayDocType, "WorldPay", "Worldpay", 2)
	s := Start(t, newCA(t), &Worldpay{Username: wpUser, Password: wpPassword, MerchantCode: wpMerchant, DocType: other, Card: testCard})
	for _, tt := range []struct {
		fixture string
		verdict Verdict
	}{
		{"worldpay-other-doctype.xml", Accepted},
		{"worldpay-order.xml", RefusedRequest},
	} {
		t.Run(tt.fixture, func(t *testing.T) {
			req := newRequest(t, http.MethodPost, s.URL+WorldpayPath, "text/xml", readFixture(t, tt.fixture))
			req.SetBasicAuth(wpUser, wpPassword)
			if got := do(t, s, req); got.x.Verdict != tt.verdict {
				t.Errorf("verdict = %s (%s), want %s", got.x.Verdict, got.x.Reason, tt.verdict)
			}
		})
	}
}

func TestWorldpayAccountUpdated(t *testing.T) {
	s := Start(t, newCA(t), &Worldpay{Username: wpUser, Password: wpPassword, MerchantCode: wpMerchant, Card: testCard, Answer: AnswerAccountUpdated})
	req := newRequest(t, http.MethodPost, s.URL+WorldpayPath, "text/xml", readFixture(t, "worldpay-order.xml"))
	req.SetBasicAuth(wpUser, wpPassword)
	got := do(t, s, req)
	check(t, got, 200, Accepted)
	au := parseReply(t, got.body).Reply.OrderStatus.Payment.AccountUpdater
	if au == nil {
		t.Fatalf("reply has no accountUpdater:\n%s", got.body)
	}
	if d := cmp.Diff([]string{UpdatedNumber, "03", "2031"}, []string{au.CardNumber, au.ExpiryMonth, au.ExpiryYear}); d != "" {
		t.Errorf("accountUpdater (-want +got):\n%s", d)
	}
}
