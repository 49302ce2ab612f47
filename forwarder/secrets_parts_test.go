package forwarder

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// echoBasicParts answers like a processor whose error names the Basic
// auth user and password it got, separately: "No such API key: sk_…",
// "wrong password for MERCHANT". Each part is a secret on its own, the
// password above all.
func echoBasicParts(w http.ResponseWriter, r *http.Request) {
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(r.Header.Get("Authorization"), "Basic "))
	user, pass, _ := strings.Cut(string(raw), ":")
	js, _ := json.Marshal(map[string]string{
		"user":        user,
		"password":    pass,
		"user_base64": base64.StdEncoding.EncodeToString([]byte(user)),
		"pass_base64": base64.StdEncoding.EncodeToString([]byte(pass)),
	})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Echo-Password", pass)
	w.WriteHeader(http.StatusUnauthorized)
	w.Write(js)
}

// TestSecretBasicPartsMasked: a Basic auth credential ("user:password",
// or Stripe's "key:") is masked in the answer whole and part by part.
func TestSecretBasicPartsMasked(t *testing.T) {
	const login = "MERCHANTCODE7:xml-pass-word-9"
	tests := []struct {
		name, value string
		secrets     []string
	}{
		{"stripe key as the user", testBasicUser, []string{strings.TrimSuffix(testBasicUser, ":")}},
		{"user and password", login, []string{"MERCHANTCODE7", "xml-pass-word-9"}},
		{"password with a colon", "merchant-user:pa:ss:word", []string{"merchant-user", "pa:ss:word"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newCredStore(t, cred{name: "acme-basic", value: tt.value})
			e := newEnv(t, echoBasicParts, withCreds(store, "acme-basic"))
			r := e.jsonRequest(cardBody)
			r.Headers["Authorization"] = []string{"Basic {{secret.acme-basic | base64}}"}
			resp, err := e.f.Forward(context.Background(), r)
			if err != nil {
				t.Fatalf("Forward: %v", err)
			}
			if n := len(e.p.requests()); n != 1 {
				t.Fatalf("processor got %d requests, want 1", n)
			}
			raw, _ := json.Marshal(resp)
			assertNoSecret(t, "answer", string(raw), tt.secrets...)
			for _, s := range tt.secrets {
				if b64 := base64.StdEncoding.EncodeToString([]byte(s)); strings.Contains(string(raw), b64) {
					t.Errorf("answer holds the base64 of a part of the credential: %s", raw)
				}
			}
			if !strings.Contains(resp.Body, "[secret.acme-basic]") {
				t.Errorf("answer body = %s, want the parts masked as [secret.acme-basic]", resp.Body)
			}
		})
	}
}
