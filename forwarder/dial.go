package forwarder

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/cardgate/cardgate/allowlist"
)

// route is the transport for one allowlist entry of one allowlist document.
// Its dialer can reach only that entry's host and port, and only the
// addresses the forward resolved and checked before it read the card
// (resolveChecked): it never looks a name up itself. Keeping one transport
// per (document, entry) also keeps pooled connections from ever being
// shared between entries with different address policies.
type route struct {
	key   string     // routeKey
	host  string     // normalized, as in the entry
	ip    netip.Addr // set when the entry names an IP literal
	port  int
	allow []netip.Prefix      // the entry's UnsafeAllowRanges
	pins  [][sha256.Size]byte // the entry's SPKI pins; empty means none
	// clientCert is the certificate the entry names in tls.client_cert;
	// nil means the route never presents one.
	clientCert *tls.Certificate

	classifier  *classifier
	rootCAs     *x509.CertPool
	dialTimeout time.Duration
	tlsTimeout  time.Duration

	transport *http.Transport
}

// Transport limits that are not per-entry settings. Idle connections are
// kept up to the connection cap: with a smaller idle pool, a burst above it
// closes connections after one use and pays a TLS handshake for each new
// one (measured: 256 concurrent forwards against an idle pool of 64 spent
// most of their CPU on handshakes).
const (
	maxConnsPerHost        = 256
	maxIdleConnsPerHost    = maxConnsPerHost
	idleConnTimeout        = 90 * time.Second
	maxResponseHeaderBytes = 64 << 10
)

// newRoute builds the route for target t under entry d. It fails when the
// entry names a CA bundle or a client certificate the gateway was not given.
func (f *Forwarder) newRoute(t *target, d *allowlist.Destination) (*route, *Error) {
	timeout := f.entryTimeout(d)
	r := &route{
		key:         routeKey(d.ID, t),
		host:        t.host,
		ip:          t.ip,
		port:        t.port,
		allow:       append([]netip.Prefix(nil), d.UnsafeAllowRanges...),
		classifier:  f.classifier,
		rootCAs:     f.rootCAs,
		dialTimeout: f.dialTimeout,
		tlsTimeout:  f.tlsTimeout,
	}
	if d.TLS != nil {
		if d.TLS.CABundle != "" {
			pool, ok := f.caBundles[d.TLS.CABundle]
			if !ok || pool == nil {
				return nil, newError(CodeInternal, NotSent, "the entry's CA bundle is not configured",
					fmt.Errorf("forwarder: entry %s: ca bundle %q not configured: %w", d.ID, d.TLS.CABundle, errEntryConfig))
			}
			r.rootCAs = pool
		}
		if d.TLS.ClientCert != "" {
			cert, ok := f.clientCerts[d.TLS.ClientCert]
			if !ok || cert == nil {
				// Sending without it would only be refused by the processor;
				// a configuration gap is ours to report, before any dial.
				return nil, newError(CodeInternal, NotSent, "the entry's client certificate is not configured",
					fmt.Errorf("forwarder: entry %s: client certificate %q not configured: %w", d.ID, d.TLS.ClientCert, errEntryConfig))
			}
			r.clientCert = cert
		}
		r.pins = slices.Clone(d.TLS.SPKIPins)
	}
	r.transport = &http.Transport{
		// Never honour HTTP(S)_PROXY: a proxy would do its own resolution.
		Proxy: nil,
		// Plain-http dialing is refused; every forward is https and goes
		// through dialTLS.
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			return nil, notSent(CodeDestinationNotAllowed, "only https is forwarded")
		},
		DialTLSContext:         r.dialTLS,
		TLSHandshakeTimeout:    r.tlsTimeout, // dialTLS enforces it too; set for clarity
		ResponseHeaderTimeout:  timeout,
		IdleConnTimeout:        idleConnTimeout,
		MaxIdleConns:           maxIdleConnsPerHost,
		MaxIdleConnsPerHost:    maxIdleConnsPerHost,
		MaxConnsPerHost:        maxConnsPerHost,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		// We must see the body as the processor's bytes to scan it for card
		// numbers, so we ask for identity and never decode on the fly.
		DisableCompression: true,
		ForceAttemptHTTP2:  true,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: 30 * time.Second, // detect dead pooled connections
			PingTimeout:     15 * time.Second,
		},
	}
	return r, nil
}

// dialAddr is the authority the transport asks for: the URL's host with the
// port always present (net.JoinHostPort brackets an IPv6 literal).
func (r *route) dialAddr() string { return net.JoinHostPort(r.host, strconv.Itoa(r.port)) }

