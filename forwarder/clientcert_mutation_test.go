package forwarder

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Found by mutation testing (docs/mutation.md): TestForwardClientCert
// accepts, under TLS 1.3, either the refusal's own code or the cautious
// sent_no_response, so it cannot tell a refusal that clientCertRefused
// recognises from one it misses. These pin the recogniser itself.

// A real TLS 1.3 refusal: the handshake succeeds on the client's side,
// and the server's certificate_required alert arrives on the first read.
func TestClientCertRefusedRecognisesARealRefusal(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert, MinVersion: tls.VersionTLS13}
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	conn, err := tls.Dial("tcp", srv.Listener.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "example.com"})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer conn.Close()
	_, _ = conn.Write([]byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"))
	_, err = conn.Read(make([]byte, 1))
	if err == nil {
		t.Fatal("read after a refused client certificate = nil error")
	}
	if !clientCertRefused(err) {
		t.Errorf("clientCertRefused(%v) = false, want true", err)
	}
}

func TestClientCertRefused(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"certificate_required", &net.OpError{Op: "remote error", Err: tls.AlertError(116)}, true},
		{"bad_certificate", &net.OpError{Op: "remote error", Err: tls.AlertError(42)}, true},
		{"unknown_ca", &net.OpError{Op: "remote error", Err: tls.AlertError(48)}, true},
		{"handshake_failure: not about the certificate", &net.OpError{Op: "remote error", Err: tls.AlertError(40)}, false},
		{"not received from the peer", &net.OpError{Op: "read", Err: tls.AlertError(116)}, false},
		{"no cause", &net.OpError{Op: "remote error"}, false},
		{"not an OpError", errors.New("remote error: tls: certificate required"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clientCertRefused(tt.err); got != tt.want {
				t.Errorf("clientCertRefused(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
