package vaultclient

import (
	"context"
	"time"
)

// LifecycleStore is a Store that also serves the card lifecycle: metadata
// reads, updates, CVC re-collection, deletion and retention. RedisStore and
// BoltStore are LifecycleStores; the Vault's lifecycle methods refuse a
// store that is not one (internal_error), so a test double that implements
// only Store keeps working for tokenize and detokenize.
//
// Each store keeps, beside the record, the time the card was last used
// (tokenized, forwarded, updated, or given a new CVC), in Unix
// milliseconds. It is a marker, not part of the sealed record, so that
// marking a use never rewrites the record (and never races Rewrap's
// compare-and-swap). A record with no marker (written before markers
// existed) counts as last used when it was created.
//
// Every method that takes a token answers ErrNotFound when no record is
// held under it, and then writes nothing: in particular a marker is never
// written for a token without a record, so a use that races a Delete
// cannot bring any trace of the token back.
type LifecycleStore interface {
	Store
	// Meta returns the record, whether a CVC is held and has not expired,
	// and the last-use marker (zero when there is none), in one read.
	Meta(ctx context.Context, token string) (StoreMeta, error)
	// Replace writes new over the record if it still holds old (else it
	// writes nothing and returns an error wrapping ErrConflict), leaves
	// the CVC as it is, and marks the card used at now.
	Replace(ctx context.Context, token string, old, new []byte, now time.Time) error
	// PutCVC stores cvc under token for ttl (> 0), replacing any CVC held,
	// and marks the card used at now.
	PutCVC(ctx context.Context, token string, cvc []byte, ttl time.Duration, now time.Time) error
	// Touch marks the card used at now and, where the store expires
	// records itself (Redis), restarts the record's retention.
	Touch(ctx context.Context, token string, now time.Time) error
	// Delete removes the record, any CVC and the marker, atomically.
	Delete(ctx context.Context, token string) error
	// LastUses calls fn once for every record held, with its last use (the
	// marker, or else the record's creation time; zero if neither can be
	// read). It reads in bounded batches; fn must not call the store.
	LastUses(ctx context.Context, fn func(lastUsed time.Time)) error
}

// TombstoneStore is a LifecycleStore that keeps tombstones, so that a
// token chosen by the caller (TokenizeAs) is never issued twice: once its
// card is gone, by Delete or by retention, it stays gone. A tombstone is
// the token alone with a constant value: no card data, no digest, no
// time. It has no TTL. Only PutNew reads it: every other method, and so
// the API, answers a tombstoned token exactly like one never issued.
//
// The tombstone is written with the record (PutNew), not when the record
// goes, because Redis expires a record by itself and cannot write anything
// then; so every way a record goes (Delete, Redis expiry, the bolt sweep)
// leaves it, and no delete path has to remember to write one. Delete and
// retention leave it in place. Only caller-chosen tokens get one: a
// deleted random token (Put) leaves no trace at all. A record that a
// build without tombstones stored under a derived token has none (see
// docs/migration.md).
type TombstoneStore interface {
	LifecycleStore
	// PutNew is Put for a caller-chosen token, that also writes its
	// tombstone, atomically. It writes nothing and returns an error
	// wrapping ErrExists when a record is held under token, or ErrDeleted
	// when none is held but the token is tombstoned.
	PutNew(ctx context.Context, token string, e Entry, cvcTTL time.Duration) error
}

// StoreMeta is what LifecycleStore.Meta returns.
type StoreMeta struct {
	Record   []byte
	CVCHeld  bool
	LastUsed time.Time // zero when the store holds no marker
}

// createdAt reads the creation time from a sealed record's clear fields,
// or the zero time when the record does not parse. Only the retention
// bookkeeping uses it, for records written before last-use markers.
func createdAt(record []byte) time.Time {
	r, err := decodeCardRecord(record)
	if err != nil || r.CreatedAt == 0 {
		return time.Time{}
	}
	return time.Unix(r.CreatedAt, 0)
}
