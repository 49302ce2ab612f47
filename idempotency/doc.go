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
// # Sealed answers
//
// Nothing a processor sent rests in Redis in the clear. Complete seals
// the answer with AES-256-GCM under a data key, bound to the caller and
// the key (the additional data is a length-prefixed domain, caller and
// key), and stores the data key, wrapped by the key backend
// (RedisOptions.Keys, *vaultclient.DataKeys), next to it. Each gateway
// makes a random 256-bit data key when it first seals and a new one every
// DataKeyLifetime (1h by default), so a rotated key-encryption key is in
// use within the hour; a gateway that meets a wrapped data key it has not
// seen unwraps it once and keeps it (at most 256). Moved to another
// caller or key, altered, or wrapped under a key version since retired, a
// stored answer does not open: Claim returns idempotency_outcome_unknown
// with ErrSealBroken, and the key is never sent again. A key backend that
// cannot be reached is idempotency_unavailable: nothing was sent, and the
// same key answers once it is back.
//
// It must never store card data: the forwarder stores only answers whose
// card numbers are already masked, and this package seals them and keeps
// digests. It must never report a claim it did not make: any Redis error
// is an error (idempotency_unavailable), never "claimed". Its errors'
// texts name a class of cause, never the cause's text.
package idempotency
