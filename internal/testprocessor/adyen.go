package testprocessor

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"
)

// AdyenPath is the Checkout API's payments endpoint.
const AdyenPath = "/v71/payments"

// Adyen is an Adyen Checkout-style processor: POST /v71/payments with a
// JSON body whose paymentMethod is {"type":"scheme", "number",
// "expiryMonth" (two digits, zero-padded), "expiryYear" (four digits),
// "cvc", "holderName"} — the unencrypted card fields Adyen documents for
// PCI-compliant merchants — authenticated with the X-API-Key header.
//
// Errors have Adyen's shape, {"status","errorCode","message","errorType"}:
// 401 errorCode 000 "HTTP Status Response - Unauthorized" (errorType
// security) for a missing or wrong key, 403 errorCode 901 for another
// merchant account, 422 validation errors for a malformed request. A card
// that is not the expected one is refused as Adyen refuses a payment: 200
// with resultCode Refused. The authorised answer carries authCode and
// additionalData with networkTxReference (Adyen's network transaction id)
// and acquirerReference; the account-updater variant carries
// realtimeAccountUpdaterStatus CardChanged, cardSummary and expiryDate as
// Adyen documents, plus the new number under the dotted key
// "accountUpdater.newCardNumber", which is modelled (Adyen delivers full
// numbers in batch files instead).
type Adyen struct {
	// APIKey is the key a request must present in X-API-Key.
	APIKey string
	// MerchantAccount is the merchantAccount the body must name.
	MerchantAccount string
	// Card is the card the payment must carry.
	Card Card
	// Answer selects the success body.
	Answer Answer
}

func adyenError(status int, code, message, typ string) reply {
	v := RefusedRequest
	if typ == "security" {
		v = RefusedAuth
	}
	return reply{verdict: v, status: status, contentType: "application/json;charset=UTF-8",
		body: mustJSON(map[string]any{"status": status, "errorCode": code, "message": message, "errorType": typ})}
}

type adyenPayment struct {
	Amount *struct {
		Currency string `json:"currency"`
		Value    int64  `json:"value"`
	} `json:"amount"`
	Reference       string         `json:"reference"`
	MerchantAccount string         `json:"merchantAccount"`
	PaymentMethod   map[string]any `json:"paymentMethod"`
	// Other documented fields pass through unchecked.
	ShopperInteraction       string         `json:"shopperInteraction"`
	RecurringProcessingModel string         `json:"recurringProcessingModel"`
	ShopperReference         string         `json:"shopperReference"`
	ReturnURL                string         `json:"returnUrl"`
	AdditionalData           map[string]any `json:"additionalData"`
	Channel                  string         `json:"channel"`
}

