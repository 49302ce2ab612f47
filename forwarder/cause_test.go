package forwarder

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/textproto"
	"os"
	"syscall"
	"testing"

	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/vaultclient"
)

// TestCauseClass: every class comes from the cause's type or identity,
// wrapped as the transport and this package wrap it. The texts of the
// causes below hold the echo on purpose: the class never does.
func TestCauseClass(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("net/http: %s: %w", leakEchoed, err) }
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"canceled", wrap(context.Canceled), ClassCanceled},
		{"deadline", wrap(context.DeadlineExceeded), ClassTimeout},
		{"net timeout", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, ClassTimeout},
		{"dns", wrap(&net.DNSError{Err: "no such host", Name: "pay.example.com", IsNotFound: true}), ClassDNS},
		{"dns timeout", &net.DNSError{Err: "i/o timeout", Name: "pay.example.com", IsTimeout: true}, ClassDNS},
		{"no addresses", fmt.Errorf("forwarder: resolve x: %w", errNoAddresses), ClassDNS},
		{"forbidden address", &addressError{addr: netip.MustParseAddr("10.0.0.1"), name: "private"}, ClassAddressForbidden},
		{"connect refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, ClassConnect},
		{"dial", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New(leakEchoed)}, ClassConnect},
		{"reset", wrap(&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}), ClassConnectionReset},
		{"broken pipe", &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}, ClassConnectionReset},
		{"unknown authority", fmt.Errorf("%w: %w", errTLS, &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), ClassCertificate},
		{"hostname", fmt.Errorf("%w: %w", errTLS, x509.HostnameError{Host: leakEchoed}), ClassCertificate},
		{"pins", fmt.Errorf("%w: %w", errTLS, errPins), ClassCertificate},
		{"handshake", fmt.Errorf("forwarder: tls x: %w: %w", errTLS, errors.New(leakEchoed)), ClassTLS},
		{"record header", tls.RecordHeaderError{Msg: leakEchoed}, ClassTLS},
		{"remote alert", &net.OpError{Op: "remote error", Err: tls.AlertError(42)}, ClassTLS},
		{"textproto", wrap(textproto.ProtocolError("malformed MIME header: missing colon: " + leakEchoed)), ClassMalformedResponse},
		{"unexpected eof", wrap(io.ErrUnexpectedEOF), ClassEOF},
		{"eof", io.EOF, ClassEOF},
		{"entry configuration", fmt.Errorf("forwarder: entry x: %w", errEntryConfig), ClassConfiguration},
		{"audit invalid", fmt.Errorf("audit: field caller: %w", audit.ErrInvalid), ClassAuditInvalid},
		{"audit unavailable", fmt.Errorf("audit: %w", audit.ErrUnavailable), ClassAuditUnavailable},
		{"canary", errCanary, ClassCanary},
		{"typed collaborator", &vaultclient.Error{Code: vaultclient.CodeStoreUnavailable, Message: "x", Err: errors.New(leakEchoed)}, ClassDependency},
		{"anything else", errors.New(leakEchoed), ClassOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := causeClass(tt.err); got != tt.want {
				t.Errorf("causeClass(%T) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
	t.Run("after the first response byte", func(t *testing.T) {
		for err, want := range map[error]string{
			errors.New("http: message cannot contain multiple Content-Length headers; got " + leakEchoed): ClassMalformedResponse,
			wrap(io.ErrUnexpectedEOF):    ClassEOF,
			wrap(context.Canceled):       ClassCanceled,
			textproto.ProtocolError("x"): ClassMalformedResponse,
		} {
			if got := answerClass(err); got != want {
				t.Errorf("answerClass(%T) = %q, want %q", err, got, want)
			}
		}
	})
}

// TestErrorTextHoldsNoCause: Error() is the code and the message; the
// cause stays reachable for errors.Is only.
func TestErrorTextHoldsNoCause(t *testing.T) {
	cause := fmt.Errorf("net/http: malformed MIME header: missing colon: %q: %w", leakEchoed, io.ErrUnexpectedEOF)
	e := newError(CodeUpstreamError, SentNoResponse, "connection failed after the request may have been sent", cause)
	if got, want := e.Error(), "forwarder: upstream_error: connection failed after the request may have been sent"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(e, io.ErrUnexpectedEOF) {
		t.Errorf("errors.Is(e, io.ErrUnexpectedEOF) = false, want the cause kept for errors.Is")
	}
	if e.Class != ClassEOF {
		t.Errorf("Class = %q, want %q", e.Class, ClassEOF)
	}
}
