package testprocessor

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
)

// WorldpayPath is the XML Direct endpoint.
const WorldpayPath = "/jsp/merchant/xml/paymentService.jsp"

// WorldpayDocType is the document type declaration Worldpay's XML Direct
// guide opens every order with. Worldpay's pages spell the public id
// both "WorldPay" and "Worldpay"; an entry must name the one its template
// uses, byte for byte.
const WorldpayDocType = `<!DOCTYPE paymentService PUBLIC "-//WorldPay//DTD WorldPay PaymentService v1//EN" "http://dtd.worldpay.com/paymentService_v1.dtd">`

// Worldpay is a Worldpay XML Direct-style processor: POST
// /jsp/merchant/xml/paymentService.jsp with a text/xml paymentService
// document (the XML declaration, the DOCTYPE, then
// <paymentService version="1.4" merchantCode="…"><submit><order
// orderCode="…">…<paymentDetails><VISA-SSL> (or ECMC-SSL, AMEX-SSL,
// CARD-SSL) with <cardNumber>, <expiryDate><date month="MM"
// year="YYYY"/></expiryDate>, <cardHolderName> and <cvc>), authenticated
// with HTTP Basic auth (the XML username and password).
//
// The processor reads XML as a careful one would: no internal DTD subset,
// no entity declarations, no processing instruction but the XML
// declaration, no external DTD fetched; the DOCTYPE must be DocType
// exactly. A wrong or missing Basic auth is refused with 401 and
// WWW-Authenticate; a merchantCode that is not the authenticated
// merchant's with Worldpay's <error code="4"> (security violation); a
// body that does not parse with <error code="2">; a document missing
// what an order needs with <error code="5">. A card that is not the
// expected one is REFUSED (lastEvent REFUSED, ISO8583ReturnCode). The
// AUTHORISED reply carries its own DOCTYPE, AuthorisationId/@id, a
// masked cardNumber and schemeResponse/transactionIdentifier (the
// network transaction id), as documented; acquirerReferenceNumber and the
// accountUpdater block are modelled.
type Worldpay struct {
	// Username and Password are the XML credentials Basic auth must
	// carry.
	Username, Password string
	// MerchantCode is the paymentService merchantCode the document must
	// name (always upper case at Worldpay).
	MerchantCode string
	// DocType is the DOCTYPE the document must carry; empty means
	// WorldpayDocType.
	DocType string
	// Card is the card the order must carry.
	Card Card
	// Answer selects the success body.
	Answer Answer
}

type wpService struct {
	XMLName      xml.Name `xml:"paymentService"`
	Version      string   `xml:"version,attr"`
	MerchantCode string   `xml:"merchantCode,attr"`
	Submit       *struct {
		Order *wpOrder `xml:"order"`
	} `xml:"submit"`
}

type wpOrder struct {
	OrderCode   string `xml:"orderCode,attr"`
	Description string `xml:"description"`
	Amount      *struct {
		Value        string `xml:"value,attr"`
		CurrencyCode string `xml:"currencyCode,attr"`
		Exponent     string `xml:"exponent,attr"`
	} `xml:"amount"`
	PaymentDetails *struct {
		Methods []wpCard `xml:",any"`
	} `xml:"paymentDetails"`
}

type wpCard struct {
	XMLName    xml.Name
	CardNumber *string `xml:"cardNumber"`
	ExpiryDate *struct {
		Date *struct {
			Month string `xml:"month,attr"`
			Year  string `xml:"year,attr"`
		} `xml:"date"`
	} `xml:"expiryDate"`
	CardHolderName *string `xml:"cardHolderName"`
	CVC            *string `xml:"cvc"`
}

// wpMethods are the card payment method elements this processor takes.
var wpMethods = map[string]bool{"VISA-SSL": true, "ECMC-SSL": true, "AMEX-SSL": true, "CARD-SSL": true}

func (p *Worldpay) docType() string {
	if p.DocType != "" {
		return p.DocType
	}
	return WorldpayDocType
}

// xmlReply is an XML answer under the processor's DOCTYPE.
func (p *Worldpay) xmlReply(v Verdict, reason, inner string) reply {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(p.docType() + "\n")
	b.WriteString(`<paymentService version="1.4" merchantCode="` + xmlEscape(p.MerchantCode) + `">` + "\n")
	b.WriteString("  <reply>\n" + inner + "  </reply>\n</paymentService>\n")
	return reply{verdict: v, reason: reason, status: http.StatusOK, contentType: "text/xml; charset=UTF-8", body: []byte(b.String())}
}