func (p *Adyen) handle(r *http.Request, body []byte, _ time.Time) reply {
	if r.URL.Path != AdyenPath || r.Method != http.MethodPost {
		rp := adyenError(http.StatusNotFound, "000", "HTTP Status Response - Not Found", "validation")
		rp.reason = "path or method"
		return rp
	}
	if !equalSecret(r.Header.Get("X-API-Key"), p.APIKey) {
		rp := adyenError(http.StatusUnauthorized, "000", "HTTP Status Response - Unauthorized", "security")
		rp.reason = "X-API-Key missing or wrong"
		return rp
	}
	if mediaType(r.Header.Get("Content-Type")) != "application/json" {
		rp := adyenError(http.StatusUnsupportedMediaType, "000", "HTTP Status Response - Unsupported Media Type", "validation")
		rp.reason = "content type"
		return rp
	}
	var in adyenPayment
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || dec.More() {
		rp := adyenError(http.StatusBadRequest, "702", "Structure of PaymentRequest contains the following unknown fields or is not valid JSON", "validation")
		rp.reason = "body is not the documented JSON"
		return rp
	}
	if in.MerchantAccount != p.MerchantAccount {
		rp := adyenError(http.StatusForbidden, "901", "Invalid Merchant Account", "security")
		rp.reason = "merchant account"
		return rp
	}
	if in.Amount == nil || in.Amount.Value <= 0 || len(in.Amount.Currency) != 3 {
		rp := adyenError(http.StatusUnprocessableEntity, "100", "Required field 'amount' is not provided.", "validation")
		rp.reason = "amount"
		return rp
	}
	if in.Reference == "" {
		rp := adyenError(http.StatusUnprocessableEntity, "130", "Required field 'reference' is not provided.", "validation")
		rp.reason = "reference"
		return rp
	}
	pm := map[string]string{}
	for k, v := range in.PaymentMethod {
		s, ok := v.(string)
		if !ok {
			rp := adyenError(http.StatusUnprocessableEntity, "702", "paymentMethod."+k+" must be a string", "validation")
			rp.reason = "paymentMethod field type"
			return rp
		}
		pm[k] = s
	}
	if pm["type"] != "scheme" {
		rp := adyenError(http.StatusUnprocessableEntity, "702", "paymentMethod.type must be scheme for card payments", "validation")
		rp.reason = "paymentMethod.type"
		return rp
	}
	for _, k := range []string{"number", "expiryMonth", "expiryYear"} {
		if pm[k] == "" {
			rp := adyenError(http.StatusUnprocessableEntity, "137", "Required field 'paymentMethod."+k+"' is not provided.", "validation")
			rp.reason = "paymentMethod." + k + " missing"
			return rp
		}
	}
	// Adyen documents the formats: month two digits zero-padded, year
	// four digits.
	if len(pm["expiryMonth"]) != 2 || atoi(pm["expiryMonth"]) < 1 || atoi(pm["expiryMonth"]) > 12 {
		rp := adyenError(http.StatusUnprocessableEntity, "129", "Expiry Date Invalid: Expiry month should be between 1 and 12 inclusive (two digits)", "validation")
		rp.reason = "expiryMonth format"
		return rp
	}
	if len(pm["expiryYear"]) != 4 || atoi(pm["expiryYear"]) < 0 {
		rp := adyenError(http.StatusUnprocessableEntity, "129", "Expiry Date Invalid: Expiry year should be a 4 digit number greater than 2000", "validation")
		rp.reason = "expiryYear format"
		return rp
	}
	if reason := p.cardMismatch(pm); reason != "" {
		return reply{verdict: RefusedCard, reason: reason, status: http.StatusOK, contentType: "application/json;charset=UTF-8",
			body: mustJSON(map[string]any{
				"pspReference": "K8QDJ5SWRZNKGK82", "resultCode": "Refused",
				"refusalReason": "Refused", "refusalReasonCode": "2", "merchantReference": in.Reference,
			})}
	}
	return reply{verdict: Accepted, status: http.StatusOK, contentType: "application/json;charset=UTF-8", body: p.answer(in.Reference, in.Amount.Currency, in.Amount.Value)}
}

func (p *Adyen) cardMismatch(pm map[string]string) string {
	c := p.Card
	switch {
	case pm["number"] != c.Number:
		return "card number is not the expected card"
	case pm["expiryMonth"] != mm(c.ExpMonth):
		return "expiry month"
	case pm["expiryYear"] != yyyy(c.ExpYear):
		return "expiry year"
	}
	cvc, hasCVC := pm["cvc"]
	if reason := optional("cvc", c.CVC, cvc, hasCVC); reason != "" {
		return reason
	}
	name, hasName := pm["holderName"]
	return optional("holderName", c.Name, name, hasName)
}

func (p *Adyen) answer(reference, currency string, value int64) []byte {
	add := map[string]any{
		"authCode":           AuthCode,
		"networkTxReference": NetworkTransactionID,
		"acquirerReference":  ARN,
		"cardSummary":        last4(p.Card.Number),
		"expiryDate":         itoa(p.Card.ExpMonth) + "/" + yyyy(p.Card.ExpYear),
		"paymentMethod":      brand(p.Card.Number),
		"cardPaymentMethod":  brand(p.Card.Number),
	}
	if p.Answer == AnswerAccountUpdated {
		add["realtimeAccountUpdaterStatus"] = "CardChanged"
		add["cardSummary"] = last4(UpdatedNumber)
		add["expiryDate"] = itoa(UpdatedExpMonth) + "/" + yyyy(UpdatedExpYear)
		add["accountUpdater.newCardNumber"] = UpdatedNumber // modelled
	}
	return mustJSON(map[string]any{
		"additionalData":    add,
		"pspReference":      "NC6HT9CRT65ZGN82",
		"resultCode":        "Authorised",
		"merchantReference": reference,
		"amount":            map[string]any{"currency": currency, "value": value},
		"paymentMethod":     map[string]any{"brand": brand(p.Card.Number), "type": "scheme"},
	})
}
