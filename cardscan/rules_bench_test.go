package cardscan

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// rulesBenchInput is a JSON answer of about n bytes: a list of transactions,
// each with a network transaction id and an ARN (the kept identifiers), an
// echoed card, amounts and text.
func rulesBenchInput(n int) []byte {
	r := rand.New(rand.NewPCG(3, 4))
	var b bytes.Buffer
	b.WriteString(`{"id":"batch_1","processorInformation":{"networkTransactionId":"722463149772052"},"transactions":[`)
	for i := 0; b.Len() < n-200; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"networkTransactionId":"%015d","acquirerReferenceNumber":"%023d","card":{"number":"4242424242424242","brand":"visa"},"amount":%d,"currency":"EUR","description":"an ordinary processor response field"}`,
			r.Int64N(1e15), r.Int64N(1e18), r.IntN(100000))
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// BenchmarkRedactRules compares masking a 64 KB JSON answer as today
// (RedactCVC) with masking it under response rules (FindSpans for two
// identifier paths, then RedactRules).
func BenchmarkRedactRules(b *testing.B) {
	in := rulesBenchInput(64 << 10)
	paths := []Path{
		MustParsePath("$.processorInformation.networkTransactionId"),
		MustParsePath("$.transactions[*].networkTransactionId"),
		MustParsePath("$.transactions[*].acquirerReferenceNumber"),
	}
	m := &Masks{Numbers: [][]byte{[]byte("4242424242424242")}, CVCs: [][]byte{[]byte("737")}}
	dst := make([]byte, 0, len(in))
	b.Run("without", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			dst = RedactCVC(dst[:0], in, m.CVCs[0])
		}
	})
	b.Run("with", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			spans, err := FindSpans(in, BodyJSON, paths)
			if err != nil {
				b.Fatal(err)
			}
			edits := make([]Edit, len(spans))
			for i, sp := range spans {
				edits[i] = Edit{Start: sp.Start, End: sp.End, Action: EditKeep}
			}
			dst = RedactRules(dst[:0], in, edits, m)
		}
	})
}
