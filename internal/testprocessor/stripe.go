package testprocessor

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// StripePath is where Stripe-style charges are created.
const StripePath = "/v1/charges"

// Stripe is a Stripe-style processor: POST /v1/charges with a
// form-encoded body (amount, currency, card[number], card[exp_month],
// card[exp_year], card[cvc], card[name]), authenticated with HTTP Basic
// auth whose username is the secret key and whose password is empty, as
// Stripe's API reference documents ("curl -u sk_test_…:"). Stripe also
// takes the key as a Bearer token; so does this processor.
//
// Errors have Stripe's shape, {"error":{"type":…,"code":…,"message":…,
// "param":…}}: 401 for a missing or wrong key, 400 invalid_request_error
// for a malformed request or an unknown parameter, and 402 card_error for
// a card that is not the expected one. The answer is a charge object;
// Stripe shows the network transaction id and authorization code under
// payment_method_details.card. Stripe shows an ARN only on refunds
// (destination_details.card.reference): its place on the charge here,
// payment_method_details.card.acquirer_reference_number, is modelled, and
// so is the account-updater block (Stripe updates saved cards without
// returning the number).
type Stripe struct {
	// SecretKey is the key a request must present: sk_test_….
	SecretKey string
	// Card is the card the charge must carry.
	Card Card
	// Answer selects the success body.
	Answer Answer
}

