package signing

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// failingSigner stands in for an HSM that refuses to sign.
type failingSigner struct{ pub crypto.PublicKey }

func (f failingSigner) Public() crypto.PublicKey { return f.pub }
func (failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("pkcs11: CKR_DEVICE_ERROR")
}

// A Sign that fails leaves the request exactly as it was: no Date, no
// digest, no half a signature.
func TestSignFailureLeavesRequest(t *testing.T) {
	edKey := privateKey(t, "rfc9421-b14-ed25519.pem")
	missing := chargeSpec(AlgEd25519)
	missing.RFC9421.Components = append(missing.RFC9421.Components, "x-merchant-id")
	badCavage := cybsSpec()
	tests := []struct {
		name string
		spec Spec
		key  Key
		want string
	}{
		{"rfc9421 covered header absent", missing, PrivateKey(edKey), CodeComponentMissing},
		{"rfc9421 key refuses", chargeSpec(AlgEd25519), PrivateKey(failingSigner{edKey.Public()}), CodeKeyFailed},
		{"cavage covered header absent", badCavage, SecretKey([]byte(cybsSecret)), CodeComponentMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, body := chargeRequest(t)
			before := req.Header.Clone()
			err := mustSigner(t, tt.spec, tt.key).Sign(req, body, rfcNow)
			if code(err) != tt.want {
				t.Fatalf("Sign = %v, want code %q", err, tt.want)
			}
			if diff := cmp.Diff(before, req.Header); diff != "" {
				t.Errorf("headers changed by a failed Sign (-before +after):\n%s", diff)
			}
			if strings.Contains(err.Error(), "4242") {
				t.Errorf("error %q quotes the body", err)
			}
		})
	}
}

// Sign refuses a body it would not cover, and a body that is not the one
// the request sends; it never changes the body.
func TestSignBodyRules(t *testing.T) {
	getOnlyRFC := Spec{Scheme: SchemeRFC9421, Credential: "k", RFC9421: &RFC9421Spec{Algorithm: AlgHMACSHA256, KeyID: "k", Components: []string{"@method", "@path"}}}
	getOnlyCavage := cybsSpec()
	getOnlyCavage.Cavage.Headers = []string{"host", "date", "request-target"}
	getOnlyHMAC := hmacSpec(HMACSpec{Hash: "sha256", Parts: []string{"method", "path"}, Header: "X-Sig", Encoding: "hex"})
	tests := []struct {
		name   string
		spec   Spec
		mutate func(*http.Request)
		want   string
	}{
		{"rfc9421 without content-digest", getOnlyRFC, nil, CodeBodyMismatch},
		{"cavage without digest", getOnlyCavage, nil, CodeBodyMismatch},
		{"hmac without a body part", getOnlyHMAC, nil, CodeBodyMismatch},
		{"ContentLength short", chargeSpec(AlgHMACSHA256), func(r *http.Request) { r.ContentLength-- }, CodeBodyMismatch},
		{"ContentLength unknown", chargeSpec(AlgHMACSHA256), func(r *http.Request) { r.ContentLength = -1 }, CodeBodyMismatch},
		{"covered and consistent", chargeSpec(AlgHMACSHA256), nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, body := chargeRequest(t)
			req.Header.Set("V-C-Merchant-Id", "m")
			if tt.mutate != nil {
				tt.mutate(req)
			}
			orig := bytes.Clone(body)
			if err := mustSigner(t, tt.spec, SecretKey([]byte(cybsSecret))).Sign(req, body, rfcNow); code(err) != tt.want {
				t.Errorf("Sign = %v, want code %q", err, tt.want)
			}
			if !bytes.Equal(body, orig) {
				t.Error("Sign changed the body")
			}
		})
	}
}

