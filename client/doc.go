// Package client is the Go client for a cardgate gateway: tokenize a card
// (POST /v1/cards), forward a request with a token's card filled in
// (POST /v1/forward, dry runs included), and read, update, re-collect the
// CVC of and delete a stored card (/v1/cards/{token}), over mutual TLS.
//
// It owns the caller's side of the wire format, the caller's TLS identity
// (PEM files, or an X.509-SVID source such as go-spiffe's
// workloadapi.X509Source, rotated without a restart), Idempotency-Key
// handling and the retry rules below. It must never log, never put card
// data or request bodies into its errors, and never import the gateway's
// packages or their dependencies (Redis, OpenTelemetry's SDK, PKCS#11,
// bbolt, Vault): a test runs `go list -deps` on it to keep it so.
//
//	c, err := client.New("https://cardgate.internal:8443",
//		client.WithPEMFiles("caller.crt", "caller.key", "ca.pem"))
//	...
//	tok, err := c.Tokenize(ctx, client.Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: 2030, CVC: "123"})
//	resp, err := c.Forward(ctx, &client.ForwardRequest{
//		Destination: "acme-charges",
//		URL:         "https://api.acme.example/v1/charges",
//		Method:      "POST",
//		Card:        tok.Token,
//		Headers:     http.Header{"Content-Type": {"application/json"}},
//		Body:        `{"number":"{{card.number}}","cvc":"{{card.cvc}}"}`,
//	})
//
// # Errors
//
// Every failure of a call is an *Error. A gateway's error answer carries its
// stable Code (see docs/errors.md); each code is a constant of type Code
// that works with errors.Is:
//
//	if errors.Is(err, client.ErrDestinationNotAllowed) { … }
//
// When no usable answer came (a connection error, a cut or unreadable
// answer), Code is empty and errors.Is(err, ErrNoAnswer) holds; the cause
// is kept for errors.Is and errors.As (context.DeadlineExceeded, a
// *tls.CertificateVerificationError, …).
//
// Error.Outcome says, for a forward, whether the card may have left the
// gateway, over every attempt of the call: NotSent only when no attempt can
// have sent it. An attempt without a usable answer whose request was
// written counts as SentNoResponse.
//
// # Retries
//
// A call is tried at most three times by default (WithRetries), with
// exponential backoff and full jitter, never waiting less than the
// gateway's Retry-After and never past the context's deadline. It is tried
// again only when that is safe:
//
//   - a forward whose answer says outcome not_sent with one of the codes
//     rate_limited, store_unavailable, key_backend_unavailable,
//     audit_unavailable, rate_limit_unavailable, killswitch_unavailable,
//     idempotency_unavailable or upstream_connect_failed: the gateway did
//     not send the card and a later try may succeed. Refusals (policy,
//     validation, dns_failure, upstream_tls_error, allowlist_expired, …)
//     would be answered the same way and are returned at once;
//   - a forward answered idempotency_in_progress: an earlier attempt of
//     this call is still running at the gateway, and asking again with the
//     same key gets its answer without sending anything;
//   - a forward without a usable answer, when it carried an
//     Idempotency-Key or was a dry run, or when its request was never
//     written: the gateway replays the first answer for the key, or sends
//     only if the first attempt never reached it;
//   - a tokenize answered store_unavailable, key_backend_unavailable or
//     rate_limited, or one whose request was never written;
//   - a card call (Card, UpdateCard, CollectCVC, DeleteCard) answered
//     rate_limited, rate_limit_unavailable, store_unavailable,
//     key_backend_unavailable or audit_unavailable (the gateway changed
//     nothing), or one whose request was never written; Card, which
//     changes nothing, also when its answer was lost.
//
// A forward whose template uses the CVC can be retried only until the
// gateway has read the card: a forward that reads the CVC consumes it,
// even when it then sends nothing. A retry answered cvc_not_available
// therefore ends the call with the earlier attempt's error, which says
// what went wrong.
//
// Nothing else is retried. In particular an answer that says
// sent_no_response (upstream_timeout, upstream_error, request_canceled,
// idempotency_outcome_unknown) is returned as it is: the processor may
// have acted on it, and only reconciliation with the processor can tell.
// Error.IdempotencyKey names the key, so a later call with the same key
// (ForwardRequest.IdempotencyKey) learns what the gateway recorded.
//
// # Idempotency keys
//
// Each Forward gets one random key (or the caller's own, from
// ForwardRequest.IdempotencyKey) sent on every attempt. A gateway on the
// single-node bolt store keeps no idempotency state and refuses the header
// (501 idempotency_not_supported); use WithoutIdempotencyKeys for it. Then
// a forward without a usable answer is retried only if its request was
// never written.
//
// # Card data
//
// Card, CardNumber and CVC print masked with fmt, slog, encoding/json and
// encoding.TextMarshaler: only the last four digits of the number show.
// The client keeps the encoded request only for the call and clears it
// after. Error messages are the gateway's card-free messages; a request
// body is never quoted.
package client
