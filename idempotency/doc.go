// Package idempotency owns Idempotency-Key claims for forwards: who holds a
// key, at which stage its request is, and the answer it produced, kept in
// Redis so that every replica sharing the Redis sees the same claims.
//
// A key is scoped to the caller (the Redis key is a digest of the caller
// identity and the caller's key) and bound to a fingerprint of the request
// that first used it: the same key with a different request is refused
// (idempotency_key_reused).
//
// # Life of a key
//
//	Claim        → pending, stage "claimed", lease running
//	MarkSending  → stage "sending": from now on the key is never handed out again
//	Complete     → done, with the stored answer, kept for TTL (24h by default)
//	Release      → deleted: nothing was sent, a retry may send
//
// A second request with the key waits (up to Wait) while the first is
// pending, then gets the stored answer, or idempotency_in_progress. If the
// holder vanished (its lease ran out) before it marked the key "sending",
// nothing can have been sent and the next request takes the key over. If
// it vanished after, the card may have been sent: the key answers
// idempotency_outcome_unknown until it expires, and is never sent again.
// Every transition is one Lua script at the Redis server's clock, so two
// gateways cannot both win a key.
//
// It must never store card data: the forwarder stores only answers whose
// card numbers are already masked, and this package stores what it is
// given plus digests. It must never report a claim it did not make: any
// Redis error is an error (idempotency_unavailable), never "claimed".
package idempotency
