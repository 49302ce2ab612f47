package cardscan

import (
	"encoding/base64"
	"fmt"
	"testing"
)

// TestRedactAllocationBudget holds Redact to the README's budget: no
// allocation when dst has room, for plain, spelled-out and form bodies,
// with and without the forwarded card's secrets, and for base64 bodies
// (decoded in a fixed buffer). A UTF-16 body that holds a card costs one
// scratch copy of the body.
func TestRedactAllocationBudget(t *testing.T) {
	own := NewSecrets("4242424242424242", "737")
	for _, kind := range []string{"", "spelled", "form", "base64"} {
		in := benchBody(64<<10, kind)
		dst := make([]byte, 0, len(in))
		if got := testing.AllocsPerRun(20, func() { dst = Redact(dst[:0], in) }); got != 0 {
			t.Errorf("Redact (%q body) allocates %.1f times, budget 0", kind, got)
		}
		if got := testing.AllocsPerRun(20, func() { dst = own.Redact(dst[:0], in) }); got != 0 {
			t.Errorf("Secrets.Redact (%q body) allocates %.1f times, budget 0", kind, got)
		}
	}
	in := utf16Bytes(string(benchBody(16<<10, "")), false, true)
	dst := make([]byte, 0, len(in))
	if got := testing.AllocsPerRun(20, func() { dst = own.Redact(dst[:0], in) }); got > 1 {
		t.Errorf("Secrets.Redact (UTF-16 body with a card) allocates %.1f times, budget 1", got)
	}
}

// benchBody is benchInputOf for the kinds "", "spelled" and "form", and
// for "base64" the plain body's base64, cut to n.
func benchBody(n int, kind string) []byte {
	if kind == "base64" {
		return []byte(base64.StdEncoding.EncodeToString(benchInputOf(n, false, false)))[:n]
	}
	return benchInputOf(n, kind != "", kind == "form")
}

// BenchmarkSecretsRedact is BenchmarkRedact as the forwarder calls it,
// with the forwarded card's number and CVC, plus base64 and UTF-16
// bodies.
func BenchmarkSecretsRedact(b *testing.B) {
	own := NewSecrets("4242424242424242", "737")
	for _, kind := range []string{"", "spelled", "form", "base64", "utf16"} {
		for _, n := range []int{1 << 10, 64 << 10, 1 << 20} {
			var in []byte
			if kind == "utf16" {
				in = utf16Bytes(string(benchInputOf(n/2, false, false)), false, false)
			} else {
				in = benchBody(n, kind)
			}
			dst := make([]byte, 0, len(in))
			name := fmt.Sprintf("%dKB", n>>10)
			if kind != "" {
				name += "/" + kind
			}
			b.Run(name, func(b *testing.B) {
				b.SetBytes(int64(len(in)))
				b.ReportAllocs()
				for b.Loop() {
					dst = own.Redact(dst[:0], in)
				}
			})
		}
	}
}
