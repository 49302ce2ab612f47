package credentials

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/cardgate/cardgate/internal/vaultstandin"
	"github.com/cardgate/cardgate/vaultclient"
)

// vaultSession logs in to the stand-in with AppRole through vaultclient,
// as the gateway does.
func vaultSession(t *testing.T, v *vaultstandin.Server) *api.Client {
	t.Helper()
	sess, err := vaultclient.OpenVaultSession(context.Background(), vaultclient.TransitConfig{
		Address: v.URL, CACertFile: v.CAFile, TLSServerName: vaultstandin.ServerName, Timeout: 2 * time.Second,
		Auth: vaultclient.TransitAuth{Method: vaultclient.TransitAuthAppRole, RoleID: v.RoleID, SecretIDFile: v.SecretIDFile(t)},
	})
	if err != nil {
		t.Fatalf("OpenVaultSession() = %v", err)
	}
	t.Cleanup(func() { sess.Close() })
	return sess.Client()
}

func TestVaultSource(t *testing.T) {
	v := vaultstandin.New(t)
	v.EnableKV2("secret")
	v.EnableKV2("kv/processors")
	v.Put("secret", "acme", map[string]any{"api_key": "sk_live_v1", "other": "x"})
	v.Put("secret", "acme", map[string]any{"api_key": "sk_live_v2"})
	v.Put("kv/processors", "cybersource/merchant-1", map[string]any{"shared_secret": "c2hhcmVkLXNlY3JldC0zMi1ieXRlcy1sb25nLi4uLi4=", "escaped": "a\"b\\c\u00e9\U0001F600"})
	v.Put("secret", "deleted", map[string]any{"k": "v1"})
	v.Put("secret", "deleted", map[string]any{"k": "v2"})
	v.Delete("secret", "deleted")
	v.Put("secret", "destroyed", map[string]any{"k": "v1"})
	v.Destroy("secret", "destroyed", 1)
	v.Put("secret", "typed", map[string]any{"n": 42, "obj": map[string]any{"a": "b"}, "empty": ""})
	v.Put("secret", "denied", map[string]any{"k": "v"})
	v.Deny("secret/data/denied")
	client := vaultSession(t, v)

	tests := []struct {
		name        string
		src         VaultKV
		enc         Encoding
		kind        Kind
		want        string
		wantVersion int
		wantErr     error
	}{
		{"latest", VaultKV{Mount: "secret", Path: "acme", Key: "api_key"}, "", "", "sk_live_v2", 2, nil},
		{"pinned", VaultKV{Mount: "secret", Path: "acme", Key: "api_key", Version: 1}, "", "", "sk_live_v1", 1, nil},
		{"nested mount and path, base64 hmac key", VaultKV{Mount: "kv/processors", Path: "cybersource/merchant-1", Key: "shared_secret"}, EncodingBase64, KindHMACKey, "shared-secret-32-bytes-long.....", 1, nil},
		{"json escapes", VaultKV{Mount: "kv/processors", Path: "cybersource/merchant-1", Key: "escaped"}, "", "", "a\"b\\c\u00e9\U0001F600", 1, nil},
		{"missing secret", VaultKV{Mount: "secret", Path: "nope", Key: "k"}, "", "", "", 0, ErrVaultNotFound},
		{"missing version", VaultKV{Mount: "secret", Path: "acme", Key: "api_key", Version: 9}, "", "", "", 0, ErrVaultNotFound},
		{"key not in the data", VaultKV{Mount: "secret", Path: "acme", Key: "other"}, "", "", "", 0, ErrVaultNotFound},
		{"key in an older version only", VaultKV{Mount: "secret", Path: "acme", Key: "other", Version: 1}, "", "", "x", 1, nil},
		{"latest version deleted", VaultKV{Mount: "secret", Path: "deleted", Key: "k"}, "", "", "", 0, ErrVaultNotFound},
		{"older version of a deleted secret", VaultKV{Mount: "secret", Path: "deleted", Key: "k", Version: 1}, "", "", "v1", 1, nil},
		{"destroyed version", VaultKV{Mount: "secret", Path: "destroyed", Key: "k"}, "", "", "", 0, ErrVaultNotFound},
		{"no such mount", VaultKV{Mount: "nomount", Path: "acme", Key: "k"}, "", "", "", 0, ErrVaultNotFound},
		{"number, not a string", VaultKV{Mount: "secret", Path: "typed", Key: "n"}, "", "", "", 0, ErrInvalid},
		{"object, not a string", VaultKV{Mount: "secret", Path: "typed", Key: "obj"}, "", "", "", 0, ErrInvalid},
		{"empty string", VaultKV{Mount: "secret", Path: "typed", Key: "empty"}, "", "", "", 0, ErrEmpty},
		{"policy denies", VaultKV{Mount: "secret", Path: "denied", Key: "k"}, "", "", "", 0, ErrVaultDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New([]Spec{{Name: "cred", Source: tt.src, Encoding: tt.enc, Kind: tt.kind}}, Options{Vault: client})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Reload(context.Background())
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), "credentials: cred (vault): ") {
					t.Fatalf("Reload() = %v, want %v naming the credential", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Reload() = %v", err)
			}
			sec, _ := s.Get("cred")
			if got := string(sec.Reveal()); got != tt.want || sec.Version() != tt.wantVersion {
				t.Errorf("Get() = %q version %d, want %q version %d", got, sec.Version(), tt.want, tt.wantVersion)
			}
		})
	}
}

