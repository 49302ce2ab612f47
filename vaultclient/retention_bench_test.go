package vaultclient

import (
	"context"
	"strconv"
	"testing"
)

// BenchmarkNoteUseCached is what marking a use adds to a forward when the
// token was marked within TouchInterval: the hot path's usual case. The
// parallel form shows contention on the cache's lock.
func BenchmarkNoteUseCached(b *testing.B) {
	keys, _ := newTestKeyring(b)
	v := newTestVault(b, newTestBolt(b), keys, Options{})
	ctx := context.Background()
	tokens := make([]string, 1024)
	for i := range tokens {
		tokens[i] = "tok_" + strconv.Itoa(i)
		v.touched.mark(tokens[i], v.now())
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			v.noteUse(ctx, tokens[i%len(tokens)])
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				v.noteUse(ctx, tokens[i%len(tokens)])
				i++
			}
		})
	})
}
