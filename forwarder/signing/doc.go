// Package signing signs outgoing processor requests as the signed
// allowlist entry declares: Content-Digest (RFC 9530), the legacy Digest
// header (RFC 3230), HTTP Message Signatures (RFC 9421: hmac-sha256,
// ed25519, ecdsa-p256-sha256), the draft-cavage Signature header that
// Cybersource and others still require, and a generic HMAC over a
// canonical string made of named parts. One file per scheme.
//
// The allowlist decodes an entry's signing block into a Spec and calls
// Validate with the entry's methods. The forwarder builds a Signer per
// entry with New, giving it the Key from the credential the Spec names,
// and calls Sign after rendering, on the request exactly as it will be
// sent:
//
//	s, err := signing.New(spec, signing.SecretKey(secret)) // or PrivateKey(hsmSigner)
//	...
//	req.ContentLength = int64(len(body))
//	if err := s.Sign(req, body, time.Now()); err != nil {
//		// not sent: err is a *signing.Error (or *SpecError) with a stable code
//	}
//
// Sign covers what goes on the wire: the method, req.Host as the Host
// header, req.URL.RequestURI() as the request target, and body, whose
// length must be req.ContentLength. When a scheme covers Date and the
// request has none, Sign sets it (an HTTP-date from now). A request with
// a body is refused unless the signature covers it (content-digest,
// digest, or a body part): the body carries the card.
//
// Verifier checks signatures the way a processor would. The gateway never
// verifies; Verifier is for tests and for the conformance test processors
// that stand in for real ones.
//
// # What this package must never do
//
//   - put key material, a header value or body bytes into an error, a
//     String, a GoString, a log value or JSON: Key, Signer and Verifier
//     print masks, and error details name fields, never values;
//   - change the body, or sign bytes other than those that will be sent;
//   - leave a request half-signed: on error the request is unchanged;
//   - accept a Spec it does not fully understand: unknown schemes,
//     algorithms, components, parts and parameters are refused, never
//     ignored;
//   - compare a MAC or digest other than in constant time.
package signing