// The headers a scheme sets replace any the caller sent, under any
// spelling, so exactly one value goes on the wire; Date is set only when
// covered and absent.
func TestSignHeaders(t *testing.T) {
	req, body := chargeRequest(t)
	req.Header["content-digest"] = []string{"sha-256=:AAAA:"}
	req.Header["SIGNATURE"] = []string{"sig1=:AAAA:"}
	req.Header.Set("Signature-Input", `sig1=();keyid="forged"`)
	req.Header.Set("Date", "Mon, 01 Jan 2024 00:00:00 GMT")
	if err := mustSigner(t, chargeSpec(AlgHMACSHA256), SecretKey([]byte("k"))).Sign(req, body, rfcNow); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Content-Digest", "Signature", "Signature-Input"} {
		n := 0
		for k, v := range req.Header {
			if strings.EqualFold(k, name) {
				n += len(v)
				if k != name {
					t.Errorf("%s left under the spelling %q", name, k)
				}
			}
		}
		if n != 1 {
			t.Errorf("%s has %d values, want 1", name, n)
		}
	}
	if got := req.Header.Get("Date"); got != "Mon, 01 Jan 2024 00:00:00 GMT" {
		t.Errorf("Date = %q, want the request's own kept", got)
	}

	req, body = chargeRequest(t)
	spec := chargeSpec(AlgHMACSHA256)
	spec.RFC9421.Components = spec.RFC9421.Components[:5] // no date
	if err := mustSigner(t, spec, SecretKey([]byte("k"))).Sign(req, body, rfcNow); err != nil {
		t.Fatal(err)
	}
	if got := req.Header.Get("Date"); got != "" {
		t.Errorf("Date = %q, want none when not covered", got)
	}
}

// Changing the Spec's slices after New does not change what is signed.
func TestNewCopiesSpec(t *testing.T) {
	spec := chargeSpec(AlgHMACSHA256)
	s := mustSigner(t, spec, SecretKey([]byte("k")))
	spec.RFC9421.Components[0] = "x-other"
	req, body := chargeRequest(t)
	if err := s.Sign(req, body, rfcNow); err != nil {
		t.Fatal(err)
	}
	if got := req.Header.Get("Signature-Input"); !strings.HasPrefix(got, `sig1=("@method"`) {
		t.Errorf("Signature-Input = %q; the caller's later edit leaked in", got)
	}
}

// No way of printing a Key, Signer or Verifier shows the secret.
func TestKeyMasked(t *testing.T) {
	secret := []byte("TOPSECRETVALUE-1234")
	_, edPriv, _ := ed25519.GenerateKey(nil)
	key := SecretKey(secret)
	spec := hmacSpec(HMACSpec{Hash: "sha256", Parts: []string{"body"}, Header: "X-Sig", Encoding: "hex"})
	s := mustSigner(t, spec, key)
	v := mustVerifier(t, spec, key)
	edKey := PrivateKey(edPriv)
	var out bytes.Buffer
	for _, x := range []any{key, &key, s, v, edKey} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q"} {
			fmt.Fprintf(&out, verb+"\n", x)
		}
		j, _ := json.Marshal(x)
		out.Write(j)
		slog.New(slog.NewJSONHandler(&out, nil)).Info("m", "x", x)
		slog.New(slog.NewTextHandler(&out, nil)).Info("m", "x", x)
	}
	text := out.String()
	for _, leak := range []string{string(secret), hex.EncodeToString(secret), fmt.Sprintf("%X", secret), strings.Trim(fmt.Sprint([]byte(secret)[:4]), "[]"), hex.EncodeToString(edPriv.Seed()[:8])} {
		if strings.Contains(text, leak) {
			t.Errorf("output holds %q:\n%s", leak, text)
		}
	}
	if !strings.Contains(text, "masked") {
		t.Errorf("no mask printed:\n%s", text)
	}
}

// One Signer signs from many goroutines at once (run with -race).
func TestSignConcurrent(t *testing.T) {
	edKey := privateKey(t, "rfc9421-b14-ed25519.pem")
	specs := map[string]struct {
		spec Spec
		key  Key
	}{
		"rfc9421": {chargeSpec(AlgEd25519), PrivateKey(edKey)},
		"cavage":  {cybsSpec(), SecretKey([]byte(cybsSecret))},
	}
	for name, sk := range specs {
		t.Run(name, func(t *testing.T) {
			s := mustSigner(t, sk.spec, sk.key)
			var wg sync.WaitGroup
			sigs := make([]string, 16)
			for i := range sigs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					req, body := chargeRequest(t)
					req.Header.Set("V-C-Merchant-Id", "m")
					if err := s.Sign(req, body, rfcNow); err != nil {
						t.Error(err)
					}
					sigs[i] = req.Header.Get("Signature")
				}()
			}
			wg.Wait()
			for _, sig := range sigs[1:] {
				if sig != sigs[0] || sig == "" {
					t.Fatalf("deterministic signatures differ across goroutines: %q vs %q", sig, sigs[0])
				}
			}
		})
	}
}
