package api

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cardgate/cardgate/forwarder"
)

// benchBodies are forward requests of the sizes callers send: a typical
// one, and one near the default body limit.
var benchBodies = map[string]string{
	"typical": `{"destination":"acme-charges","url":"https://api.acme.example/v1/charges","method":"POST","card":"tok_abcdefghijklmnopqrstuvwxyz234567",` +
		`"headers":{"Content-Type":["application/json"],"Authorization":["Bearer sk_test_abcdefghijklmnop"],"Idempotency-Key":["order-1234"]},` +
		`"body":"{\"amount\":1000,\"currency\":\"eur\",\"number\":\"{{card.number}}\",\"cvc\":\"{{card.cvc}}\",\"exp\":\"{{card.exp_month}}/{{card.exp_year}}\"}"}`,
	"200KiB": `{"destination":"acme-charges","url":"https://api.acme.example/v1/charges","method":"POST","card":"tok_abcdefghijklmnopqrstuvwxyz234567",` +
		`"headers":{"X-H":["v"]},"body":"` + strings.Repeat(`{\"k\":\"v\"},`, 200<<10/12) + `"}`,
}

// BenchmarkDecode measures decodeJSON as the handler runs it (duplicate
// scan included), the scan alone, and the json.Decoder.Token version of
// the scan the test keeps as its reference.
func BenchmarkDecode(b *testing.B) {
	for name, body := range benchBodies {
		b.Run(name+"/decodeJSON", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest("POST", "/v1/forward", strings.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				var req forwarder.Request
				if err := decodeJSON(r, &req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/duplicateKey", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			raw := []byte(body)
			for b.Loop() {
				if _, dup := duplicateKey(raw); dup {
					b.Fatal("duplicate")
				}
			}
		})
		b.Run(name+"/duplicateKeyReference", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			raw := []byte(body)
			for b.Loop() {
				if _, dup := duplicateKeyReference(raw); dup {
					b.Fatal("duplicate")
				}
			}
		})
	}
}
