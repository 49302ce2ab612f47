package idempotency

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"sync"
	"time"
)

// KeyWrapper wraps and unwraps the data keys that stored answers are
// sealed under, with the key backend. *vaultclient.DataKeys implements it.
//
// Unwrap's error, when the wrapped key can never be opened (malformed,
// not authentic, its key version retired), has a Permanent() bool method
// that reports true, as *vaultclient.DataKeyError does; any other error
// means the backend is unavailable for now.
type KeyWrapper interface {
	Wrap(ctx context.Context, key []byte) ([]byte, error)
	Unwrap(ctx context.Context, wrapped []byte) ([]byte, error)
}

// Sealing parameters.
const (
	// DefaultDataKeyLifetime is how long one data key seals new answers
	// before the next is made and wrapped: one key-backend call per
	// gateway per lifetime, and a rotated key-encryption key is in use for
	// new answers within one lifetime.
	DefaultDataKeyLifetime = time.Hour
	// dataKeySize: AES-256.
	dataKeySize = 32
	// maxSealsPerKey keeps random 96-bit GCM nonces far from collision
	// (NIST SP 800-38D allows 2^32 per key).
	maxSealsPerKey = 1 << 24
	// maxOpenKeys bounds the cache of unwrapped data keys: a gateway
	// replica makes 24 a day at the default lifetime.
	maxOpenKeys = 256
	// sealFormat is the first byte of a sealed answer.
	sealFormat = 1
	// sealDomain starts the additional data, so that these bytes are never
	// taken for anything else sealed with a data key.
	sealDomain = "cardgate-idempotency-answer/v1"
	// maxWrapped bounds the wrapped data key in a sealed answer.
	maxWrapped = 1024
	nonceSize  = 12
	tagSize    = 16
)

// ErrSealBroken is the cause of the idempotency_outcome_unknown error
// Claim returns when a stored answer does not open: it is malformed,
// altered, moved to another caller or key, or its data key can no longer
// be unwrapped. The answer is lost; the key is never sent again.
var ErrSealBroken = errors.New("idempotency: stored answer does not open")

// errKeyBackend is the cause when the key backend could not wrap or
// unwrap a data key: retrying later may succeed.
var errKeyBackend = errors.New("key backend unavailable")

// sealer seals answers with AES-256-GCM under a data key that the key
// backend wraps (envelope encryption), bound to the caller and the
// Idempotency-Key. A sealed answer is
//
//	format(1) ‖ len(wrapped)(2, big-endian) ‖ wrapped ‖ nonce(12) ‖ ciphertext ‖ tag(16)
//
// with the additional data being each of sealDomain, the caller (scope)
// and the key as a 4-byte big-endian length and the bytes. The wrapped
// data key travels with each answer, so any replica sharing the Redis and
// the key backend can open it: it unwraps a data key it has not seen once
// and caches it.
type sealer struct {
	kw       KeyWrapper
	lifetime time.Duration
	now      func() time.Time

	mu             sync.Mutex
	cur            *dataKey              // seals new answers; nil until the first
	cache          map[[32]byte]*dataKey // by sha256 of the wrapped key
	order          [][32]byte            // cache insertion order, for eviction
	wraps, unwraps int                   // backend calls, for tests
}

type dataKey struct {
	aead    cipher.AEAD
	wrapped []byte
	made    time.Time
	seals   int
}

func newSealer(kw KeyWrapper, lifetime time.Duration, now func() time.Time) *sealer {
	return &sealer{kw: kw, lifetime: lifetime, now: now, cache: map[[32]byte]*dataKey{}}
}

// aad is the additional data of (scope, key).
func aad(scope, key string) []byte {
	out := make([]byte, 0, 12+len(sealDomain)+len(scope)+len(key))
	for _, s := range [...]string{sealDomain, scope, key} {
		out = binary.BigEndian.AppendUint32(out, uint32(len(s)))
		out = append(out, s...)
	}
	return out
}

