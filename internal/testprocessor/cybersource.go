package testprocessor

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/cardgate/cardgate/forwarder/signing"
)

// CybersourcePath is the REST API's payments endpoint.
const CybersourcePath = "/pts/v2/payments"

// Cybersource is a Cybersource REST-style processor: POST /pts/v2/payments
// with a JSON body whose paymentInformation.card holds number,
// expirationMonth (two digits), expirationYear (four digits) and
// securityCode, authenticated with HTTP Signature as Cybersource documents
// it: the headers v-c-merchant-id, Date, Host, Digest ("SHA-256=" and the
// base64 SHA-256 of the body) and Signature (keyid, algorithm="HmacSHA256",
// headers="host date request-target digest v-c-merchant-id", signature),
// an HMAC-SHA256 keyed with the base64-decoded shared secret. Since its
// 2024 security update Cybersource wants request-target without the
// draft's parentheses; LegacyRequestTarget requires the older spelling.
//
// A missing or wrong signature, digest, key id or merchant id is refused
// with 401 {"response":{"rmsg":"Authentication Failed"}}; a malformed
// request with 400 and Cybersource's {"status":"INVALID_REQUEST",
// "reason":"MISSING_FIELD"|"INVALID_DATA","details":[…]}; a card that is
// not the expected one with 201 and status DECLINED, as Cybersource
// declines. The authorised answer (201, status AUTHORIZED) carries
// processorInformation.approvalCode and networkTransactionId, as
// documented; its top-level acquirerReferenceNumber and the
// account-updater block accountUpdate.card are modelled.
//
// With PreviousTransactionID set the payment is merchant-initiated: the
// body must carry that id in processingInformation.authorizationOptions.
// initiator.merchantInitiatedTransaction.previousTransactionId, as
// Cybersource documents for subsequent MIT payments.
type Cybersource struct {
	// MerchantID is the v-c-merchant-id a request must carry.
	MerchantID string
	// KeyID is the shared secret key's id (a UUID in the Business
	// Center).
	KeyID string
	// SharedSecret is the shared secret as the Business Center shows it:
	// base64.
	SharedSecret string
	// LegacyRequestTarget requires "(request-target)" instead of
	// "request-target".
	LegacyRequestTarget bool
	// PreviousTransactionID, when set, is the network transaction id a
	// merchant-initiated payment must reference.
	PreviousTransactionID string
	// Card is the card the payment must carry. Its Name is not checked:
	// Cybersource carries the name in orderInformation.billTo, split.
	Card Card
	// Answer selects the success body.
	Answer Answer
}

// Spec is how a client signs for this processor, for tests that sign
// their own requests with forwarder/signing. The processor does not use
// it: checkSignature follows Cybersource's guide independently.
func (p *Cybersource) Spec() signing.Spec {
	rt := "request-target"
	if p.LegacyRequestTarget {
		rt = "(request-target)"
	}
	return signing.Spec{
		Scheme:         signing.SchemeCavage,
		Credential:     "cybs-shared-secret",
		SecretEncoding: "base64",
		Cavage: &signing.CavageSpec{
			KeyID:     p.KeyID,
			Algorithm: "HmacSHA256",
			Headers:   []string{"host", "date", rt, "digest", "v-c-merchant-id"},
		},
	}
}

func cybsAuthFailed(reason string) reply {
	return reply{verdict: RefusedAuth, reason: reason, status: http.StatusUnauthorized, contentType: "application/json",
		body: []byte(`{"response":{"rmsg":"Authentication Failed"}}`)}
}

func cybsInvalid(now time.Time, why, field, reason string) reply {
	msg := "Declined - One or more fields in the request contains invalid data"
	if why == "MISSING_FIELD" {
		msg = "Declined - The request is missing one or more fields"
	}
	return reply{verdict: RefusedRequest, reason: reason, status: http.StatusBadRequest, contentType: "application/json",
		body: mustJSON(map[string]any{
			"submitTimeUtc": now.UTC().Format(time.RFC3339), "status": "INVALID_REQUEST", "reason": why, "message": msg,
			"details": []map[string]string{{"field": field, "reason": why}},
		})}
}

