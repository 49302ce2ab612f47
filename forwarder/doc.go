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
//     refused; policy refusals get a denied audit record;
//  7. a dry run stops here and returns a Preview, card fields masked;
//  8. detokenize (named cards concurrently, under one CardTimeout); a
//     template that uses a card's CVC reads it and deletes it
//     in one store operation (DetokenizeConsumingCVC), so that two
//     concurrent forwards never both send it, and it is gone whatever the
//     outcome: after a not_sent failure the caller collects it again;
//  9. render, into a pooled buffer that is zeroed after use;
//  10. the intent audit record, durable before anything is sent: if it
//     cannot be written the forward is refused (audit_unavailable); then,
//     with an Idempotency-Key, the key is marked "sending" so that no
//     other request can ever send under it;
//  11. resolve once, check every answer, dial a checked address, verify TLS
//     for the entry's host name; send, without following redirects (a 3xx
//     comes back with Location); a failure before any connection was made
//     (upstream_connect_failed, not_sent) is retried up to MaxAttempts with
//     jittered exponential backoff, nothing else ever is;
//  12. read at most the entry's byte cap, mask card numbers (and the CVC, if
//     the forward used it) in the body and header values, drop hop-by-hop
//     headers and cookies;
//  13. the result audit record (outcome, status, resolved IP, TLS version,
//     peer certificate digest, duration), whatever happened after the
//     intent, on a context the caller cannot cancel; then the answer is
//     stored under the Idempotency-Key (or the key released if nothing was
//     sent).
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
// # Destination safety
//
// The URL is parsed and normalized once (see parseTarget); the normalized
// host is what Match sees, what is dialed, what TLS verifies and what is
// logged. Each allowlist entry gets its own http.Transport whose only dialer
// resolves the entry's host (with its own deadline), refuses the host if
// any answer lies in an IANA special-purpose range that the entry's
// UnsafeAllowRanges does not open (see specialRanges; unspecified,
// multicast and broadcast can never be opened), and connects to the
// checked addresses in order. Proxies from the environment are ignored.
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
