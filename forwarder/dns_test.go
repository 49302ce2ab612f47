package forwarder

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/cardgate/cardgate/allowlist"
)

// dnsServer is a real UDP DNS server on loopback whose answers the test
// sets. It answers A and AAAA questions for any name from the current
// answer list, and counts A questions per name (the Go resolver asks A and
// AAAA once each per lookup).
type dnsServer struct {
	conn    net.PacketConn
	mu      sync.Mutex
	answers []netip.Addr
	aCount  map[string]int
}

func newDNSServer(t *testing.T) *dnsServer {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{conn: c, aCount: map[string]int{}}
	done := make(chan struct{})
	t.Cleanup(func() { c.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, addr, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			if out, ok := s.answer(buf[:n]); ok {
				c.WriteTo(out, addr)
			}
		}
	}()
	return s
}

func (s *dnsServer) set(addrs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answers = nil
	for _, a := range addrs {
		s.answers = append(s.answers, netip.MustParseAddr(a))
	}
}

func (s *dnsServer) lookups(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.aCount[name]
}

func (s *dnsServer) answer(pkt []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(pkt)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	s.mu.Lock()
	if q.Type == dnsmessage.TypeA {
		s.aCount[strings.TrimSuffix(q.Name.String(), ".")]++
	}
	answers := append([]netip.Addr(nil), s.answers...)
	s.mu.Unlock()

	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionAvailable: true})
	b.EnableCompression()
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 0}
	for _, a := range answers {
		switch {
		case q.Type == dnsmessage.TypeA && a.Is4():
			b.AResource(rh, dnsmessage.AResource{A: a.As4()})
		case q.Type == dnsmessage.TypeAAAA && a.Is6():
			b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
	}
	out, err := b.Finish()
	return out, err == nil
}

// resolver returns a pure-Go net.Resolver that asks only this server.
func (s *dnsServer) resolver() *net.Resolver {
	addr := s.conn.LocalAddr().String()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", addr)
		},
	}
}

// TestForwardRealDNS runs the forwarder's resolver against a DNS server in
// the test: the answers are real DNS messages through net.Resolver.
func TestForwardRealDNS(t *testing.T) {
	const host = "pay.example.com"
	tests := []struct {
		name    string
		answers []string
		want    string // "" means success
	}{
		{"loopback, unsafe-allowed", []string{"127.0.0.1"}, ""},
		{"private", []string{"10.1.2.3"}, CodeAddressForbidden},
		{"link-local metadata", []string{"169.254.169.254"}, CodeAddressForbidden},
		{"mixed allowed and private", []string{"127.0.0.1", "192.168.0.10"}, CodeAddressForbidden},
		{"mixed v4 and ula v6", []string{"127.0.0.1", "fd00::1"}, CodeAddressForbidden},
		{"ipv6 loopback", []string{"::1"}, CodeAddressForbidden},
		{"nxdomain-like empty answer", nil, CodeDNSFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dns := newDNSServer(t)
			dns.set(tt.answers...)
			e := newEnv(t, echo, func(o *Options, _ *allowlist.Destination) { o.Resolver = dns.resolver() })
			resp, err := e.f.Forward(context.Background(), e.jsonRequest(`{"n":"{{card.number}}"}`))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Forward = %v, want success", err)
				}
				if len(e.p.requests()) != 1 {
					t.Fatalf("processor got %d requests, want 1", len(e.p.requests()))
				}
				return
			}
			fe := forwardErrFrom(t, resp, err)
			if fe.Code != tt.want || fe.Outcome != NotSent {
				t.Errorf("Forward = %q/%q (%v), want %q/not_sent", fe.Code, fe.Outcome, fe, tt.want)
			}
			if n := len(e.p.requests()); n != 0 {
				t.Errorf("processor got %d requests, want 0", n)
			}
			if n := dns.lookups(host); n != 1 {
				t.Errorf("host looked up %d times, want once", n)
			}
		})
	}
}

// TestForwardDNSRebinding: the name answers a permitted address, then a
// forbidden one. Every forward resolves and checks before it reads the
// card, so the rebound answer is refused even while a pooled connection
// to the earlier, checked address is open; a forward whose answers pass
// may use that pooled connection.
func TestForwardDNSRebinding(t *testing.T) {
	dns := newDNSServer(t)
	dns.set("127.0.0.1")
	e := newEnv(t, echo, func(o *Options, _ *allowlist.Destination) { o.Resolver = dns.resolver() })
	req := func() *Request { return e.jsonRequest(`{"n":"{{card.number}}"}`) }

	for i := range 2 {
		if _, err := e.f.Forward(context.Background(), req()); err != nil {
			t.Fatalf("Forward %d: %v", i+1, err)
		}
	}
	if n := dns.lookups("pay.example.com"); n != 2 {
		t.Errorf("lookups after two forwards = %d, want 2 (one per forward)", n)
	}
	if n := e.p.conns.Load(); n != 1 {
		t.Errorf("connections after two forwards = %d, want 1 (pooled)", n)
	}
	detok, _ := e.cards.counts()

	// Rebound: refused before the card is read, although a pooled
	// connection to the checked address is still open.
	dns.set("169.254.169.254")
	resp, err := e.f.Forward(context.Background(), req())
	fe := forwardErrFrom(t, resp, err)
	if fe.Code != CodeAddressForbidden || fe.Outcome != NotSent {
		t.Errorf("rebound Forward = %q/%q, want destination_address_forbidden/not_sent", fe.Code, fe.Outcome)
	}
	if n := len(e.p.requests()); n != 2 {
		t.Errorf("processor got %d requests, want 2", n)
	}
	if n, _ := e.cards.counts(); n != detok {
		t.Errorf("card reads after the rebound forward = %d, want %d (none for it)", n, detok)
	}

	// And back: a rebinding that alternates per query is still refused as
	// soon as one answer of a lookup is forbidden.
	dns.set("127.0.0.1", "10.0.0.1")
	resp, err = e.f.Forward(context.Background(), req())
	if fe := forwardErrFrom(t, resp, err); fe.Code != CodeAddressForbidden {
		t.Errorf("mixed Forward = %q, want destination_address_forbidden", fe.Code)
	}
}
