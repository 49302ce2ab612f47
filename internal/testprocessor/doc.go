// Package testprocessor runs stand-ins for real payment processors, for
// cardgate's conformance tests. Each one is modelled on a processor's
// public API documentation and speaks its shape: the path, the body format
// and its card fields, the authentication exactly as documented (Basic
// auth, an API key header, a draft-cavage Signature with Digest, RFC 9421
// HTTP Message Signatures with Content-Digest), the error body the
// processor answers when authentication or the request is wrong, and a
// realistic success body.
//
// One file per shape:
//
//	stripe.go       Stripe-style: form-encoded card[number], Basic auth with the secret key
//	adyen.go        Adyen Checkout-style: JSON paymentMethod, X-API-Key
//	cybersource.go  Cybersource REST-style: JSON, Digest + cavage Signature (HmacSHA256), v-c-merchant-id
//	worldpay.go     Worldpay XML Direct-style: paymentService order with its DOCTYPE, Basic auth
//	httpsig.go      a generic RFC 9421 signer: Content-Digest + ed25519 or hmac-sha256
//
// Every processor checks the card fields it received against the Card it
// was told to expect, so a test learns that the right card arrived in the
// right format, and every authorised answer carries the identifiers a
// real one does (ARN, a Luhn-valid network transaction id, an
// authorization code). AnswerAccountUpdated makes the answer also carry a
// new card number and expiry, as an account-updater answer does. Where a
// processor documents no field for an identifier or an updated card, the
// field is modelled and its doc comment says so.
//
// Signatures are checked by code written here from the processor's own
// documentation (cybersource_auth.go, httpsig_auth.go), never with
// cardgate's forwarder/signing, so that a gateway whose signer and
// verifier agree with each other but not with the processor fails the
// conformance tests. The covered components, key id and algorithm must be
// the processor's, not whatever the request claims. Tests may still sign
// their own requests with forwarder/signing (the Spec methods).
//
// Servers listen on 127.0.0.1 with real TLS, their certificate issued by
// a testpki CA the caller passes (the gateway's egress CA in the
// integration tests). Each records every request it received and how it
// judged it (Exchanges), so a test can tell "refused for its signature"
// from "refused for its card".
//
// This package is for tests only. It must never be imported by non-test
// code, and it never logs: a request body holds a card in plain text, and
// it stays in the Server's memory for the test to inspect.
package testprocessor