// TestVaultFollowsVersions: without a pinned version, a reload reads the
// new latest version and the store says which version it holds.
func TestVaultFollowsVersions(t *testing.T) {
	v := vaultstandin.New(t)
	v.EnableKV2("secret")
	v.Put("secret", "acme", map[string]any{"api_key": "sk_live_first"})
	var logs bytes.Buffer
	s := mustStore(t, []Spec{{Name: "acme-live-key", Source: VaultKV{Mount: "secret", Path: "acme", Key: "api_key"}}},
		Options{Vault: vaultSession(t, v), Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	sec, _ := s.Get("acme-live-key")
	if string(sec.Reveal()) != "sk_live_first" || sec.Version() != 1 {
		t.Fatalf("first load = version %d", sec.Version())
	}

	v.Put("secret", "acme", map[string]any{"api_key": "sk_live_second"})
	if err := s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	sec, _ = s.Get("acme-live-key")
	if string(sec.Reveal()) != "sk_live_second" || sec.Version() != 2 {
		t.Errorf("after reload: version %d, want the second value at version 2", sec.Version())
	}
	st := s.Status()
	if len(st.Credentials) != 1 || st.Credentials[0].Version != 2 || st.Credentials[0].Source != SourceVault {
		t.Errorf("Status().Credentials = %+v, want version 2 from vault", st.Credentials)
	}
	if !strings.Contains(logs.String(), `{"name":"acme-live-key","source":"vault","version":2,"changed":true}`) {
		t.Errorf("log = %s, want the version loaded", logs.String())
	}
	js, _ := json.Marshal(st)
	for _, out := range []string{logs.String(), string(js)} {
		if strings.Contains(out, "sk_live") {
			t.Errorf("%s holds a value", out)
		}
	}

	// Vault down: the reload fails and version 2 stays.
	v.Seal(true)
	err := s.Reload(context.Background())
	if !errors.Is(err, ErrVaultUnavailable) {
		t.Errorf("Reload() with Vault sealed = %v, want ErrVaultUnavailable", err)
	}
	if sec, _ := s.Get("acme-live-key"); sec.Version() != 2 {
		t.Errorf("after a failed reload: version %d, want 2", sec.Version())
	}
}

// TestVaultWatchFollows: Watch's Vault timer picks up a new version with
// no file change and no signal.
func TestVaultWatchFollows(t *testing.T) {
	v := vaultstandin.New(t)
	v.EnableKV2("secret")
	v.Put("secret", "acme", map[string]any{"api_key": "one"})
	s := mustStore(t, []Spec{{Name: "a", Source: VaultKV{Mount: "secret", Path: "acme", Key: "api_key"}}},
		Options{Vault: vaultSession(t, v), VaultPollInterval: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Watch(ctx)
	v.Put("secret", "acme", map[string]any{"api_key": "two"})
	waitFor(t, s, "a", "two")
}

// TestVaultToken: the token is what Vault checks; a client with a wrong
// or expired token is refused.
func TestVaultToken(t *testing.T) {
	v := vaultstandin.New(t)
	v.EnableKV2("secret")
	v.Put("secret", "acme", map[string]any{"k": "v"})
	client := vaultSession(t, v)
	for _, tt := range []struct {
		name  string
		token string
		want  error
	}{
		{"root token", v.RootToken(), nil},
		{"wrong token", "hvs.wrong", ErrVaultDenied},
		{"expired token", v.Token(time.Nanosecond), ErrVaultDenied},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := client.Clone()
			if err != nil {
				t.Fatal(err)
			}
			c.SetToken(tt.token)
			time.Sleep(time.Millisecond)
			s, err := New([]Spec{{Name: "a", Source: VaultKV{Mount: "secret", Path: "acme", Key: "k"}}}, Options{Vault: c})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Reload(context.Background()); !errors.Is(err, tt.want) && (err != nil || tt.want != nil) {
				t.Errorf("Reload() = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVaultSpecChecks(t *testing.T) {
	c, err := api.NewClient(&api.Config{Address: "https://vault.test:8200"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		src  VaultKV
	}{
		{"empty mount", VaultKV{Path: "p", Key: "k"}},
		{"dot-dot path", VaultKV{Mount: "secret", Path: "../sys/raw", Key: "k"}},
		{"query in path", VaultKV{Mount: "secret", Path: "p?version=1", Key: "k"}},
		{"leading slash", VaultKV{Mount: "/secret", Path: "p", Key: "k"}},
		{"empty key", VaultKV{Mount: "secret", Path: "p"}},
		{"negative version", VaultKV{Mount: "secret", Path: "p", Key: "k", Version: -1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New([]Spec{{Name: "a", Source: tt.src}}, Options{Vault: c}); !errors.Is(err, ErrBadSpec) {
				t.Errorf("New() = %v, want ErrBadSpec", err)
			}
		})
	}
}

// TestVaultBadAnswers covers answers a real Vault does not give but a
// proxy or load balancer in front of it might: each is refused, and no
// byte of the answer reaches the error.
func TestVaultBadAnswers(t *testing.T) {
	const canary = "LEAKCANARY"
	answers := map[string]struct {
		status int
		body   string
	}{
		"/v1/secret/data/html":      {http.StatusBadGateway, "<html>" + canary + "</html>"},
		"/v1/secret/data/notjson":   {http.StatusOK, "{" + canary},
		"/v1/secret/data/huge":      {http.StatusOK, `{"data":{"data":{"k":"` + strings.Repeat("a", maxVaultResponse) + `"}}}`},
		"/v1/secret/data/noversion": {http.StatusOK, `{"data":{"data":{"k":"` + canary + `"},"metadata":{}}}`},
		"/v1/secret/data/mismatch":  {http.StatusOK, `{"data":{"data":{"k":"` + canary + `"},"metadata":{"version":3}}}`},
		"/v1/secret/data/nodata":    {http.StatusOK, `{"data":null}`},
		"/v1/secret/data/errors":    {http.StatusInternalServerError, `{"errors":["internal error"]}`},
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := answers[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	defer srv.Close()
	client, err := api.NewClient(&api.Config{Address: srv.URL, HttpClient: srv.Client(), MaxRetries: 0})
	if err != nil {
		t.Fatal(err)
	}
	client.SetToken("hvs.test")
	for _, tt := range []struct {
		path    string
		version int
		want    error
	}{
		{"html", 0, ErrVaultUnavailable},
		{"notjson", 0, ErrVaultUnavailable},
		{"huge", 0, ErrVaultUnavailable},
		{"noversion", 0, ErrVaultUnavailable},
		{"mismatch", 1, ErrVaultUnavailable},
		{"nodata", 0, ErrVaultNotFound},
		{"errors", 0, ErrVaultUnavailable},
	} {
		t.Run(tt.path, func(t *testing.T) {
			s, err := New([]Spec{{Name: "a", Source: VaultKV{Mount: "secret", Path: tt.path, Key: "k", Version: tt.version}}}, Options{Vault: client})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Reload(context.Background())
			if !errors.Is(err, tt.want) {
				t.Fatalf("Reload() = %v, want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), canary) {
				t.Errorf("Reload() = %q quotes the answer", err)
			}
		})
	}
}