// dialTLS is the only way this route's transport makes connections.
func (r *route) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	if network != "tcp" || addr != r.dialAddr() {
		// The transport only ever asks for the URL's authority, which we
		// built from the entry. Anything else is a bug: refuse it.
		return nil, newError(CodeInternal, NotSent, "unexpected dial target", fmt.Errorf("forwarder: dial %s %s on route %s", network, addr, r.dialAddr()))
	}
	// The addresses of the forward that asked for this connection, checked
	// before its card was read. A connection dialed for one forward may
	// serve a later one on the same route from the pool: it goes to an
	// address that was checked for this route.
	c := checkedAddrsFrom(ctx)
	if c == nil || c.route != r.key || len(c.addrs) == 0 {
		return nil, newError(CodeInternal, NotSent, "dial without addresses checked for this destination", fmt.Errorf("forwarder: dial on route %s without its checked addresses", r.dialAddr()))
	}
	for _, a := range c.addrs {
		// Checked already, under the entry of the allowlist the forward
		// matched; checked again under this route's entry, which is the
		// live document's, in case a reload narrowed its ranges since.
		if err := r.classifier.check(a, r.allow); err != nil {
			return nil, newError(CodeAddressForbidden, NotSent, "destination resolves to a forbidden address", err)
		}
	}
	var lastErr error
	for _, a := range c.addrs {
		conn, err := r.dialOne(ctx, a.Unmap())
		if err == nil {
			return r.handshake(ctx, conn)
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, newError(CodeUpstreamConnectFailed, NotSent, "could not connect to the destination", lastErr)
}

func (r *route) dialOne(ctx context.Context, a netip.Addr) (net.Conn, error) {
	d := net.Dialer{Timeout: r.dialTimeout, KeepAlive: 30 * time.Second}
	return d.DialContext(ctx, "tcp", netip.AddrPortFrom(a, uint16(r.port)).String())
}

// handshake runs TLS on conn for the entry's host name. Verification is
// always on: there is deliberately no field anywhere that could set
// InsecureSkipVerify.
func (r *route) handshake(ctx context.Context, conn net.Conn) (net.Conn, error) {
	cfg := &tls.Config{
		ServerName: r.host,
		RootCAs:    r.rootCAs,
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		// Runs after the standard chain and name verification, never
		// instead of it.
		VerifyConnection: r.verifyPins,
		// Certificates stays empty: the only certificate this connection
		// can present is the entry's own.
		GetClientCertificate: r.clientCertificate,
		// A request goes out in one record (onewrite.go), not cut into
		// segment-sized records while the connection is young.
		DynamicRecordSizingDisabled: true,
	}
	tc := tls.Client(conn, cfg)
	hctx, cancel := context.WithTimeout(ctx, r.tlsTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		conn.Close()
		code := CodeUpstreamTLSError
		msg := "TLS handshake with the destination failed"
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
			msg = "TLS handshake with the destination timed out"
		}
		return nil, newError(code, NotSent, msg, fmt.Errorf("forwarder: tls %s: %w: %w", r.host, errTLS, err))
	}
	if tc.ConnectionState().NegotiatedProtocol == "h2" {
		return tc, nil // net/http's HTTP/2 needs the *tls.Conn itself
	}
	return newOwnedConn(tc), nil // one write per request (onewrite.go)
}

// clientCertificate answers a processor's certificate request with the
// entry's client certificate, or with none when the entry names none, so
// a credential meant for one processor is never shown to another.
func (r *route) clientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	if r.clientCert == nil {
		return &tls.Certificate{}, nil
	}
	return r.clientCert, nil
}

// certificateAlerts are the TLS alerts a server sends when it refuses the
// client's certificate (or its absence).
var certificateAlerts = []tls.AlertError{
	42,  // bad_certificate
	43,  // unsupported_certificate
	44,  // certificate_revoked
	45,  // certificate_expired
	46,  // certificate_unknown
	48,  // unknown_ca
	116, // certificate_required
}

// clientCertRefused reports whether err is a fatal alert from the processor
// refusing the gateway's client certificate. Under TLS 1.3 the client's
// handshake ends before the server has checked the client's certificate,
// so such a refusal arrives only when the request is read back, although
// the server never read the request: a TLS server reads no application
// data before the handshake, certificate included, has succeeded.
func clientCertRefused(err error) bool {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return false
	}
	// crypto/tls reports a received alert with an unexported type whose
	// text is the same as AlertError's for the same code.
	for _, a := range certificateAlerts {
		if op.Err.Error() == a.Error() {
			return true
		}
	}
	return false
}

// verifyPins requires, when the entry has SPKI pins, that some certificate
// of a verified chain carries a pinned public key.
func (r *route) verifyPins(cs tls.ConnectionState) error {
	if len(r.pins) == 0 {
		return nil
	}
	for _, chain := range cs.VerifiedChains {
		for _, c := range chain {
			sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
			for _, p := range r.pins {
				if subtle.ConstantTimeCompare(sum[:], p[:]) == 1 {
					return nil
				}
			}
		}
	}
	return errPins
}
