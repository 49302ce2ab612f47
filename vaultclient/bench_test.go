package vaultclient

import (
	"context"
	"testing"
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
