package forwarder

import (
	"context"
	"net/netip"
	"testing"

	"github.com/cardgate/cardgate/allowlist"
)

// Found by mutation testing (docs/mutation.md): the dial's fallback over
// the checked addresses.

// A host with two checked answers, the first refusing connections (no
// listener on 127.0.0.2), is reached on the second: the dialer tries each
// checked address in turn while the forward's context is alive.
func TestDialFallsBackToTheNextCheckedAddress(t *testing.T) {
	e := newEnv(t, echo, func(_ *Options, d *allowlist.Destination) {
		d.UnsafeAllowRanges = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	e.res.set("pay.example.com", "127.0.0.2", "127.0.0.1")
	if _, err := e.f.Forward(context.Background(), e.jsonRequest(`{"n":"{{card.number}}"}`)); err != nil {
		t.Fatalf("Forward = %v, want it sent to the second address", err)
	}
	if n := len(e.p.requests()); n != 1 {
		t.Errorf("processor got %d requests, want 1", n)
	}
}