type cybsPayment struct {
	ClientReferenceInformation struct {
		Code string `json:"code"`
	} `json:"clientReferenceInformation"`
	ProcessingInformation struct {
		CommerceIndicator    string `json:"commerceIndicator"`
		Capture              bool   `json:"capture"`
		AuthorizationOptions struct {
			Initiator struct {
				Type                         string `json:"type"`
				CredentialStoredOnFile       bool   `json:"credentialStoredOnFile"`
				StoredCredentialUsed         bool   `json:"storedCredentialUsed"`
				MerchantInitiatedTransaction *struct {
					Reason                string `json:"reason"`
					PreviousTransactionID string `json:"previousTransactionId"`
				} `json:"merchantInitiatedTransaction"`
			} `json:"initiator"`
		} `json:"authorizationOptions"`
	} `json:"processingInformation"`
	PaymentInformation struct {
		Card *struct {
			Number          string  `json:"number"`
			ExpirationMonth string  `json:"expirationMonth"`
			ExpirationYear  string  `json:"expirationYear"`
			SecurityCode    *string `json:"securityCode"`
			Type            string  `json:"type"`
		} `json:"card"`
	} `json:"paymentInformation"`
	OrderInformation struct {
		AmountDetails struct {
			TotalAmount string `json:"totalAmount"`
			Currency    string `json:"currency"`
		} `json:"amountDetails"`
		BillTo map[string]string `json:"billTo"`
	} `json:"orderInformation"`
}

func (p *Cybersource) handle(r *http.Request, body []byte, now time.Time) reply {
	if r.URL.Path != CybersourcePath || r.Method != http.MethodPost {
		return reply{verdict: RefusedRequest, reason: "path or method", status: http.StatusNotFound, contentType: "application/json",
			body: []byte(`{"status":"NOT_FOUND","reason":"NOT_FOUND","message":"The requested resource does not exist"}`)}
	}
	// Authentication first, over the bytes received.
	if r.Header.Get("v-c-merchant-id") != p.MerchantID {
		return cybsAuthFailed("v-c-merchant-id missing or wrong")
	}
	if code := p.checkSignature(r, body, now); code != "" {
		return cybsAuthFailed("signature: " + code)
	}
	if mediaType(r.Header.Get("Content-Type")) != "application/json" {
		return cybsInvalid(now, "INVALID_DATA", "Content-Type", "content type")
	}
	var in cybsPayment
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&in); err != nil || dec.More() {
		return cybsInvalid(now, "INVALID_DATA", "body", "body is not the documented JSON")
	}
	card := in.PaymentInformation.Card
	switch {
	case card == nil || card.Number == "":
		return cybsInvalid(now, "MISSING_FIELD", "paymentInformation.card.number", "card number missing")
	case card.ExpirationMonth == "":
		return cybsInvalid(now, "MISSING_FIELD", "paymentInformation.card.expirationMonth", "expirationMonth missing")
	case card.ExpirationYear == "":
		return cybsInvalid(now, "MISSING_FIELD", "paymentInformation.card.expirationYear", "expirationYear missing")
	case len(card.ExpirationMonth) != 2 || atoi(card.ExpirationMonth) < 1 || atoi(card.ExpirationMonth) > 12:
		return cybsInvalid(now, "INVALID_DATA", "paymentInformation.card.expirationMonth", "expirationMonth format")
	case len(card.ExpirationYear) != 4 || atoi(card.ExpirationYear) < 0:
		return cybsInvalid(now, "INVALID_DATA", "paymentInformation.card.expirationYear", "expirationYear format")
	case in.OrderInformation.AmountDetails.TotalAmount == "" || len(in.OrderInformation.AmountDetails.Currency) != 3:
		return cybsInvalid(now, "MISSING_FIELD", "orderInformation.amountDetails.totalAmount", "amount or currency")
	}
	mit := in.ProcessingInformation.AuthorizationOptions.Initiator.MerchantInitiatedTransaction
	if p.PreviousTransactionID != "" {
		if mit == nil || mit.PreviousTransactionID == "" {
			return cybsInvalid(now, "MISSING_FIELD",
				"processingInformation.authorizationOptions.initiator.merchantInitiatedTransaction.previousTransactionId", "previousTransactionId missing")
		}
		if mit.PreviousTransactionID != p.PreviousTransactionID {
			return cybsInvalid(now, "INVALID_DATA",
				"processingInformation.authorizationOptions.initiator.merchantInitiatedTransaction.previousTransactionId", "previousTransactionId is not the expected id")
		}
	}
	reason, cvFailed := p.cardMismatch(card.Number, card.ExpirationMonth, card.ExpirationYear, card.SecurityCode)
	if reason != "" {
		code, msg := "INVALID_ACCOUNT", "Decline - Invalid account number"
		if cvFailed {
			code, msg = "CV_FAILED", "Decline - The authorization request was approved by the issuing bank but declined by CyberSource because it did not pass the CVN check."
		}
		return reply{verdict: RefusedCard, reason: reason, status: http.StatusCreated, contentType: "application/json",
			body: mustJSON(map[string]any{
				"id": "7371502296716587504005", "status": "DECLINED", "submitTimeUtc": now.UTC().Format(time.RFC3339),
				"errorInformation": map[string]string{"reason": code, "message": msg},
			})}
	}
	return reply{verdict: Accepted, status: http.StatusCreated, contentType: "application/json",
		body: p.answer(now, in.ClientReferenceInformation.Code, in.OrderInformation.AmountDetails.TotalAmount, in.OrderInformation.AmountDetails.Currency)}
}

