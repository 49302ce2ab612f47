package forwarder

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardgate/cardgate/cardscan"
)

// TestCleanResponseHeadersHopByHop checks the response side of the
// hop-by-hop rule (the request side is in TestBypass): the fixed set and
// whatever the processor's Connection header names are dropped, the rest
// kept.
func TestCleanResponseHeadersHopByHop(t *testing.T) {
	tests := []struct {
		name string
		in   http.Header
		want http.Header
	}{
		{"fixed set", http.Header{"Keep-Alive": {"timeout=5"}, "Transfer-Encoding": {"chunked"}, "Upgrade": {"h2c"}, "X-Request-Id": {"proc-1"}},
			http.Header{"X-Request-Id": {"proc-1"}}},
		{"named by connection", http.Header{"Connection": {"close, X-Internal-Route"}, "X-Internal-Route": {"edge-7"}, "X-Request-Id": {"proc-1"}},
			http.Header{"X-Request-Id": {"proc-1"}}},
		{"named in another case", http.Header{"Connection": {"x-internal-route"}, "X-Internal-Route": {"edge-7"}, "Content-Type": {"application/json"}},
			http.Header{"Content-Type": {"application/json"}}},
		{"nothing to drop", http.Header{"Content-Type": {"application/json"}}, http.Header{"Content-Type": {"application/json"}}},
	}
	f := &Forwarder{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, f.cleanResponseHeaders(tt.in, sentCards{})); diff != "" {
				t.Errorf("cleanResponseHeaders(%v) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// TestCleanResponseHeaderNames: a header whose name holds a card number
// or the forwarded card's CVC is dropped, since a name cannot be masked in
// place: a processor echoing the request may put its fields anywhere
// (issue 13, items 1 and 3). Other names, digits and all, are kept. The
// names are canonical, as the transport hands them over.
func TestCleanResponseHeaderNames(t *testing.T) {
	sent := sentCards{own: []cardscan.Secrets{cardscan.NewSecrets(leakPAN, leakCVC)}}
	defer sent.clear()
	in := http.Header{
		"X-Echo-" + leakPAN: {"1"},
		"X-Cvc-" + leakCVC:  {"1"},
		"X-Request-Id-1234": {"proc-1"},
		"Content-Type":      {"application/json"},
	}
	want := http.Header{"X-Request-Id-1234": {"proc-1"}, "Content-Type": {"application/json"}}
	if diff := cmp.Diff(want, (&Forwarder{}).cleanResponseHeaders(in, sent)); diff != "" {
		t.Errorf("cleanResponseHeaders (-want +got):\n%s", diff)
	}
}
