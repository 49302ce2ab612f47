package vaultclient

import (
	"testing"
	"time"
)

var payloadSink []byte

// encodeCVCPayload builds the payload in one allocation, so that the only
// copy of the CVC digits is the one its caller zeroes: a buffer that grew
// would leave the digits in the array it outgrew. Found by mutation
// testing (docs/mutation.md): a smaller capacity changed no output.
func TestEncodeCVCPayloadAllocatesOnce(t *testing.T) {
	expires := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	for _, cvc := range []string{"123", "1234"} {
		b := []byte(cvc)
		allocs := testing.AllocsPerRun(100, func() {
			payloadSink = encodeCVCPayload(b, expires) // on the heap, as in Tokenize
			clear(payloadSink)
		})
		if allocs != 1 {
			t.Errorf("encodeCVCPayload(%d digits) made %v allocations, want 1", len(cvc), allocs)
		}
	}
}
