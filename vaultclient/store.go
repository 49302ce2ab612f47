package vaultclient

import (
	"context"
	"time"
)

// Store holds sealed records by token. It never sees plaintext: the Vault
// seals before Put and opens after Get. Implementations: RedisStore and
// BoltStore; both pass the same test suite (store_test.go).
//
// Errors: wrap ErrNotFound and ErrExists for those outcomes; any other
// error means the store is unavailable. Errors name the token (the Vault
// passes them on as the cause) and never contain record bytes.
type Store interface {
	// Put writes e under token, atomically: the record and the CVC are
	// both written or neither is. It never overwrites: if a record exists
	// under token it writes nothing and returns an error wrapping
	// ErrExists. e.CVC may be nil; when it is not, it expires after cvcTTL
	// (> 0).
	Put(ctx context.Context, token string, e Entry, cvcTTL time.Duration) error
	// GetRecord returns the card record under token and nothing else: it
	// does not read the CVC. Detokenize uses it, so that a read that will
	// not send the CVC does not fetch it. It returns an error wrapping
	// ErrNotFound when there is no record.
	GetRecord(ctx context.Context, token string) ([]byte, error)
	// Get returns the record and, if one is held and has not expired, the
	// CVC under token, in one read, without deleting either. Only Rewrap
	// uses it, to reseal both. It returns an error wrapping ErrNotFound
	// when there is no record.
	Get(ctx context.Context, token string) (Entry, error)
	// GetAndDeleteCVC is Get that also deletes the CVC held under token,
	// in the same atomic operation: of two concurrent calls, at most one
	// returns the CVC. An expired CVC is deleted and not returned. It
	// returns an error wrapping ErrNotFound, and deletes nothing, when
	// there is no record.
	GetAndDeleteCVC(ctx context.Context, token string) (Entry, error)
	// DeleteCVC removes the CVC held under token, if any. Deleting a CVC
	// that is not there is not an error.
	DeleteCVC(ctx context.Context, token string) error
	// Ping checks that the store can serve requests.
	Ping(ctx context.Context) error
}

// Entry is what a Store holds under one token: opaque sealed bytes.
type Entry struct {
	Record []byte // the card record; required
	CVC    []byte // the sealed CVC record; nil when none is held
}
