package forwarder

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cardgate/cardgate/allowlist"
)

// checkedAddrs are the addresses one forward resolved its host to and
// checked against the entry's address policy, before the card was read.
// They travel to the route's dialer in the request's context, the only
// channel http.Transport gives a dialer; the transport keeps a request's
// context values for the dial it starts on the request's behalf.
type checkedAddrs struct {
	route string // routeKey of the entry and target they were checked for
	addrs []netip.Addr
}

type checkedAddrsKey struct{}

func withCheckedAddrs(ctx context.Context, c *checkedAddrs) context.Context {
	return context.WithValue(ctx, checkedAddrsKey{}, c)
}

func checkedAddrsFrom(ctx context.Context) *checkedAddrs {
	c, _ := ctx.Value(checkedAddrsKey{}).(*checkedAddrs)
	return c
}

// routeKey names the route of entry id and target t: a wildcard entry
// admits several hosts, each with its own transport.
func routeKey(id string, t *target) string {
	return id + "\x00" + t.dialAddr()
}

// resolveChecked looks the target's host up once, under the DNS timeout,
// and checks every answer against the special-purpose ranges (opened only
// by the entry's UnsafeAllowRanges). One forbidden answer refuses the
// host: a name that resolves into internal space is not a processor,
// whatever else it resolves to. An IP-literal target is not looked up, but
// is checked the same way.
func (f *Forwarder) resolveChecked(ctx context.Context, d *allowlist.Destination, t *target) (*checkedAddrs, *Error) {
	addrs := []netip.Addr{t.ip}
	if !t.ip.IsValid() {
		dctx, cancel := context.WithTimeout(ctx, f.dnsTimeout)
		got, err := f.resolver.LookupNetIP(dctx, "ip", t.host)
		cancel()
		switch {
		case err != nil && errors.Is(ctx.Err(), context.Canceled):
			return nil, newError(CodeCanceled, NotSent, "request canceled before anything was sent", err)
		case err != nil:
			return nil, newError(CodeDNSFailure, NotSent, "destination host did not resolve", fmt.Errorf("forwarder: resolve %s: %w", t.host, err))
		case len(got) == 0:
			return nil, newError(CodeDNSFailure, NotSent, "destination host did not resolve", fmt.Errorf("forwarder: resolve %s: %w", t.host, errNoAddresses))
		}
		addrs = got
	}
	for _, a := range addrs {
		if err := f.classifier.check(a, d.UnsafeAllowRanges); err != nil {
			return nil, newError(CodeAddressForbidden, NotSent, "destination resolves to a forbidden address", err)
		}
	}
	return &checkedAddrs{route: routeKey(d.ID, t), addrs: addrs}, nil
}