func (p *Worldpay) xmlError(v Verdict, code, message, reason string) reply {
	return p.xmlReply(v, reason, `    <error code="`+code+`"><![CDATA[`+message+`]]></error>`+"\n")
}

func (p *Worldpay) handle(r *http.Request, body []byte, now time.Time) reply {
	if r.URL.Path != WorldpayPath || r.Method != http.MethodPost {
		return reply{verdict: RefusedRequest, reason: "path or method", status: http.StatusNotFound, contentType: "text/html",
			body: []byte("<html><body><h1>404 Not Found</h1></body></html>\n")}
	}
	user, pass, ok := r.BasicAuth()
	if !ok || !equalSecret(user, p.Username) || !equalSecret(pass, p.Password) {
		return reply{verdict: RefusedAuth, reason: "basic auth missing or wrong", status: http.StatusUnauthorized,
			contentType: "text/html", header: http.Header{"Www-Authenticate": {`Basic realm="Worldpay XML"`}},
			body: []byte("<html><head><title>401 Unauthorized</title></head><body><h1>401 Unauthorized</h1></body></html>\n")}
	}
	switch mediaType(r.Header.Get("Content-Type")) {
	case "text/xml", "application/xml":
	default:
		return p.xmlError(RefusedRequest, "5", "Invalid content type: expected text/xml", "content type")
	}
	if reason := p.checkProlog(body); reason != "" {
		return p.xmlError(RefusedRequest, "2", "The XML document is not valid: "+reason, reason)
	}
	var doc wpService
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.Strict = true
	if err := dec.Decode(&doc); err != nil {
		return p.xmlError(RefusedRequest, "2", "The XML document could not be parsed", "xml does not parse")
	}
	if doc.MerchantCode != p.MerchantCode {
		return p.xmlError(RefusedAuth, "4", "Security violation", "merchantCode is not the authenticated merchant")
	}
	if doc.Version != "1.4" || doc.Submit == nil || doc.Submit.Order == nil {
		return p.xmlError(RefusedRequest, "5", "Invalid request: expected a submit/order", "no submit/order")
	}
	o := doc.Submit.Order
	if o.OrderCode == "" || o.Amount == nil || atoi(o.Amount.Value) <= 0 || len(o.Amount.CurrencyCode) != 3 || o.PaymentDetails == nil {
		return p.xmlError(RefusedRequest, "5", "Invalid request: orderCode, amount and paymentDetails are required", "order incomplete")
	}
	var card *wpCard
	for i := range o.PaymentDetails.Methods {
		m := &o.PaymentDetails.Methods[i]
		if wpMethods[m.XMLName.Local] {
			if card != nil {
				return p.xmlError(RefusedRequest, "5", "Invalid request: more than one payment method", "two payment methods")
			}
			card = m
		}
	}
	if card == nil || card.CardNumber == nil || card.ExpiryDate == nil || card.ExpiryDate.Date == nil {
		return p.xmlError(RefusedRequest, "5", "Invalid request: paymentDetails needs a card with cardNumber and expiryDate", "card element incomplete")
	}
	if reason := p.cardMismatch(card); reason != "" {
		return p.xmlReply(RefusedCard, reason, `    <orderStatus orderCode="`+xmlEscape(o.OrderCode)+`">
      <payment>
        <paymentMethod>`+wpMethod(p.Card.Number)+`</paymentMethod>
        <amount value="`+xmlEscape(o.Amount.Value)+`" currencyCode="`+xmlEscape(o.Amount.CurrencyCode)+`" exponent="2" debitCreditIndicator="credit"/>
        <lastEvent>REFUSED</lastEvent>
        <ISO8583ReturnCode code="14" description="INVALID CARD NUMBER"/>
      </payment>
    </orderStatus>
`)
	}
	return p.xmlReply(Accepted, "", p.authorised(o))
}

