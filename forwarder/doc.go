// Package forwarder owns the forward path: it takes a caller's request
// naming a card token, a destination entry and a request template, asks the
// allowlist whether the caller may send those card fields there, fetches the
// card from the vault, writes the card into the request with escaping that
// fits the slot, sends it to an address it has checked, and returns the
// processor's answer with card numbers masked.
//
// The steps run in this order and each one fails closed, returning an
// *Error whose Outcome says whether anything may have left the gateway:
//
//  1. validate the request (method, URL, headers, body size, the
//     Idempotency-Key's syntax) and refuse a card number typed in by the
//     caller (literal_card_in_request, with a denied audit record) or a
//     placeholder in the URL, the query or a header the gateway sets;
//  2. canary: a canary token raises the alert (error log, metric, canary
//     audit record) and is refused at step 8 as token_not_found, exactly
//     like a token that does not exist;
//  3. budgets (Limiter): rate_limited with RetryAfter, or
//     rate_limit_unavailable when the budget store cannot be asked;
//  4. idempotency: a key already answered replays the stored, masked
//     answer and sends nothing; a key in use waits, then
//     idempotency_in_progress; the same key for another request is
//     idempotency_key_reused; otherwise the key is claimed;
//  5. kill switch (Switch): destination_disabled, or
//     killswitch_unavailable when its state is too old to trust;
//  6. allowlist: Current, then Match with caller, method, normalized URL and
//     fields; the parts of the decision the dial depends on are checked
//     again here (host, port, path prefix, method, caller, fields), and a
//     placeholder in a header the entry does not list in CardHeaders is
//     refused; policy refusals get a denied audit record; then every
//     {{secret.NAME}} must be granted by the entry's credentials list
//     and stand in a header its credential_headers lists
//     (credential_not_allowed, denied audit record), and on a signing
//     entry the caller may not send a header the signature sets
//     (invalid_request);
//  7. a dry run stops here and returns a Preview, card fields and
//     credentials masked ("[secret.NAME]");
//  8. resolve the host once (under the DNS timeout) and check every answer
//     against the special-purpose ranges: dns_failure or
//     destination_address_forbidden (with a denied audit record), both
//     not_sent, before the card is read or an intent recorded; a canary
//     token is refused here as token_not_found;
//  9. the credentials the forward uses are fetched
//     (credential_unavailable), before the card so that a missing one
//     costs no CVC;
//  10. detokenize (named cards concurrently, under one CardTimeout); a
//     template that uses a card's CVC reads it and deletes it
//     in one store operation (DetokenizeConsumingCVC), so that two
//     concurrent forwards never both send it, and it is gone whatever the
//     outcome: after a not_sent failure the caller collects it again;
//     a card-like number in a field other than the number that the
//     template uses (a name stored before tokenize refused them) refuses
//     the forward (invalid_name, with a denied audit record);
//  11. render, into a pooled buffer that is zeroed after use; then sign
//     the request exactly as it will be sent, when the entry declares
//     signing (signing_failed; a retry re-renders and signs again);
//  12. the intent audit record, durable before anything is sent: if it
//     cannot be written the forward is refused (audit_unavailable); then,
//     with an Idempotency-Key, the key is marked "sending" so that no
//     other request can ever send under it;
//  13. dial one of the addresses checked in step 8 (or reuse a pooled
//     connection of the same route, made to an address checked then),
//     verify TLS for the entry's host name; send, without following
//     redirects (a 3xx comes back with Location); a failure before any
//     connection was made (upstream_connect_failed, not_sent) is retried
//     up to MaxAttempts with jittered exponential backoff, to the same
//     checked addresses, nothing else ever is;
//  14. read at most the entry's byte cap, mask card numbers (and the CVC, if
//     the forward used it, and every spelling of every credential it
//     used) in the body and header values, keeping only the identifier
//     fields the entry declares and tokenizing its returned cards, drop
//     hop-by-hop headers and cookies;
//  15. the result audit record (outcome, status, resolved IP, TLS version,
//     peer certificate digest, duration), whatever happened after the
//     intent, on a context the caller cannot cancel; it is written before
//     the answer and fsynced behind it (audit.Log.AppendWritten), except
//     under an Idempotency-Key, where it is fsynced first; then the answer
//     is stored under the key (or the key released if nothing was sent).
//
// # Slots and escaping
//
// Placeholders are {{card.number}}, {{card.cvc}}, {{card.exp_month}}
// ("01"–"12"), {{card.exp_year}} (four digits) and {{card.name}}; spaces
// inside the braces are allowed. A request of several named cards writes
// {{cards.NAME.FIELD}} (cards.go); one optional filter formats an expiry
// ({{card.exp_year | yy}}, {{card.exp | MM/YY}}: template_filters.go); the
// grammar and how a new namespace slots in are in template_refs.go. The
// body may hold placeholders when its Content-Type is JSON
// (application/json or application/*+json: the placeholder must sit inside
// a JSON string and the value is JSON-escaped; only exp_month and exp_year
// may stand bare, as numbers), application/x-www-form-urlencoded (the
// value is query-escaped) or UTF-8 XML (application/xml, text/xml,
// application/*+xml: element text and quoted attribute values only, the
// value XML-escaped; no entity declarations, internal subsets or
// processing instructions, and a DOCTYPE only as the entry names it:
// template_xml.go). Any other body type with a placeholder is refused,
// since there is no escaping rule for it. Headers named in the entry's
// CardHeaders may hold placeholders; a rendered header value with a
// control character is refused.
//
// {{secret.NAME}} and {{secret.NAME | base64}} write a gateway-held
// credential into the value of a header the entry lists in
// CredentialHeaders (an Authorization or X-Api-Key, never an
// Idempotency-Key a processor shows); they are refused in any other
// header, the body, the URL and the query, and the entry must grant NAME
// in its credentials list.
//
// # Destination safety
//
// The URL is parsed and normalized once (see parseTarget); the normalized
// host is what Match sees, what is dialed, what TLS verifies and what is
// logged. Once the entry matched, the forward resolves the host once (with
// its own deadline) and refuses it if any answer lies in an IANA
// special-purpose range that the entry's UnsafeAllowRanges does not open
// (see specialRanges; unspecified, multicast and broadcast can never be
// opened), all before the card is read. Each allowlist entry gets its own
// http.Transport whose only dialer never resolves a name: it connects, in
// order, to the addresses the forward checked, which reach it in the
// request's context, and refuses to dial without them. Proxies from the
// environment are ignored.
//
// # Errors, logs and spans
//
// An *Error carries a code, a message and a cause class (Class: tls, dns,
// timeout, malformed_response, eof, …; see the Class constants). Its
// Error() is "forwarder: CODE: MESSAGE" and nothing else. The internal
// cause is kept for errors.Is and errors.As only: its text can quote what
// a processor sent (net/http quotes a malformed status or header line,
// which a processor may fill with the request's CVC, expiry and name) or
// what a caller sent, so it never reaches the log line, a span, an audit
// record or the caller. The class is derived from the cause's type and
// from how far the exchange got (a failure after the first response byte
// that is not a network failure is malformed_response), never from its
// text.
//
// # What this package must never do
//
//   - send to an address it has not checked, or to a host and port other
//     than the matched entry's;
//   - follow a redirect;
//   - skip or weaken TLS certificate verification: no option for it exists;
//   - let card data (number, CVC, name, the rendered body or header values)
//     reach a log line, an error message, a span, a metric or a panic;
//   - let the HTTP transport replay a request whose body it began to send,
//     or retry anything that may have been sent;
//   - send a card without a durable intent record in the audit log;
//   - send twice under one Idempotency-Key, or store an answer under it
//     that was not already masked.
package forwarder
