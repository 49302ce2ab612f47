package forwarder

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/cardgate/cardgate/allowlist"
)

// Found by mutation testing (docs/mutation.md): the dial's fallback over
// the checked addresses, and the transport's timing constants.

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

// The route's transport keeps the settings dial.go documents: idle pooled
// connections are closed after 90 s, HTTP/2 pings detect dead ones, no
// proxy, no transparent decompression.
func TestRouteTransportSettings(t *testing.T) {
	e := newEnv(t, echo)
	tg, te := parseTarget(e.url("/v1/charges"))
	if te != nil {
		t.Fatal(te)
	}
	rt, fe := e.f.routeFor(e.al.al.SHA256, &e.al.al.Doc.Destinations[0], tg)
	if fe != nil {
		t.Fatal(fe)
	}
	tr := rt.transport
	switch {
	case tr.IdleConnTimeout != 90*time.Second:
		t.Errorf("IdleConnTimeout = %v, want 90s", tr.IdleConnTimeout)
	case tr.HTTP2 == nil || tr.HTTP2.SendPingTimeout != 30*time.Second || tr.HTTP2.PingTimeout != 15*time.Second:
		t.Errorf("HTTP2 = %+v, want pings after 30s idle, answered within 15s", tr.HTTP2)
	case tr.Proxy != nil || !tr.DisableCompression:
		t.Errorf("Proxy set (%v) or compression on (%v)", tr.Proxy != nil, !tr.DisableCompression)
	}
}