func (p *Cybersource) cardMismatch(number, month, year string, cvc *string) (reason string, cvFailed bool) {
	c := p.Card
	switch {
	case number != c.Number:
		return "card number is not the expected card", false
	case month != mm(c.ExpMonth):
		return "expiry month", false
	case year != yyyy(c.ExpYear):
		return "expiry year", false
	}
	got := ""
	if cvc != nil {
		got = *cvc
	}
	if reason := optional("securityCode", c.CVC, got, cvc != nil); reason != "" {
		return reason, true
	}
	return "", false
}

func (p *Cybersource) answer(now time.Time, code, amount, currency string) []byte {
	const id = "7371502296716587504004"
	cardType := map[string]string{"visa": "001", "mastercard": "002", "amex": "003"}[brand(p.Card.Number)]
	out := map[string]any{
		"_links": map[string]any{
			"authReversal": map[string]string{"method": "POST", "href": "/pts/v2/payments/" + id + "/reversals"},
			"self":         map[string]string{"method": "GET", "href": "/pts/v2/payments/" + id},
			"capture":      map[string]string{"method": "POST", "href": "/pts/v2/payments/" + id + "/captures"},
		},
		"clientReferenceInformation": map[string]string{"code": code},
		"id":                         id,
		"orderInformation": map[string]any{
			"amountDetails": map[string]string{"authorizedAmount": amount, "currency": currency},
		},
		"paymentAccountInformation": map[string]any{"card": map[string]string{"type": cardType}},
		"paymentInformation":        map[string]any{"card": map[string]string{"type": cardType}},
		"processorInformation": map[string]any{
			"approvalCode":             AuthCode,
			"networkTransactionId":     NetworkTransactionID,
			"transactionId":            NetworkTransactionID,
			"retrievalReferenceNumber": "211620819194",
			"responseCode":             "00",
			"avs":                      map[string]string{"code": "Y", "codeRaw": "Y"},
		},
		"acquirerReferenceNumber": ARN, // modelled: see the type's comment
		"reconciliationId":        id,
		"status":                  "AUTHORIZED",
		"submitTimeUtc":           now.UTC().Format(time.RFC3339),
	}
	if p.Answer == AnswerAccountUpdated {
		out["accountUpdate"] = map[string]any{ // modelled
			"status": "NEW_ACCOUNT_NUMBER",
			"card": map[string]string{
				"number": UpdatedNumber, "expirationMonth": mm(UpdatedExpMonth), "expirationYear": yyyy(UpdatedExpYear),
			},
		}
	}
	return mustJSON(out)
}
