package api

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
)

// DevCallerHeader names the development caller identity. It is honoured
// only when Options.DevCallers is set (dev mode), on a plain-HTTP
// connection from a loopback address. The identity it yields is always
// prefixed "dev:", so it can only match allowlist entries that name a
// dev caller explicitly.
const DevCallerHeader = "Cardgate-Dev-Caller"

// DevCallerPrefix marks every development identity.
const DevCallerPrefix = "dev:"

// Caller returns the authenticated caller identity of the request.
func Caller(ctx context.Context) string {
	c, _ := ctx.Value(callerKey).(string)
	return c
}

func (s *server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := s.identify(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey, id)))
	})
}

func (s *server) identify(r *http.Request) (string, error) {
	if r.TLS != nil {
		if id := CallerFromTLS(r.TLS); id != "" {
			return id, nil
		}
		return "", &Error{Code: CodeUnauthenticated, Message: "present a client certificate with a URI SAN (SPIFFE ID) or DNS SAN"}
	}
	if !s.o.DevCallers {
		return "", &Error{Code: CodeUnauthenticated, Message: "callers must authenticate with mTLS"}
	}
	if !fromLoopback(r.RemoteAddr) {
		return "", &Error{Code: CodeUnauthenticated, Message: "the development identity works on loopback only"}
	}
	name := r.Header.Get(DevCallerHeader)
	if !validName(name) {
		return "", &Error{Code: CodeUnauthenticated, Message: "set the " + DevCallerHeader + " header to a caller name of 1-64 letters, digits, '.', '_' or '-'"}
	}
	return DevCallerPrefix + name, nil
}

// CallerFromTLS returns the identity in a verified client certificate: its
// first URI SAN (a SPIFFE ID) or, failing that, its first DNS SAN. The
// subject CN is never used: it is not constrained by name constraints.
func CallerFromTLS(cs *tls.ConnectionState) string {
	// VerifiedChains is empty unless the certificate was verified against
	// the configured client CA; an unverified certificate names no one.
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return ""
	}
	leaf := cs.PeerCertificates[0]
	for _, u := range leaf.URIs {
		if u != nil && u.Scheme == "spiffe" && u.Host != "" {
			return u.String()
		}
	}
	for _, d := range leaf.DNSNames {
		if d != "" {
			return d
		}
	}
	return ""
}

func fromLoopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
