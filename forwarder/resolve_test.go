package forwarder

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/audit"
)

// TestAddressesCheckedBeforeTheCard: a destination that does not resolve,
// or resolves to a forbidden address, is refused before the card store is
// asked and before an intent is recorded. Nothing is decrypted for a
// forward that cannot go out.
func TestAddressesCheckedBeforeTheCard(t *testing.T) {
	tests := []struct {
		name      string
		answers   []string // nil: the name does not resolve
		allow     []string // the entry's UnsafeAllowRanges
		cvc       bool     // the template uses the CVC (DetokenizeConsumingCVC)
		wantCode  string
		wantKinds []audit.Kind
	}{
		{"private", []string{"10.0.0.1"}, nil, false, CodeAddressForbidden, []audit.Kind{audit.KindDenied}},
		{"loopback", []string{"127.0.0.1"}, nil, false, CodeAddressForbidden, []audit.Kind{audit.KindDenied}},
		{"ipv4-mapped loopback", []string{"::ffff:127.0.0.1"}, nil, false, CodeAddressForbidden, []audit.Kind{audit.KindDenied}},
		{"one forbidden answer among allowed ones", []string{"127.0.0.1", "10.0.0.1"}, []string{"127.0.0.1/32"}, false, CodeAddressForbidden, []audit.Kind{audit.KindDenied}},
		{"forbidden, template uses the cvc", []string{"10.0.0.1"}, nil, true, CodeAddressForbidden, []audit.Kind{audit.KindDenied}},
		{"another range than the entry opens", []string{"10.0.0.1"}, []string{"127.0.0.1/32"}, false, CodeAddressForbidden, []audit.Kind{audit.KindDenied}},
		{"no such host", nil, nil, false, CodeDNSFailure, nil},
		{"no such host, template uses the cvc", nil, nil, true, CodeDNSFailure, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, echo, func(_ *Options, d *allowlist.Destination) {
				d.UnsafeAllowRanges = nil
				for _, p := range tt.allow {
					d.UnsafeAllowRanges = append(d.UnsafeAllowRanges, netip.MustParsePrefix(p))
				}
			})
			delete(e.res.answers, "pay.example.com")
			if tt.answers != nil {
				e.res.set("pay.example.com", tt.answers...)
			}
			body := `{"n":"{{card.number}}"}`
			if tt.cvc {
				body = `{"n":"{{card.number}}","c":"{{card.cvc}}"}`
			}
			fe := forwardErr(t, e.f, e.jsonRequest(body))
			if fe.Code != tt.wantCode || fe.Outcome != NotSent {
				t.Errorf("Forward = %q/%q, want %q/not_sent", fe.Code, fe.Outcome, tt.wantCode)
			}
			if detok, consumed := e.cards.counts(); detok != 0 || consumed != 0 {
				t.Errorf("card store calls = %d (%d consuming the CVC), want 0", detok, consumed)
			}
			if diff := cmp.Diff(tt.wantKinds, e.auditKinds()); diff != "" {
				t.Errorf("audit records (-want +got):\n%s", diff)
			}
			if n := e.res.count("pay.example.com"); n != 1 {
				t.Errorf("lookups = %d, want 1", n)
			}
			if n := len(e.p.requests()); n != 0 {
				t.Errorf("processor got %d requests, want 0", n)
			}
		})
	}

	// The other order: the answers pass, the card is read once and sent to
	// the checked address, with one lookup.
	t.Run("allowed", func(t *testing.T) {
		e := newEnv(t, echo)
		if _, err := e.f.Forward(context.Background(), e.jsonRequest(`{"n":"{{card.number}}"}`)); err != nil {
			t.Fatalf("Forward: %v", err)
		}
		if detok, _ := e.cards.counts(); detok != 1 {
			t.Errorf("card store calls = %d, want 1", detok)
		}
		if n := e.res.count("pay.example.com"); n != 1 {
			t.Errorf("lookups = %d, want 1", n)
		}
		if diff := cmp.Diff([]audit.Kind{audit.KindIntent, audit.KindResult}, e.auditKinds()); diff != "" {
			t.Errorf("audit records (-want +got):\n%s", diff)
		}
	})
}

// TestDialOnlyCheckedAddresses: the route's dialer never resolves a name.
// Without the addresses checked for its own route in the context it
// refuses to dial; with them it re-checks them under its entry's ranges.
func TestDialOnlyCheckedAddresses(t *testing.T) {
	e := newEnv(t, echo)
	d := &e.al.al.Doc.Destinations[0]
	tg, err := parseTarget(e.url("/v1/charges"))
	if err != nil {
		t.Fatal(err)
	}
	rt, fe := e.f.routeFor(e.al.al.SHA256, d, tg)
	if fe != nil {
		t.Fatal(fe)
	}
	loop := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		name    string
		checked *checkedAddrs
		want    string
	}{
		{"no checked addresses", nil, CodeInternal},
		{"checked for another route", &checkedAddrs{route: routeKey("other", tg), addrs: []netip.Addr{loop}}, CodeInternal},
		{"empty", &checkedAddrs{route: rt.key}, CodeInternal},
		{"outside the route's ranges", &checkedAddrs{route: rt.key, addrs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}, CodeAddressForbidden},
		{"checked for this route", &checkedAddrs{route: rt.key, addrs: []netip.Addr{loop}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.checked != nil {
				ctx = withCheckedAddrs(ctx, tt.checked)
			}
			conn, err := rt.dialTLS(ctx, "tcp", rt.dialAddr())
			if conn != nil {
				conn.Close()
			}
			var got *Error
			errors.As(err, &got)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("dialTLS = %v, want a connection", err)
			case tt.want != "" && (got == nil || got.Code != tt.want || got.Outcome != NotSent):
				t.Errorf("dialTLS = %v, want %s/not_sent", err, tt.want)
			}
		})
	}
	if n := e.res.count("pay.example.com"); n != 0 {
		t.Errorf("lookups by the dialer = %d, want 0", n)
	}
}
