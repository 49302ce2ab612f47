package forwarder

import (
	"fmt"
	"net/netip"
)

// specialRange is one entry of the IANA special-purpose address registries
// (iana-ipv4-special-registry, iana-ipv6-special-registry) or another range a
// processor can never legitimately live in.
type specialRange struct {
	prefix netip.Prefix
	name   string
	// always means no UnsafeAllowRanges entry can open it: there is no
	// processor behind an unspecified, multicast or broadcast address.
	always bool
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// specialRanges is written out by hand, not derived from net.IP helpers such
// as IsGlobalUnicast, because those treat documentation, benchmarking,
// NAT64, 6to4, Teredo and CGNAT space as ordinary unicast. It is built per
// Forwarder (see newClassifier) so there is no package-level mutable state.
func specialRanges() []specialRange {
	return []specialRange{
		// IPv4.
		{mustPrefix("0.0.0.0/8"), "this-network", true},
		{mustPrefix("10.0.0.0/8"), "private", false},
		{mustPrefix("100.64.0.0/10"), "cgnat", false},
		{mustPrefix("127.0.0.0/8"), "loopback", false},
		{mustPrefix("169.254.0.0/16"), "link-local", false},
		{mustPrefix("172.16.0.0/12"), "private", false},
		{mustPrefix("192.0.0.0/24"), "ietf-protocol-assignments", false},
		{mustPrefix("192.0.2.0/24"), "documentation", false},
		{mustPrefix("192.31.196.0/24"), "as112", false},
		{mustPrefix("192.52.193.0/24"), "amt", false},
		{mustPrefix("192.88.99.0/24"), "6to4-relay-anycast", false},
		{mustPrefix("192.168.0.0/16"), "private", false},
		{mustPrefix("192.175.48.0/24"), "as112-direct-delegation", false},
		{mustPrefix("198.18.0.0/15"), "benchmarking", false},
		{mustPrefix("198.51.100.0/24"), "documentation", false},
		{mustPrefix("203.0.113.0/24"), "documentation", false},
		{mustPrefix("224.0.0.0/4"), "multicast", true},
		{mustPrefix("240.0.0.0/4"), "reserved", false},
		{mustPrefix("255.255.255.255/32"), "broadcast", true},

		// IPv6. Anything outside 2000::/3 is refused as well (see classify);
		// the entries below that fall outside it only give a precise reason.
		{mustPrefix("::/128"), "unspecified", true},
		{mustPrefix("::1/128"), "loopback", false},
		{mustPrefix("::/96"), "ipv4-compatible", false},
		{mustPrefix("::ffff:0:0/96"), "ipv4-mapped", false},
		{mustPrefix("64:ff9b::/96"), "nat64", false},
		{mustPrefix("64:ff9b:1::/48"), "nat64-local", false},
		{mustPrefix("100::/64"), "discard-only", false},
		{mustPrefix("100:0:0:1::/64"), "dummy", false},
		{mustPrefix("2001::/32"), "teredo", false},
		{mustPrefix("2001::/23"), "ietf-protocol-assignments", false},
		{mustPrefix("2001:db8::/32"), "documentation", false},
		{mustPrefix("2002::/16"), "6to4", false},
		{mustPrefix("2620:4f:8000::/48"), "as112", false},
		{mustPrefix("3fff::/20"), "documentation", false},
		{mustPrefix("5f00::/16"), "srv6-sid", false},
		{mustPrefix("fc00::/7"), "unique-local", false},
		{mustPrefix("fe80::/10"), "link-local", false},
		{mustPrefix("fec0::/10"), "site-local", false},
		{mustPrefix("ff00::/8"), "multicast", true},
	}
}

// classifier decides whether an address may be dialed.
type classifier struct {
	special []specialRange
	// global is 2000::/3, the only IPv6 space IANA allocates for global
	// unicast; everything else in IPv6 is refused.
	global netip.Prefix
}

func newClassifier() *classifier {
	return &classifier{special: specialRanges(), global: mustPrefix("2000::/3")}
}

// check returns nil when addr may be dialed for an entry that allows the
// given ranges, and otherwise an error naming the range (never card data).
//
// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is judged as the IPv4
// address it embeds, because that is where the kernel sends the packets and
// because net.Resolver.LookupNetIP returns A records in that form. Every
// other IPv6 form that embeds IPv4 (compatible, NAT64, 6to4, Teredo) is
// refused outright: its real destination is decided by a translator we do
// not control.
func (c *classifier) check(addr netip.Addr, allow []netip.Prefix) error {
	if !addr.IsValid() {
		return &addressError{name: "invalid"}
	}
	if addr.Zone() != "" {
		// A zone only exists for link-local scope; a processor has none.
		return &addressError{addr: addr.WithZone(""), name: "zoned"}
	}
	addr = addr.Unmap()
	// Look at every matching range, not just the first: ranges nest
	// (255.255.255.255 is inside 240.0.0.0/4), and an "always" one must win.
	var hit *specialRange
	for i := range c.special {
		r := &c.special[i]
		if r.prefix.Contains(addr) && (hit == nil || r.always) {
			hit = r
		}
	}
	if hit == nil && addr.Is6() && !c.global.Contains(addr) {
		hit = &specialRange{prefix: c.global, name: "outside-global-unicast"}
	}
	if hit == nil {
		return nil
	}
	if !hit.always && allowedBy(addr, allow) {
		return nil
	}
	return &addressError{addr: addr, name: hit.name, prefix: hit.prefix}
}

// addressError is a refused address. Every field is a parsed value or a
// name from specialRanges, so its text is safe to log; the log line uses
// the range name (Range) only.
type addressError struct {
	addr   netip.Addr
	name   string // a specialRanges name, "outside-global-unicast", "zoned" or "invalid"
	prefix netip.Prefix
}

func (e *addressError) Error() string {
	return fmt.Sprintf("forwarder: address %s is in %s range %s", e.addr, e.name, e.prefix)
}

// Range names the special-purpose range the address is in.
func (e *addressError) Range() string { return e.name }

// allowedBy reports whether addr is inside one of an entry's
// UnsafeAllowRanges. A range written in IPv4-mapped form never matches,
// because addr has been unmapped: that fails closed.
func allowedBy(addr netip.Addr, allow []netip.Prefix) bool {
	for _, p := range allow {
		if p.IsValid() && p.Contains(addr) {
			return true
		}
	}
	return false
}
