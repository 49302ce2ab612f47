package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/cardgate/cardgate/cardscan"
)

// DevCallerHeader names the development caller identity. It is honoured
// only when Options.DevCallers is set (dev mode), on a plain-HTTP
// connection from a loopback address. The identity it yields is always
// prefixed "dev:", so it can only match allowlist entries that name a
// dev caller explicitly.
const DevCallerHeader = "Cardgate-Dev-Caller"

// DevCallerPrefix marks every development identity.
const DevCallerPrefix = "dev:"

// MaxCallerBytes is the longest caller identity, the allowlist's bound on
// a caller name.
const MaxCallerBytes = 128

// Caller returns the authenticated caller identity of the request. A
// card-like digit run in it is already masked (see MaskCaller).
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
		// Masked here, once, before the identity reaches the forwarder,
		// and through it the log, the span, the audit record, the rate
		// limiter's keys and the caller's error messages.
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey, MaskCaller(id))))
	})
}

func (s *server) identify(r *http.Request) (string, error) {
	if r.TLS != nil {
		return CallerFromTLS(r.TLS)
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

// CallerFromTLS returns the identity in a verified client certificate, or
// an unauthenticated error that says why there is none:
//
//   - A certificate with a spiffe:// URI SAN is an X.509-SVID, parsed by
//     go-spiffe: it must have exactly one URI SAN, holding a well-formed
//     SPIFFE ID with a path, and must not be a CA certificate or have the
//     keyCertSign or cRLSign key usage. Otherwise it is refused, never
//     read as its DNS SAN instead.
//   - A certificate with no spiffe:// URI SAN is identified by its first
//     DNS SAN; other URI SANs (https://…) are ignored.
//   - The subject CN is never used: name constraints do not bind it.
//
// The identity must also be a name the allowlist could list: at most
// MaxCallerBytes of letters, digits and . _ : / @ -, starting with a
// letter or digit. Any other name could match no entry, and the audit log
// could not record it.
func CallerFromTLS(cs *tls.ConnectionState) (string, error) {
	// VerifiedChains is empty unless the certificate was verified against
	// the configured client CA; an unverified certificate names no one.
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return "", &Error{Code: CodeUnauthenticated, Message: "present a client certificate issued by the configured caller CA"}
	}
	leaf := cs.PeerCertificates[0]
	id := ""
	if hasSPIFFEURI(leaf) {
		var err error
		if id, err = spiffeID(leaf); err != nil {
			return "", err
		}
	} else {
		for _, d := range leaf.DNSNames {
			if d != "" {
				id = d
				break
			}
		}
		if id == "" {
			return "", &Error{Code: CodeUnauthenticated, Message: "present a client certificate with a SPIFFE ID URI SAN or a DNS SAN"}
		}
	}
	if !validCaller(id) {
		// The value is not echoed: it failed the grammar, so it could be
		// anything, a card number included.
		return "", &Error{Code: CodeUnauthenticated, Message: "the certificate's identity must be at most 128 letters, digits, '.', '_', ':', '/', '@' or '-'"}
	}
	return id, nil
}

// hasSPIFFEURI reports whether any URI SAN claims to be a SPIFFE ID. The
// scheme is compared without case: url.Parse lowercases it, but a
// certificate is not obliged to have been made by url.Parse.
func hasSPIFFEURI(leaf *x509.Certificate) bool {
	for _, u := range leaf.URIs {
		if u != nil && strings.EqualFold(u.Scheme, "spiffe") {
			return true
		}
	}
	return false
}

// spiffeID checks leaf as an X.509-SVID leaf and returns its SPIFFE ID.
// The chain itself was verified by the TLS handshake against the caller
// CA, so only the leaf rules of the X.509-SVID specification (§4.1, §4.3,
// §5) remain; they are the checks x509svid.Verify makes besides the chain,
// and a root ID (no path) names a trust domain, not a workload.
func spiffeID(leaf *x509.Certificate) (string, error) {
	refuse := func(why string) (string, error) {
		return "", &Error{Code: CodeUnauthenticated, Message: "the client certificate is not a valid X.509-SVID: " + why}
	}
	if len(leaf.URIs) > 1 {
		return refuse("it must have exactly one URI SAN")
	}
	id, err := x509svid.IDFromCert(leaf)
	switch {
	case err != nil:
		// go-spiffe's text quotes nothing, but it is an internal cause:
		// the caller gets the rule.
		return refuse("its URI SAN is not a well-formed SPIFFE ID (spiffe://trust-domain/path, lowercase trust domain, no empty or dot segments, no query, fragment or percent-escape)")
	case id.Path() == "":
		return refuse("its SPIFFE ID must have a path")
	case leaf.IsCA:
		return refuse("it is a CA certificate")
	case leaf.KeyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != 0:
		return refuse("it has the keyCertSign or cRLSign key usage")
	}
	return id.String(), nil
}

// validCaller reports whether id is a caller name the allowlist's grammar
// admits (allowlist.reCaller: ^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$).
func validCaller(id string) bool {
	if len(id) == 0 || len(id) > MaxCallerBytes || !isAlnum(id[0]) {
		return false
	}
	for i := 1; i < len(id); i++ {
		if c := id[i]; !isAlnum(c) && !strings.ContainsRune("._:/@-", rune(c)) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// MaskCaller returns id with every card-like digit run masked by cardscan
// ("dev:************4242"). A caller name is an identifier, so the rule is
// the audit log's, not the response scanner's: any 13–19 consecutive
// digits passing the Luhn check count, wherever they start. cardscan's
// masker masks whole digit groups; when a card hides inside a longer group
// ("74242424242424242") that masker leaves it, and every digit is masked
// instead.
//
// '*' is outside the allowlist's caller grammar, so a masked identity
// matches no entry: it is refused as caller_not_allowed, and the refusal
// is audited under the masked name. Two names masked alike are both
// refused, so the collision admits no one.
func MaskCaller(id string) string {
	if !cardscan.ContainsAnyWindow(id) && !cardscan.Contains([]byte(id)) {
		return id
	}
	// Redact also masks a card spelled in base64, hex or UTF-16.
	b := cardscan.Redact(nil, []byte(id))
	if cardscan.ContainsAnyWindow(string(b)) {
		for i, c := range b {
			if c >= '0' && c <= '9' {
				b[i] = '*'
			}
		}
	}
	return string(b)
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
