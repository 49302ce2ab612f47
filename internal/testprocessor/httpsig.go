package testprocessor

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"time"

	"github.com/cardgate/cardgate/forwarder/signing"
)

// HTTPSigPath is where the RFC 9421 processor takes authorizations.
const HTTPSigPath = "/v1/authorizations"

// httpSigComponents are the components the RFC 9421 processor requires
// its callers' signatures to cover.
var httpSigComponents = []string{"@method", "@authority", "@path", "content-digest", "content-type"}

// HTTPSig is a generic processor that authenticates with HTTP Message
// Signatures (RFC 9421) and Content-Digest (RFC 9530), as newer
// processor APIs do: the signature labelled sig1 must cover "@method",
// "@authority", "@path", "content-digest" and "content-type", carry
// created and the processor's keyid, and verify with the client's
// ed25519 or ECDSA P-256 public key or the shared hmac-sha256 secret; Content-Digest
// must be the body's sha-256.
//
// Its body is JSON: {"amount":{"value","currency"},"reference",
// "card":{"number","expiry" ("MM/YY"),"cvc","holder_name"}}. Errors are
// RFC 9457 problem details: 401 with Accept-Signature (RFC 9421 §5.1)
// saying what to sign when the signature or digest is missing or wrong;
// 400 for a malformed request; 402 for a card that is not the expected
// one. The authorised answer (201) carries authorization_code,
// network_transaction_id and acquirer_reference_number, and, for
// AnswerAccountUpdated, account_update.card.{number,expiry}. Every field
// name is this processor's own: it stands for the many processors with
// such an API rather than one of them.
type HTTPSig struct {
	// KeyID is the keyid the signature must name.
	KeyID string
	// Algorithm is signing.AlgEd25519, signing.AlgECDSAP256SHA256 or
	// signing.AlgHMACSHA256.
	Algorithm string
	// PublicKey verifies ed25519 signatures.
	PublicKey ed25519.PublicKey
	// ECDSAPublicKey verifies ecdsa-p256-sha256 signatures.
	ECDSAPublicKey *ecdsa.PublicKey
	// Secret is the hmac-sha256 shared secret (raw bytes).
	Secret []byte
	// Card is the card the authorization must carry.
	Card Card
	// Answer selects the success body.
	Answer Answer
}

// Spec is how a client signs for this processor, for tests that sign
// their own requests with forwarder/signing. The processor does not use
// it: checkSignature follows RFC 9421 independently.
func (p *HTTPSig) Spec() signing.Spec {
	return signing.Spec{
		Scheme:     signing.SchemeRFC9421,
		Credential: "httpsig-key",
		RFC9421: &signing.RFC9421Spec{
			Algorithm:  p.Algorithm,
			KeyID:      p.KeyID,
			Label:      "sig1",
			Components: append([]string(nil), httpSigComponents...),
			Created:    true,
		},
	}
}

func problem(v Verdict, status int, kind, title, detail, reason string) reply {
	return reply{verdict: v, reason: reason, status: status, contentType: "application/problem+json",
		body: mustJSON(map[string]any{
			"type": "https://errors.processor.test/" + kind, "title": title, "status": status, "detail": detail,
		})}
}

type httpSigAuthorization struct {
	Amount *struct {
		Value    int64  `json:"value"`
		Currency string `json:"currency"`
	} `json:"amount"`
	Reference string `json:"reference"`
	Card      *struct {
		Number     string  `json:"number"`
		Expiry     string  `json:"expiry"`
		CVC        *string `json:"cvc"`
		HolderName *string `json:"holder_name"`
	} `json:"card"`
}

func (p *HTTPSig) handle(r *http.Request, body []byte, now time.Time) reply {
	if r.URL.Path != HTTPSigPath || r.Method != http.MethodPost {
		return problem(RefusedRequest, http.StatusNotFound, "not-found", "Not Found", "no such resource", "path or method")
	}
	if code := p.checkSignature(r, body, now); code != "" {
		rp := problem(RefusedAuth, http.StatusUnauthorized, "signature", "Signature verification failed", code, "signature: "+code)
		rp.header = http.Header{"Accept-Signature": {`sig1=("@method" "@authority" "@path" "content-digest" "content-type");created;keyid="` + p.KeyID + `"`}}
		return rp
	}
	if mediaType(r.Header.Get("Content-Type")) != "application/json" {
		return problem(RefusedRequest, http.StatusUnsupportedMediaType, "media-type", "Unsupported Media Type", "send application/json", "content type")
	}
	var in httpSigAuthorization
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || dec.More() {
		return problem(RefusedRequest, http.StatusBadRequest, "malformed", "Bad Request", "the body is not an authorization", "body is not the documented JSON")
	}
	if in.Amount == nil || in.Amount.Value <= 0 || len(in.Amount.Currency) != 3 || in.Reference == "" || in.Card == nil || in.Card.Number == "" || in.Card.Expiry == "" {
		return problem(RefusedRequest, http.StatusBadRequest, "missing-field", "Bad Request", "amount, reference, card.number and card.expiry are required", "required field missing")
	}
	if e := in.Card.Expiry; len(e) != 5 || e[2] != '/' || atoi(e[:2]) < 1 || atoi(e[:2]) > 12 || atoi(e[3:]) < 0 {
		return problem(RefusedRequest, http.StatusBadRequest, "invalid-field", "Bad Request", "card.expiry must be MM/YY", "expiry format")
	}
	if reason := p.cardMismatch(in.Card.Number, in.Card.Expiry, in.Card.CVC, in.Card.HolderName); reason != "" {
		return problem(RefusedCard, http.StatusPaymentRequired, "card-declined", "Card declined", "the issuer declined the card", reason)
	}
	return reply{verdict: Accepted, status: http.StatusCreated, contentType: "application/json", body: p.answer(in.Reference)}
}

func (p *HTTPSig) cardMismatch(number, expiry string, cvc, name *string) string {
	c := p.Card
	switch {
	case number != c.Number:
		return "card number is not the expected card"
	case expiry != mm(c.ExpMonth)+"/"+yy(c.ExpYear):
		return "expiry"
	}
	got := ""
	if cvc != nil {
		got = *cvc
	}
	if reason := optional("cvc", c.CVC, got, cvc != nil); reason != "" {
		return reason
	}
	got = ""
	if name != nil {
		got = *name
	}
	return optional("holder_name", c.Name, got, name != nil)
}

func (p *HTTPSig) answer(reference string) []byte {
	out := map[string]any{
		"id":                        "auth_01JCARDGATETEST0001",
		"reference":                 reference,
		"status":                    "authorized",
		"authorization_code":        AuthCode,
		"network_transaction_id":    NetworkTransactionID,
		"acquirer_reference_number": ARN,
		"card": map[string]string{
			"brand": brand(p.Card.Number), "last4": last4(p.Card.Number), "expiry": mm(p.Card.ExpMonth) + "/" + yy(p.Card.ExpYear),
		},
	}
	if p.Answer == AnswerAccountUpdated {
		out["account_update"] = map[string]any{
			"reason": "card_replaced",
			"card":   map[string]string{"number": UpdatedNumber, "expiry": mm(UpdatedExpMonth) + "/" + yy(UpdatedExpYear)},
		}
	}
	return mustJSON(out)
}
