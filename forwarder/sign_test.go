package forwarder

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/credentials"
	"github.com/cardgate/cardgate/forwarder/signing"
)

// verifying is a processor that checks every request with v, as the real
// processor would, and answers 401 with the verifier's code when it
// fails.
type verifying struct {
	mu   sync.Mutex
	v    *signing.Verifier
	errs []string
}

func (p *verifying) set(v *signing.Verifier) {
	p.mu.Lock()
	p.v = v
	p.mu.Unlock()
}

func (p *verifying) handler(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	p.mu.Lock()
	v := p.v
	p.mu.Unlock()
	if err := v.Verify(r, body, time.Now()); err != nil {
		p.mu.Lock()
		p.errs = append(p.errs, err.Error())
		p.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"status":"unauthorized"}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"status":"verified"}`)
}

func (p *verifying) failures() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errs...)
}

func newVerifier(t testing.TB, sp signing.Spec, key signing.Key) *signing.Verifier {
	t.Helper()
	v, err := signing.NewVerifier(sp, key)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// TestSignCavage: a Cybersource-style entry, in both spellings of the
// request target. The caller sends a token and the merchant id; the
// gateway sets Date and Digest and signs; the processor verifies.
func TestSignCavage(t *testing.T) {
	for _, target := range []string{"request-target", "(request-target)"} {
		t.Run(target, func(t *testing.T) {
			sp := cybsSpec(target)
			proc := &verifying{v: newVerifier(t, sp, signing.SecretKey([]byte(testCybsSecret)))}
			e := newEnv(t, proc.handler, withCreds(credStoreForTests(t), "cybs-secret"), withSigning(sp))
			r := e.jsonRequest(cardBody)
			r.Headers["V-C-Merchant-Id"] = []string{testMerchantID}
			resp, err := e.f.Forward(context.Background(), r)
			if err != nil {
				t.Fatalf("Forward: %v", err)
			}
			if resp.Status != http.StatusOK {
				t.Fatalf("processor answered %d (%v), want 200: the signature did not verify", resp.Status, proc.failures())
			}
			got := e.p.requests()[0].header
			if got.Get("Date") == "" || got.Get("Digest") == "" || !strings.Contains(got.Get("Signature"), `headers="host date `+target+` digest v-c-merchant-id"`) {
				t.Errorf("processor headers Date=%q Digest=%q Signature=%q; want all three set by the gateway", got.Get("Date"), got.Get("Digest"), got.Get("Signature"))
			}
			// The body the processor verified is the card-bearing body.
			if !strings.Contains(string(e.p.requests()[0].body), testPAN) {
				t.Error("the signed body does not hold the card")
			}
			if got := e.auditKinds(); !cmp.Equal(got, []audit.Kind{audit.KindIntent, audit.KindResult}) {
				t.Errorf("audit kinds = %v, want [intent result]", got)
			}
		})
	}
	t.Run("a wrong key is refused by the processor", func(t *testing.T) {
		sp := cybsSpec("request-target")
		proc := &verifying{v: newVerifier(t, sp, signing.SecretKey([]byte("BBECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")))}
		e := newEnv(t, proc.handler, withCreds(credStoreForTests(t), "cybs-secret"), withSigning(sp))
		r := e.jsonRequest(cardBody)
		r.Headers["V-C-Merchant-Id"] = []string{testMerchantID}
		resp, err := e.f.Forward(context.Background(), r)
		if err != nil || resp.Status != http.StatusUnauthorized {
			t.Fatalf("Forward = %+v, %v; want the processor's 401", resp, err)
		}
	})
}

// TestSignRFC9421Ed25519: an HTTP Message Signature with Content-Digest
// and a private-key credential (RFC 9421 B.1.4's test key).
func TestSignRFC9421Ed25519(t *testing.T) {
	pemBytes, err := os.ReadFile(filepath.Join("signing", "testdata", "rfc9421-b14-ed25519.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sp := signing.Spec{
		Scheme: signing.SchemeRFC9421, Credential: "sig-key",
		RFC9421: &signing.RFC9421Spec{
			Algorithm: signing.AlgEd25519, KeyID: "test-key-ed25519", Created: true, Expires: time.Minute,
			Components: []string{"@method", "@authority", "@path", "content-digest", "content-type", "x-api-key"},
		},
	}
	store := newCredStore(t,
		cred{name: "sig-key", value: string(pemBytes), kind: credentials.KindEd25519PrivateKey},
		cred{name: "acme-key", value: testAPIKey})
	proc := &verifying{v: newVerifier(t, sp, signing.PublicKey(priv.(crypto.Signer).Public()))}
	e := newEnv(t, proc.handler, withCreds(store, "sig-key", "acme-key"), withSigning(sp))
	r := e.jsonRequest(cardBody)
	r.Headers["X-Api-Key"] = []string{"{{secret.acme-key}}"} // covered by the signature
	resp, err := e.f.Forward(context.Background(), r)
	if err != nil {
		t.Fatalf("Forward: %v", err)
	}
	if resp.Status != http.StatusOK {
		t.Fatalf("processor answered %d (%v), want 200", resp.Status, proc.failures())
	}
	if h := e.p.requests()[0].header; h.Get("Content-Digest") == "" || h.Get("Signature-Input") == "" {
		t.Errorf("processor got Content-Digest %q, Signature-Input %q; want both", h.Get("Content-Digest"), h.Get("Signature-Input"))
	}
}

// TestSignDigestOnly: a digest scheme needs no credential and no store.
func TestSignDigestOnly(t *testing.T) {
	sp := signing.Spec{Scheme: signing.SchemeContentDigest}
	proc := &verifying{v: newVerifier(t, sp, signing.Key{})}
	e := newEnv(t, proc.handler, withSigning(sp))
	resp, err := e.f.Forward(context.Background(), e.jsonRequest(cardBody))
	if err != nil || resp.Status != http.StatusOK {
		t.Fatalf("Forward = %+v, %v (%v); want 200", resp, err, proc.failures())
	}
}

// TestSignRetry: a retry re-renders the body and signs it again; without
// the second signature the processor would get an unsigned request.
func TestSignRetry(t *testing.T) {
	sp := cybsSpec("request-target")
	proc := &verifying{v: newVerifier(t, sp, signing.SecretKey([]byte(testCybsSecret)))}
	// The entry's port has no listener at first: the first attempt's
	// connection is refused, certainly not sent. Before the retry a relay
	// opens there and pipes to the processor.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	e := newEnv(t, proc.handler, withCreds(credStoreForTests(t), "cybs-secret"), withSigning(sp),
		func(o *Options, d *allowlist.Destination) {
			o.MaxAttempts = 3
			o.RetryBackoff = time.Millisecond
			d.Port = port
		})
	retries := 0
	e.f.beforeRetry = func() {
		retries++
		if retries == 1 {
			relay(t, "127.0.0.1:"+strconv.Itoa(port), e.p.srv.Listener.Addr().String())
		}
	}
	r := e.jsonRequest(cardBody)
	r.URL = "https://pay.example.com:" + strconv.Itoa(port) + "/v1/charges"
	r.Headers["V-C-Merchant-Id"] = []string{testMerchantID}
	resp, err := e.f.Forward(context.Background(), r)
	if err != nil {
		t.Fatalf("Forward: %v", err)
	}
	if resp.Status != http.StatusOK || len(e.p.requests()) != 1 {
		t.Fatalf("status %d, %d requests (%v); want one verified request", resp.Status, len(e.p.requests()), proc.failures())
	}
	if retries != 1 {
		t.Errorf("%d retries, want 1: the first attempt did not fail over to a retry", retries)
	}
}

// relay listens on addr and pipes every connection to target.
func relay(t *testing.T, addr, target string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer u.Close()
				go io.Copy(u, c)
				io.Copy(c, u)
			}()
		}
	}()
}

// TestSignRefusals: a request that cannot be signed is signing_failed,
// not_sent, with no intent record (nothing was about to leave); caller
// headers that the signature would set are refused, never replaced.
func TestSignRefusals(t *testing.T) {
	hmacSpec := signing.Spec{
		Scheme: signing.SchemeHMAC, Credential: "cybs-secret",
		HMAC: &signing.HMACSpec{Hash: "sha256", Parts: []string{"method", "path", "body-sha256-hex", "timestamp"},
			Separator: "\n", Header: "X-Signature", Encoding: "hex", TimestampHeader: "X-Timestamp", TimestampFormat: "unix"},
	}
	authSpec := cybsSpec("request-target")
	authSpec.Cavage.Header = "authorization"
	tests := []struct {
		name     string
		spec     signing.Spec
		header   string // sent by the caller with value "x"
		noMerch  bool
		wantCode string
		wantLog  string // in the log line
	}{
		{name: "covered header missing", spec: cybsSpec("request-target"), noMerch: true, wantCode: CodeSigningFailed, wantLog: signing.CodeComponentMissing},
		{name: "caller Date", spec: cybsSpec("request-target"), header: "Date", wantCode: CodeInvalidRequest},
		{name: "caller Digest", spec: cybsSpec("request-target"), header: "digest", wantCode: CodeInvalidRequest},
		{name: "caller Signature", spec: cybsSpec("request-target"), header: "Signature", wantCode: CodeInvalidRequest},
		{name: "caller Signature-Input", spec: cybsSpec("request-target"), header: "Signature-Input", wantCode: CodeInvalidRequest},
		{name: "caller Content-Digest", spec: cybsSpec("request-target"), header: "Content-Digest", wantCode: CodeInvalidRequest},
		{name: "caller Authorization on an authorization-header entry", spec: authSpec, header: "Authorization", wantCode: CodeInvalidRequest},
		{name: "caller MAC header", spec: hmacSpec, header: "X-Signature", wantCode: CodeInvalidRequest},
		{name: "caller timestamp header", spec: hmacSpec, header: "X-Timestamp", wantCode: CodeInvalidRequest},
		{name: "an asymmetric scheme with a shared secret", wantCode: CodeSigningFailed, wantLog: signing.CodeSpecInvalid, spec: signing.Spec{
			Scheme: signing.SchemeRFC9421, Credential: "cybs-secret",
			RFC9421: &signing.RFC9421Spec{Algorithm: signing.AlgEd25519, KeyID: "k", Components: []string{"@method", "content-digest"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, echo, withCreds(credStoreForTests(t), "cybs-secret"), withSigning(tt.spec))
			r := e.jsonRequest(`{"n":"{{card.number}}","cvc":"{{card.cvc}}"}`)
			if !tt.noMerch {
				r.Headers["V-C-Merchant-Id"] = []string{testMerchantID}
			}
			if tt.header != "" {
				r.Headers[tt.header] = []string{"x"}
			}
			fe := forwardErr(t, e.f, r)
			if fe.Code != tt.wantCode || fe.Outcome != NotSent {
				t.Errorf("Forward = %q/%q (%v), want %s/not_sent", fe.Code, fe.Outcome, fe, tt.wantCode)
			}
			if n := len(e.p.requests()); n != 0 {
				t.Errorf("processor got %d requests, want 0", n)
			}
			if kinds := e.auditKinds(); len(kinds) != 0 {
				t.Errorf("audit kinds = %v, want none: nothing was about to be sent", kinds)
			}
			log := e.logText()
			if !strings.Contains(log, tt.wantLog) {
				t.Errorf("log does not name %s:\n%s", tt.wantLog, log)
			}
			if tt.wantCode == CodeSigningFailed {
				// The code only: never the signing package's detail text.
				for _, text := range []string{"which the signature covers", "needs a private key", "v-c-merchant-id"} {
					if strings.Contains(log, text) || strings.Contains(fe.Error(), text) {
						t.Errorf("log or error holds the signing detail %q", text)
					}
				}
			}
			assertNoSecret(t, "log", log, testCybsSecret)
		})
	}
}

// TestSignerCache: one Signer per entry while the credential's value is
// unchanged, a new one after a reload changes it, so the next forward
// signs with the new key.
func TestSignerCache(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cybs-secret")
	if err := os.WriteFile(path, []byte(testCybsSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := credentials.New([]credentials.Spec{{Name: "cybs-secret", Source: credentials.File{Path: path}, Kind: credentials.KindHMACKey}}, credentials.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	sp := cybsSpec("request-target")
	proc := &verifying{v: newVerifier(t, sp, signing.SecretKey([]byte(testCybsSecret)))}
	e := newEnv(t, proc.handler, withCreds(store, "cybs-secret"), withSigning(sp))
	forward := func() int {
		t.Helper()
		r := e.jsonRequest(cardBody)
		r.Headers["V-C-Merchant-Id"] = []string{testMerchantID}
		resp, err := e.f.Forward(context.Background(), r)
		if err != nil {
			t.Fatalf("Forward: %v", err)
		}
		return resp.Status
	}
	cached := func() *signing.Signer {
		e.f.signers.mu.Lock()
		defer e.f.signers.mu.Unlock()
		return e.f.signers.signers["acme"].signer
	}
	if st := forward(); st != http.StatusOK {
		t.Fatalf("first forward: processor answered %d", st)
	}
	first := cached()
	if st := forward(); st != http.StatusOK || cached() != first {
		t.Fatalf("second forward: status %d, signer rebuilt %v; want 200 and the cached signer", st, cached() != first)
	}

	const rotated = "ZZECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	if err := os.WriteFile(path, []byte(rotated+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := store.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	proc.set(newVerifier(t, sp, signing.SecretKey([]byte(rotated))))
	if st := forward(); st != http.StatusOK {
		t.Fatalf("after the rotation: processor answered %d (%v); want the new key used", st, proc.failures())
	}
	if cached() == first {
		t.Error("the signer was not rebuilt after the credential changed")
	}
}