// seal returns answer sealed for (scope, key).
func (s *sealer) seal(ctx context.Context, scope, key string, answer []byte) ([]byte, error) {
	dk, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 3+len(dk.wrapped)+nonceSize+len(answer)+tagSize)
	out = append(out, sealFormat)
	out = binary.BigEndian.AppendUint16(out, uint16(len(dk.wrapped)))
	out = append(out, dk.wrapped...)
	nonce := out[len(out) : len(out)+nonceSize]
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out = out[:len(out)+nonceSize]
	return dk.aead.Seal(out, nonce, answer, aad(scope, key)), nil
}

// current returns the data key that seals now, making and wrapping a new
// one when there is none, it is older than the lifetime or it has sealed
// maxSealsPerKey answers. The backend call is made under the lock: it
// happens once per lifetime, and concurrent sealers wait for its key.
func (s *sealer) current(ctx context.Context) (*dataKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if dk := s.cur; dk != nil && s.now().Sub(dk.made) < s.lifetime && dk.seals < maxSealsPerKey {
		dk.seals++
		return dk, nil
	}
	raw := make([]byte, dataKeySize)
	defer clear(raw)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	s.wraps++
	wrapped, err := s.kw.Wrap(ctx, raw)
	if err != nil {
		return nil, errors.Join(errKeyBackend, err)
	}
	if len(wrapped) == 0 || len(wrapped) > maxWrapped {
		return nil, errors.Join(errKeyBackend, errors.New("wrapped data key of a bad size"))
	}
	aead, err := newAEAD(raw)
	if err != nil {
		return nil, err
	}
	dk := &dataKey{aead: aead, wrapped: wrapped, made: s.now(), seals: 1}
	s.cur = dk
	s.remember(sha256.Sum256(wrapped), dk)
	return dk, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// remember caches dk under id, evicting the oldest entry when full. The
// key that seals now is never evicted from s.cur, only from the cache.
// The caller holds s.mu.
func (s *sealer) remember(id [32]byte, dk *dataKey) {
	if _, ok := s.cache[id]; ok {
		return
	}
	if len(s.order) >= maxOpenKeys {
		delete(s.cache, s.order[0])
		s.order = s.order[1:]
	}
	s.cache[id] = dk
	s.order = append(s.order, id)
}

// open returns the answer sealed for (scope, key), or an error wrapping
// ErrSealBroken (it will never open) or errKeyBackend (try again later).
func (s *sealer) open(ctx context.Context, scope, key string, sealed []byte) ([]byte, error) {
	if len(sealed) < 3 || sealed[0] != sealFormat {
		return nil, ErrSealBroken
	}
	n := int(binary.BigEndian.Uint16(sealed[1:3]))
	rest := sealed[3:]
	if n == 0 || n > maxWrapped || len(rest) < n+nonceSize+tagSize {
		return nil, ErrSealBroken
	}
	wrapped, nonce, ct := rest[:n], rest[n:n+nonceSize], rest[n+nonceSize:]
	dk, err := s.dataKey(ctx, wrapped)
	if err != nil {
		return nil, err
	}
	answer, err := dk.aead.Open(nil, nonce, ct, aad(scope, key))
	if err != nil {
		return nil, ErrSealBroken
	}
	return answer, nil
}

// dataKey returns the data key wrapped as wrapped, from the cache or
// unwrapped by the backend (outside the lock; two readers may unwrap the
// same key at once, and both get the same key).
func (s *sealer) dataKey(ctx context.Context, wrapped []byte) (*dataKey, error) {
	id := sha256.Sum256(wrapped)
	s.mu.Lock()
	dk, ok := s.cache[id]
	if !ok {
		s.unwraps++
	}
	s.mu.Unlock()
	if ok {
		return dk, nil
	}
	raw, err := s.kw.Unwrap(ctx, wrapped)
	defer clear(raw)
	if err != nil {
		var p interface{ Permanent() bool }
		if errors.As(err, &p) && p.Permanent() {
			return nil, errors.Join(ErrSealBroken, err)
		}
		return nil, errors.Join(errKeyBackend, err)
	}
	if len(raw) != dataKeySize {
		return nil, ErrSealBroken
	}
	aead, err := newAEAD(raw)
	if err != nil {
		return nil, ErrSealBroken
	}
	dk = &dataKey{aead: aead, wrapped: append([]byte(nil), wrapped...), made: s.now()}
	s.mu.Lock()
	s.remember(id, dk)
	s.mu.Unlock()
	return dk, nil
}
