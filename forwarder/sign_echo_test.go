package forwarder

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cardgate/cardgate/credentials"
	"github.com/cardgate/cardgate/forwarder/signing"
)

// echoRequestHeaders answers like a careless processor's debugging
// endpoint: every request header back, in the body and as X-Echo-*
// headers, and the body's SHA-256 in hex.
func echoRequestHeaders(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	sum := sha256.Sum256(body)
	js, _ := json.Marshal(map[string]any{"headers": r.Header, "body_sha256": hex.EncodeToString(sum[:])})
	for name, vals := range r.Header {
		w.Header()["X-Echo-"+name] = vals
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(js)
}

// TestSignedValuesNotEchoed: a Digest or Content-Digest is a hash of a
// body that holds the card: a caller who knows its template, the card's
// brand and last four can search the few remaining digits offline. A
// signature lets the caller replay the request around the gateway. A
// processor that echoes them must not hand them to the caller.
func TestSignedValuesNotEchoed(t *testing.T) {
	hmacSpec := signing.Spec{
		Scheme: signing.SchemeHMAC, Credential: "cybs-secret",
		HMAC: &signing.HMACSpec{Hash: "sha256", Parts: []string{"method", "path", "body-sha256-hex", "timestamp"},
			Separator: "\n", Header: "X-Signature", Encoding: "hex", TimestampHeader: "X-Timestamp", TimestampFormat: "unix"},
	}
	tests := []struct {
		name   string
		spec   signing.Spec
		signed []string // headers whose values must not come back
	}{
		{"content-digest", signing.Spec{Scheme: signing.SchemeContentDigest}, []string{"Content-Digest"}},
		{"legacy digest", signing.Spec{Scheme: signing.SchemeDigest}, []string{"Digest"}},
		{"cavage", cybsSpec("request-target"), []string{"Digest", "Signature"}},
		{"rfc 9421 hmac", signing.Spec{
			Scheme: signing.SchemeRFC9421, Credential: "cybs-secret",
			RFC9421: &signing.RFC9421Spec{Algorithm: signing.AlgHMACSHA256, KeyID: "k1", Created: true,
				Components: []string{"@method", "@authority", "@path", "content-digest"}},
		}, []string{"Content-Digest", "Signature"}},
		{"generic hmac", hmacSpec, []string{"X-Signature"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newCredStore(t, cred{name: "cybs-secret", value: testCybsSecret, kind: credentials.KindHMACKey})
			opts := []envOpt{withSigning(tt.spec)}
			if tt.spec.Credential != "" {
				opts = append(opts, withCreds(store, "cybs-secret"))
			}
			e := newEnv(t, echoRequestHeaders, opts...)
			r := e.jsonRequest(cardBody)
			r.Headers["V-C-Merchant-Id"] = []string{testMerchantID}
			resp, err := e.f.Forward(context.Background(), r)
			if err != nil {
				t.Fatalf("Forward: %v", err)
			}
			reqs := e.p.requests()
			if len(reqs) != 1 {
				t.Fatalf("processor got %d requests, want 1", len(reqs))
			}
			raw, _ := json.Marshal(resp)
			sum := sha256.Sum256(reqs[0].body)
			leaks := map[string]string{
				"the body's sha256 (base64)": base64.StdEncoding.EncodeToString(sum[:]),
				"the body's sha256 (hex)":    hex.EncodeToString(sum[:]),
			}
			for _, h := range tt.signed {
				v := reqs[0].header.Get(h)
				if v == "" {
					t.Fatalf("processor got no %s header", h)
				}
				leaks[h] = v
				for _, tok := range strings.FieldsFunc(v, func(r rune) bool { return strings.ContainsRune(` ,;:="`, r) }) {
					if len(tok) >= 16 {
						leaks[fmt.Sprintf("%s token %q", h, tok[:8])] = tok
					}
				}
			}
			for what, v := range leaks {
				if strings.Contains(string(raw), v) {
					t.Errorf("answer holds %s: %s", what, raw)
				}
			}
		})
	}
}
