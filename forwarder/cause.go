package forwarder

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/textproto"
	"syscall"

	"github.com/cardgate/cardgate/audit"
)

// Cause classes: what kind of failure an *Error's internal cause was. They
// are what the log line, the span and the caller-side error text say about
// a cause, in place of its text, which can quote bytes a processor or a
// caller sent. The set is closed: a class is always one of these words.
const (
	ClassCanceled          = "canceled"           // the forward's context was canceled
	ClassTimeout           = "timeout"            // a deadline passed: connect, TLS, the exchange or a store call
	ClassDNS               = "dns"                // the destination host did not resolve
	ClassAddressForbidden  = "address_forbidden"  // the host resolved into a special-purpose range
	ClassConnect           = "connect"            // no TCP connection could be made
	ClassTLS               = "tls"                // the TLS handshake failed, or the processor sent a TLS alert
	ClassCertificate       = "certificate"        // the processor's certificate did not verify (chain, name, SPKI pin)
	ClassConnectionReset   = "connection_reset"   // the connection was reset or closed under the exchange
	ClassEOF               = "eof"                // the connection ended before the answer was complete
	ClassMalformedResponse = "malformed_response" // the processor's bytes are not valid HTTP: status line, header, chunking, length
	ClassConfiguration     = "configuration"      // the entry names a CA bundle or client certificate the gateway was not given
	ClassAuditInvalid      = "audit_invalid"      // the audit log refused a record as malformed
	ClassAuditUnavailable  = "audit_unavailable"  // the audit log could not make a record durable
	ClassCanary            = "canary"             // the token is a canary
	ClassDependency        = "dependency"         // a collaborator (vault, allowlist, limiter, …) failed with a typed error: its code says more
	ClassOther             = "other"              // none of the above
)

// Markers this package wraps into the causes it builds itself, so that
// causeClass can tell them apart by identity rather than by text.
var (
	errEntryConfig = errors.New("forwarder: entry configuration")
	errTLS         = errors.New("forwarder: tls handshake")
	errPins        = errors.New("forwarder: no certificate in the verified chain matches the entry's SPKI pins")
	errNoAddresses = errors.New("forwarder: no addresses")
)

// causeClass returns the class of err, "" for nil. It looks only at types
// and identities (errors.Is, errors.As), never at err's text.
func causeClass(err error) string {
	var (
		dnsErr   *net.DNSError
		addrErr  *addressError
		opErr    *net.OpError
		netErr   net.Error
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		roots    x509.SystemRootsError
		record   tls.RecordHeaderError
		alert    tls.AlertError
		ech      *tls.ECHRejectionError
		proto    textproto.ProtocolError
		public   publicError
	)
	switch {
	case err == nil:
		return ""
	case errors.Is(err, errCanary):
		return ClassCanary
	case errors.Is(err, errEntryConfig):
		return ClassConfiguration
	case errors.As(err, &addrErr):
		return ClassAddressForbidden
	case errors.Is(err, context.Canceled):
		return ClassCanceled
	case errors.As(err, &dnsErr), errors.Is(err, errNoAddresses):
		// Before timeouts: a lookup that timed out is a DNS failure.
		return ClassDNS
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return ClassTimeout
	case errors.Is(err, errPins), errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &hostname),
		errors.As(err, &invalid), errors.As(err, &roots):
		return ClassCertificate
	case errors.Is(err, errTLS), errors.As(err, &record), errors.As(err, &alert), errors.As(err, &ech),
		errors.As(err, &opErr) && opErr.Op == "remote error":
		return ClassTLS
	case errors.As(err, &proto):
		return ClassMalformedResponse
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, net.ErrClosed):
		return ClassConnectionReset
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.As(err, &opErr) && opErr.Op == "dial":
		return ClassConnect
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return ClassEOF
	case errors.Is(err, audit.ErrInvalid):
		return ClassAuditInvalid
	case errors.Is(err, audit.ErrUnavailable):
		return ClassAuditUnavailable
	case errors.As(err, &public) && public.ErrorCode() != "":
		return ClassDependency
	}
	return ClassOther
}

// answerClass is causeClass for a failure after the processor's first
// response byte arrived. net/http reports most malformed answers (a bad
// status line, Content-Length or chunk header, a header section over the
// limit, an HTTP/2 protocol error) with unexported types or plain
// fmt.Errorf texts that quote the processor's bytes; once bytes arrived,
// whatever is not a network, timeout or EOF failure is the processor's
// answer failing to parse.
func answerClass(err error) string {
	c := causeClass(err)
	if c == ClassOther {
		return ClassMalformedResponse
	}
	return c
}
