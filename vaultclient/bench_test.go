package vaultclient

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Benchmarks for the local keyring over each store. Run with
//
//	go test -run '^$' -bench . -benchmem ./vaultclient/
//
// Bolt numbers include an fsync per Tokenize; Redis numbers include a
// loopback round trip to a real redis-server.

func BenchmarkTokenize(b *testing.B) {
	for _, sk := range storeKinds {
		b.Run(sk.name, func(b *testing.B) {
			keys, _ := newTestKeyring(b)
			v := newTestVault(b, sk.new(b), keys, Options{})
			ctx := context.Background()
			in := testCards[0].input()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Tokenize(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDetokenize(b *testing.B) {
	for _, sk := range storeKinds {
		b.Run(sk.name, func(b *testing.B) {
			keys, _ := newTestKeyring(b)
			v := newTestVault(b, sk.new(b), keys, Options{})
			ctx := context.Background()
			info, err := v.Tokenize(ctx, testCards[0].input())
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				c, err := v.Detokenize(ctx, info.Token)
				if err != nil {
					b.Fatal(err)
				}
				c.Wipe()
			}
		})
	}
}

// BenchmarkDetokenizeParallel shows contention: many forwards at once.
func BenchmarkDetokenizeParallel(b *testing.B) {
	for _, sk := range storeKinds {
		b.Run(sk.name, func(b *testing.B) {
			keys, _ := newTestKeyring(b)
			v := newTestVault(b, sk.new(b), keys, Options{})
			ctx := context.Background()
			info, err := v.Tokenize(ctx, testCards[0].input())
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := v.Detokenize(ctx, info.Token); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// memStore is a Store in a map, so that the key-backend benchmarks
// measure the backend and not a store's fsync or round trip.
type memStore struct {
	mu sync.Mutex
	m  map[string]Entry
}

func (s *memStore) Put(_ context.Context, token string, e Entry, _ time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[token]; ok {
		return ErrExists
	}
	s.m[token] = e
	return nil
}

func (s *memStore) Get(_ context.Context, token string) (Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[token]
	if !ok {
		return Entry{}, ErrNotFound
	}
	return e, nil
}

func (s *memStore) GetRecord(ctx context.Context, token string) ([]byte, error) {
	e, err := s.Get(ctx, token)
	return e.Record, err
}

// GetAndDeleteCVC does not delete, so that a benchmark can read one card
// and its CVC over and over.
func (s *memStore) GetAndDeleteCVC(ctx context.Context, token string) (Entry, error) {
	return s.Get(ctx, token)
}
func (s *memStore) DeleteCVC(context.Context, string) error { return nil }
func (s *memStore) Ping(context.Context) error              { return nil }

// keyBackends are the backends the key-backend benchmarks compare: the
// local keyring, PKCS#11 on SoftHSM2 (in-process, so no network), and
// Vault Transit against the HTTPS stand-in on loopback (TLS, JSON and
// the stand-in's own AES-GCM included).
var keyBackends = []struct {
	name string
	new  func(b *testing.B) Keyer
}{
	{"local", func(b *testing.B) Keyer { k, _ := newTestKeyring(b); return k }},
	{"pkcs11-softhsm2", func(b *testing.B) Keyer {
		if !PKCS11Available {
			b.Skip("built without cgo")
		}
		p, _ := newTestPKCS11(b)
		return p
	}},
	{"transit-standin", func(b *testing.B) Keyer { gw, _, _ := newTestTransit(b); return gw }},
}

// BenchmarkKeyBackend tokenizes, detokenizes (the card alone) and
// detokenizes consuming the CVC (card and CVC; memStore keeps the CVC) over
// an in-memory store, per key backend:
//
//	go test -run '^$' -bench KeyBackend -benchmem ./vaultclient/
func BenchmarkKeyBackend(b *testing.B) {
	ctx := context.Background()
	for _, kb := range keyBackends {
		b.Run(kb.name+"/tokenize", func(b *testing.B) {
			v := newTestVault(b, &memStore{m: map[string]Entry{}}, kb.new(b), Options{})
			in := testCards[0].input()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Tokenize(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(kb.name+"/detokenize", func(b *testing.B) {
			v := newTestVault(b, &memStore{m: map[string]Entry{}}, kb.new(b), Options{})
			info, err := v.Tokenize(ctx, testCards[0].input())
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				c, err := v.Detokenize(ctx, info.Token)
				if err != nil {
					b.Fatal(err)
				}
				c.Wipe()
			}
		})
		b.Run(kb.name+"/detokenize-consuming-cvc", func(b *testing.B) {
			v := newTestVault(b, &memStore{m: map[string]Entry{}}, kb.new(b), Options{})
			info, err := v.Tokenize(ctx, testCards[0].input())
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				c, err := v.DetokenizeConsumingCVC(ctx, info.Token)
				if err != nil {
					b.Fatal(err)
				}
				if c.CVC.IsZero() {
					b.Fatal("no CVC")
				}
				c.Wipe()
			}
		})
	}
}
