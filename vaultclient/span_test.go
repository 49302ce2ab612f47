package vaultclient

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestDecryptSpanNamesKey checks that a recording span still gets the key
// attributes, which spanKey skips for spans that do not record.
func TestDecryptSpanNamesKey(t *testing.T) {
	ctx := context.Background()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	keys, _ := newTestKeyring(t)
	v := newTestVault(t, &memStore{m: map[string]Entry{}}, keys, Options{TracerProvider: tp})
	info, err := v.Tokenize(ctx, testCards[0].input())
	if err != nil {
		t.Fatalf("Tokenize: %v", err)
	}
	if _, err := v.Detokenize(ctx, info.Token); err != nil {
		t.Fatalf("Detokenize: %v", err)
	}
	want := map[attribute.Key]attribute.Value{
		"cardgate.key.backend": attribute.StringValue(LocalBackend),
		"cardgate.key.name":    attribute.StringValue(localCardKey),
		"cardgate.key.version": attribute.Int64Value(1),
	}
	found := false
	for _, s := range rec.Ended() {
		if s.Name() != "vaultclient.keys.Decrypt" {
			continue
		}
		found = true
		got := map[attribute.Key]attribute.Value{}
		for _, kv := range s.Attributes() {
			if _, ok := want[kv.Key]; ok {
				got[kv.Key] = kv.Value
			}
		}
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b attribute.Value) bool { return a == b })); diff != "" {
			t.Errorf("decrypt span attributes (-want +got):\n%s", diff)
		}
	}
	if !found {
		t.Error("no vaultclient.keys.Decrypt span")
	}
}