func stripeError(status int, typ, code, param, message string) reply {
	e := map[string]string{"type": typ, "message": message}
	if code != "" {
		e["code"] = code
	}
	if param != "" {
		e["param"] = param
	}
	h := http.Header{}
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="Stripe"`)
	}
	v := RefusedRequest
	switch status {
	case http.StatusUnauthorized:
		v = RefusedAuth
	case http.StatusPaymentRequired:
		v = RefusedCard
	}
	return reply{verdict: v, status: status, contentType: "application/json", header: h,
		body: mustJSON(map[string]any{"error": e})}
}

// stripeParams are the form keys a charge may carry besides metadata[…].
var stripeParams = map[string]bool{
	"amount": true, "currency": true, "description": true, "capture": true, "statement_descriptor": true,
	"card[number]": true, "card[exp_month]": true, "card[exp_year]": true, "card[cvc]": true, "card[name]": true,
}

func (p *Stripe) handle(r *http.Request, body []byte, _ time.Time) reply {
	if r.URL.Path != StripePath || r.Method != http.MethodPost {
		rp := stripeError(http.StatusNotFound, "invalid_request_error", "", "",
			"Unrecognized request URL ("+r.Method+": "+r.URL.Path+").")
		rp.reason = "path or method"
		return rp
	}
	// Authentication comes first: Stripe answers 401 before it reads the
	// body.
	key, how := "", ""
	if user, pass, ok := r.BasicAuth(); ok {
		key, how = user, "basic"
		if pass != "" {
			// Stripe documents no password; a client that sends one
			// has put something else there.
			key = ""
		}
	} else if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		key, how = tok, "bearer"
	}
	switch {
	case how == "":
		rp := stripeError(http.StatusUnauthorized, "invalid_request_error", "", "",
			"You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth or Basic auth with the key as the username.")
		rp.reason = "no API key"
		return rp
	case !equalSecret(key, p.SecretKey):
		// Stripe shows the key's prefix and last four characters.
		shown := "****"
		if i := strings.LastIndexByte(key, '_'); i > 0 && len(key) > 8 {
			shown = key[:i+1] + "****" + key[len(key)-4:]
		}
		rp := stripeError(http.StatusUnauthorized, "invalid_request_error", "", "", "Invalid API Key provided: "+shown)
		rp.reason = "wrong API key"
		return rp
	}
	if mediaType(r.Header.Get("Content-Type")) != "application/x-www-form-urlencoded" {
		rp := stripeError(http.StatusBadRequest, "invalid_request_error", "", "",
			"Invalid request: the body must be application/x-www-form-urlencoded.")
		rp.reason = "content type"
		return rp
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		rp := stripeError(http.StatusBadRequest, "invalid_request_error", "", "", "Invalid request: the body could not be parsed.")
		rp.reason = "form does not parse"
		return rp
	}
	for k, v := range form {
		if !stripeParams[k] && !(strings.HasPrefix(k, "metadata[") && strings.HasSuffix(k, "]")) {
			rp := stripeError(http.StatusBadRequest, "invalid_request_error", "parameter_unknown", k, "Received unknown parameter: "+k)
			rp.reason = "unknown parameter"
			return rp
		}
		if len(v) != 1 {
			rp := stripeError(http.StatusBadRequest, "invalid_request_error", "parameter_invalid", k, "Invalid value: "+k+" is given more than once.")
			rp.reason = "parameter repeated"
			return rp
		}
	}
	amount := atoi(form.Get("amount"))
	if amount <= 0 || len(form.Get("currency")) != 3 {
		rp := stripeError(http.StatusBadRequest, "invalid_request_error", "parameter_missing", "amount", "Missing required param: amount or currency.")
		rp.reason = "amount or currency"
		return rp
	}
	if form.Get("card[number]") == "" {
		rp := stripeError(http.StatusBadRequest, "invalid_request_error", "parameter_missing", "card[number]", "Missing required param: card[number].")
		rp.reason = "card[number] missing"
		return rp
	}
	if rp, bad := p.checkCard(form); bad {
		return rp
	}
	return reply{verdict: Accepted, status: http.StatusOK, contentType: "application/json", body: p.answer(amount, form.Get("currency"))}
}

// checkCard compares the card[…] fields with the expected card. Stripe
// takes the month with or without a leading zero and the year as two or
// four digits.
func (p *Stripe) checkCard(form url.Values) (reply, bool) {
	c := p.Card
	bad := func(code, param, msg, reason string) (reply, bool) {
		rp := stripeError(http.StatusPaymentRequired, "card_error", code, param, msg)
		rp.reason = reason
		return rp, true
	}
	if form.Get("card[number]") != c.Number {
		return bad("incorrect_number", "number", "Your card number is incorrect.", "card number is not the expected card")
	}
	if atoi(form.Get("card[exp_month]")) != c.ExpMonth {
		return bad("invalid_expiry_month", "exp_month", "Your card's expiration month is invalid.", "expiry month")
	}
	switch y := form.Get("card[exp_year]"); {
	case len(y) == 4 && y == yyyy(c.ExpYear), len(y) == 2 && y == yy(c.ExpYear):
	default:
		return bad("invalid_expiry_year", "exp_year", "Your card's expiration year is invalid.", "expiry year")
	}
	_, hasCVC := form["card[cvc]"]
	if reason := optional("card[cvc]", c.CVC, form.Get("card[cvc]"), hasCVC); reason != "" {
		return bad("incorrect_cvc", "cvc", "Your card's security code is incorrect.", reason)
	}
	_, hasName := form["card[name]"]
	if reason := optional("card[name]", c.Name, form.Get("card[name]"), hasName); reason != "" {
		return bad("invalid_request_error", "name", "The cardholder name is not the expected one.", reason)
	}
	return reply{}, false
}

func (p *Stripe) answer(amount int, currency string) []byte {
	card := map[string]any{
		"brand":                     brand(p.Card.Number),
		"last4":                     last4(p.Card.Number),
		"exp_month":                 p.Card.ExpMonth,
		"exp_year":                  p.Card.ExpYear,
		"funding":                   "credit",
		"network":                   brand(p.Card.Number),
		"network_transaction_id":    NetworkTransactionID,
		"authorization_code":        AuthCode,
		"acquirer_reference_number": ARN, // modelled: see the type's comment
		"checks":                    map[string]any{"cvc_check": cvcCheck(p.Card.CVC), "address_line1_check": nil, "address_postal_code_check": nil},
	}
	if p.Answer == AnswerAccountUpdated {
		card["account_updater"] = map[string]any{ // modelled
			"status": "card_replaced",
			"new_card": map[string]any{
				"number": UpdatedNumber, "exp_month": UpdatedExpMonth, "exp_year": UpdatedExpYear,
			},
		}
	}
	return mustJSON(map[string]any{
		"id":       "ch_3QcardgateTest0001",
		"object":   "charge",
		"amount":   amount,
		"currency": currency,
		"captured": true,
		"paid":     true,
		"status":   "succeeded",
		"livemode": false,
		"outcome": map[string]any{
			"network_status": "approved_by_network", "reason": nil, "risk_level": "normal",
			"seller_message": "Payment complete.", "type": "authorized",
		},
		"payment_method_details": map[string]any{"type": "card", "card": card},
	})
}

func cvcCheck(cvc string) string {
	if cvc == "" {
		return "unchecked"
	}
	return "pass"
}
