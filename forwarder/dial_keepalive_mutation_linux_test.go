package forwarder

import (
	"context"
	"net"
	"net/netip"
	"syscall"
	"testing"
)

// Found by mutation testing (docs/mutation.md): the route's TCP
// keep-alive, which a mutant of its constant turned into Go's default.

// A connection the route dials probes an idle peer after 30 seconds (the
// dialer's KeepAlive), not Go's default of 15.
func TestDialKeepAlive(t *testing.T) {
	e := newEnv(t, echo)
	tg, te := parseTarget(e.url("/v1/charges"))
	if te != nil {
		t.Fatal(te)
	}
	rt, fe := e.f.routeFor(e.al.al.SHA256, &e.al.al.Doc.Destinations[0], tg)
	if fe != nil {
		t.Fatal(fe)
	}
	conn, err := rt.dialOne(context.Background(), netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var idle int
	var serr error
	if err := raw.Control(func(fd uintptr) {
		idle, serr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
	}); err != nil || serr != nil {
		t.Fatalf("reading TCP_KEEPIDLE: %v, %v", err, serr)
	}
	if idle != 30 {
		t.Errorf("TCP_KEEPIDLE = %d s, want 30", idle)
	}
}
