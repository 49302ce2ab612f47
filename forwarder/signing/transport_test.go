package signing

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Signed requests go through net/http's real client transport, over TLS,
// in HTTP/1.1 and HTTP/2, to a server that verifies what it received: the
// signature covers what the wire carried, not our idea of it.
func TestSignOverRealTransport(t *testing.T) {
	edKey := privateKey(t, "rfc9421-b14-ed25519.pem")
	full := chargeSpec(AlgEd25519)
	full.RFC9421.Components = []string{"@method", "@target-uri", "@authority", "@scheme", "@request-target", "@path", "@query",
		"content-digest", "content-type", "content-length", "date", "x-merchant"}
	specs := []struct {
		name   string
		spec   Spec
		sign   Key
		verify Key
	}{
		{"rfc9421 ed25519", full, PrivateKey(edKey), PublicKey(edKey.Public())},
		{"cavage", cybsSpec(), SecretKey([]byte(cybsSecret)), SecretKey([]byte(cybsSecret))},
		{"hmac", hmacSpec(HMACSpec{Hash: "sha256", Parts: []string{"method", "host", "path+query", "header:content-length", "body", "timestamp"},
			Separator: "\n", Header: "X-Signature", Encoding: "base64", TimestampHeader: "X-Timestamp", TimestampFormat: "unix"}),
			SecretKey(hmacSecret), SecretKey(hmacSecret)},
	}
	for _, h2 := range []bool{false, true} {
		for _, sc := range specs {
			name := sc.name + " HTTP/1.1"
			if h2 {
				name = sc.name + " HTTP/2"
			}
			t.Run(name, func(t *testing.T) {
				v := mustVerifier(t, sc.spec, sc.verify)
				var verr error
				var proto string
				ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					body, err := io.ReadAll(r.Body)
					if err != nil {
						verr = err
						return
					}
					proto = r.Proto
					verr = v.Verify(r, body, time.Now())
					if verr == nil {
						// The same request with one byte of body changed
						// must fail.
						body[len(body)-2] ^= 1
						if err := v.Verify(r, body, time.Now()); err == nil {
							verr = io.ErrUnexpectedEOF
						}
					}
				}))
				ts.EnableHTTP2 = h2
				ts.StartTLS()
				defer ts.Close()

				body := []byte(`{"number":"4242424242424242","cvc":"123"}`)
				req, err := http.NewRequest(http.MethodPost, ts.URL+"/v1/charges?capture=true&x=%2F", bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Merchant", "m_1")
				req.Header.Set("V-C-Merchant-Id", "testrest")
				if err := mustSigner(t, sc.spec, sc.sign).Sign(req, body, time.Now()); err != nil {
					t.Fatalf("Sign: %v", err)
				}
				resp, err := ts.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if verr != nil {
					t.Errorf("server Verify = %v", verr)
				}
				if want := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[h2]; proto != want {
					t.Errorf("server saw %s, want %s", proto, want)
				}
				if sc.spec.Scheme == SchemeRFC9421 && !strings.Contains(req.Header.Get("Signature-Input"), `"@target-uri"`) {
					t.Errorf("Signature-Input = %q", req.Header.Get("Signature-Input"))
				}
			})
		}
	}
}
