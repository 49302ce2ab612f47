package forwarder

import (
	"net/netip"
	"testing"
)

func TestClassifierCheck(t *testing.T) {
	c := newClassifier()
	loop := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	everything := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
	tests := []struct {
		addr  string
		allow []netip.Prefix
		ok    bool
	}{
		{"8.8.8.8", nil, true},
		{"1.1.1.1", nil, true},
		{"100.63.255.254", nil, true},
		{"100.128.0.1", nil, true},
		{"2606:4700::1111", nil, true},
		{"::ffff:8.8.8.8", nil, true}, // judged as the IPv4 it maps to

		{"0.0.0.0", nil, false},
		{"0.1.2.3", nil, false},
		{"10.0.0.1", nil, false},
		{"100.64.0.1", nil, false},
		{"100.127.255.255", nil, false},
		{"127.0.0.1", nil, false},
		{"127.255.255.255", nil, false},
		{"169.254.169.254", nil, false},
		{"172.16.0.1", nil, false},
		{"172.31.255.255", nil, false},
		{"192.0.0.8", nil, false},
		{"192.0.2.1", nil, false},
		{"192.88.99.1", nil, false},
		{"192.168.1.1", nil, false},
		{"198.18.0.1", nil, false},
		{"198.19.255.255", nil, false},
		{"198.51.100.1", nil, false},
		{"203.0.113.1", nil, false},
		{"224.0.0.1", nil, false},
		{"239.255.255.250", nil, false},
		{"240.0.0.1", nil, false},
		{"255.255.255.255", nil, false},
		{"::", nil, false},
		{"::1", nil, false},
		{"::ffff:127.0.0.1", nil, false},
		{"::ffff:169.254.169.254", nil, false},
		{"::127.0.0.1", nil, false},      // IPv4-compatible
		{"::8.8.8.8", nil, false},        // IPv4-compatible, public v4 inside
		{"64:ff9b::8.8.8.8", nil, false}, // NAT64
		{"64:ff9b:1::1", nil, false},
		{"100::1", nil, false},
		{"2001::1", nil, false},         // Teredo
		{"2001:2::1", nil, false},       // benchmarking
		{"2001:db8::1", nil, false},     // documentation
		{"2002:7f00:1::1", nil, false},  // 6to4 of 127.0.0.1
		{"2002:808:808::1", nil, false}, // 6to4 of 8.8.8.8
		{"3fff::1", nil, false},         // documentation
		{"fc00::1", nil, false},         // ULA
		{"fd12:3456::1", nil, false},    // ULA
		{"fe80::1", nil, false},         // link-local
		{"fe80::1%eth0", nil, false},    // zone
		{"fec0::1", nil, false},         // site-local
		{"ff02::1", nil, false},         // multicast
		{"4000::1", nil, false},         // outside 2000::/3
		{"5f00::1", nil, false},         // SRv6

		{"127.0.0.1", loop, true},
		{"::ffff:127.0.0.1", loop, true},
		{"127.0.0.2", loop, false},
		{"10.1.2.3", everything, true},
		{"fd00::1", everything, true},
		{"0.0.0.0", everything, false},         // never openable
		{"224.0.0.1", everything, false},       // never openable
		{"255.255.255.255", everything, false}, // never openable
		{"::", everything, false},              // never openable
		{"ff02::1", everything, false},         // never openable
		{"fe80::1%eth0", everything, false},    // zone, never openable
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			a := netip.MustParseAddr(tt.addr)
			err := c.check(a, tt.allow)
			if (err == nil) != tt.ok {
				t.Errorf("check(%s, %v) = %v, want ok=%v", tt.addr, tt.allow, err, tt.ok)
			}
		})
	}
}