// checkProlog walks the document up to its root element: only the XML
// declaration, comments, white space and exactly the expected DOCTYPE
// may come first.
func (p *Worldpay) checkProlog(body []byte) string {
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.Strict = true
	doctypes := 0
	for first := true; ; first = false {
		tok, err := dec.RawToken()
		if errors.Is(err, io.EOF) {
			return "no root element"
		}
		if err != nil {
			return "xml does not parse"
		}
		switch t := tok.(type) {
		case xml.ProcInst:
			if t.Target != "xml" || !first {
				return "a processing instruction other than the XML declaration"
			}
		case xml.Directive:
			d := string(t)
			switch {
			case !strings.HasPrefix(d, "DOCTYPE"):
				return "a declaration other than DOCTYPE"
			case strings.Contains(d, "["):
				return "an internal DTD subset"
			case "<!"+d+">" != p.docType():
				return "the DOCTYPE is not the expected one"
			}
			doctypes++
		case xml.Comment:
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return "text before the root element"
			}
		case xml.StartElement:
			if doctypes != 1 {
				return "the DOCTYPE is missing"
			}
			if t.Name.Local != "paymentService" {
				return "the root element is not paymentService"
			}
			return ""
		default:
			return "unexpected content before the root element"
		}
	}
}

func (p *Worldpay) cardMismatch(c *wpCard) string {
	want := p.Card
	switch {
	case *c.CardNumber != want.Number:
		return "card number is not the expected card"
	case c.ExpiryDate.Date.Month != mm(want.ExpMonth):
		return "expiry month"
	case c.ExpiryDate.Date.Year != yyyy(want.ExpYear):
		return "expiry year"
	}
	name := ""
	if c.CardHolderName != nil {
		name = *c.CardHolderName
	}
	if reason := optional("cardHolderName", want.Name, name, c.CardHolderName != nil); reason != "" {
		return reason
	}
	cvc := ""
	if c.CVC != nil {
		cvc = *c.CVC
	}
	return optional("cvc", want.CVC, cvc, c.CVC != nil)
}

func (p *Worldpay) authorised(o *wpOrder) string {
	n := p.Card.Number
	masked := n
	if len(n) > 8 {
		masked = n[:4] + strings.Repeat("*", len(n)-8) + n[len(n)-4:]
	}
	var b strings.Builder
	b.WriteString(`    <orderStatus orderCode="` + xmlEscape(o.OrderCode) + `">
      <payment>
        <paymentMethod>` + wpMethod(n) + `</paymentMethod>
        <amount value="` + xmlEscape(o.Amount.Value) + `" currencyCode="` + xmlEscape(o.Amount.CurrencyCode) + `" exponent="2" debitCreditIndicator="credit"/>
        <lastEvent>AUTHORISED</lastEvent>
        <AuthorisationId id="` + AuthCode + `"/>
        <CVCResultCode description="C"/>
        <AVSResultCode description="E"/>
        <balance accountType="IN_PROCESS_AUTHORISED">
          <amount value="` + xmlEscape(o.Amount.Value) + `" currencyCode="` + xmlEscape(o.Amount.CurrencyCode) + `" exponent="2" debitCreditIndicator="credit"/>
        </balance>
        <cardNumber>` + masked + `</cardNumber>
        <riskScore value="0"/>
        <schemeResponse>
          <transactionIdentifier>` + NetworkTransactionID + `</transactionIdentifier>
        </schemeResponse>
        <acquirerReferenceNumber>` + ARN + `</acquirerReferenceNumber>
`)
	if p.Answer == AnswerAccountUpdated {
		// The expiry sits next to the number, as cardgate's returned_cards
		// rule wants it (siblings), not nested as Worldpay nests a
		// request's <expiryDate><date …/>.
		b.WriteString(`        <accountUpdater>
          <cardNumber>` + UpdatedNumber + `</cardNumber>
          <expiryMonth>` + mm(UpdatedExpMonth) + `</expiryMonth>
          <expiryYear>` + yyyy(UpdatedExpYear) + `</expiryYear>
        </accountUpdater>
`)
	}
	b.WriteString("      </payment>\n    </orderStatus>\n")
	return b.String()
}

func wpMethod(number string) string {
	switch brand(number) {
	case "visa":
		return "VISA-SSL"
	case "mastercard":
		return "ECMC-SSL"
	case "amex":
		return "AMEX-SSL"
	}
	return "CARD-SSL"
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
