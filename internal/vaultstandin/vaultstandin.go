// Package vaultstandin is an HTTPS server that answers like HashiCorp
// Vault for what cardgate's tests need outside vaultclient: token auth
// (X-Vault-Token), AppRole login, auth/token/lookup-self and renew-self,
// and the KV version 2 secrets engine (read, write, delete and destroy of
// versioned secrets), with Vault's documented paths, JSON envelope,
// status codes and {"errors": […]} bodies.
//
// A real Vault cannot run where the tests run, so this stand-in follows
// the published API (developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2
// and /auth/approle) and the KV plugin's read handler: a missing secret or
// version is a 404 with an empty errors list, and a deleted or destroyed
// version is a 404 that still carries its metadata. It is for tests only.
//
// vaultclient's Transit stand-in (transitstandin_test.go) predates this
// package and keeps its own copy of the auth half; the two can merge by
// mounting Transit here.
package vaultstandin

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardgate/cardgate/internal/testpki"
)

// ServerName is the name in the stand-in's certificate.
const ServerName = "vault.test"

// Server is a running stand-in. Its fields are fixed after New.
type Server struct {
	URL    string // https://127.0.0.1:PORT
	CAFile string // PEM file of the CA that issued the server certificate
	// RoleID and SecretID are the AppRole credentials that log in.
	RoleID, SecretID string

	srv *httptest.Server

	mu       sync.Mutex
	tokens   map[string]*token
	mounts   map[string]*kvMount
	denied   map[string]bool // paths non-root tokens may not read
	sealed   bool
	tokenTTL time.Duration
	logins   int
	requests map[string]int // "METHOD path" → count
}

type token struct {
	expires time.Time // zero: never
	root    bool
}

// New starts a stand-in with no mounts; it stops when t ends.
func New(t testing.TB) *Server {
	t.Helper()
	ca, err := testpki.NewCA("vault stand-in ca")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(testpki.Leaf{DNSNames: []string{ServerName}})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{
		RoleID: "gateway-role", SecretID: "gateway-secret-id",
		tokens: map[string]*token{}, mounts: map[string]*kvMount{}, denied: map[string]bool{},
		tokenTTL: time.Hour, requests: map[string]int{},
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MinVersion: tls.VersionTLS12}
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	s.CAFile = filepath.Join(t.TempDir(), "vault-ca.pem")
	if err := os.WriteFile(s.CAFile, ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// SecretIDFile writes the AppRole secret id to a new file, as a delivery
// agent would, and returns its path.
func (s *Server) SecretIDFile(t testing.TB) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "secret-id")
	if err := os.WriteFile(f, []byte(s.SecretID+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// RootToken issues a token that never expires and may do anything.
func (s *Server) RootToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	tok := "hvs.root" + strconv.Itoa(len(s.tokens))
	s.tokens[tok] = &token{root: true}
	return tok
}

// Token issues a non-root token that expires after ttl (0: never).
func (s *Server) Token(ttl time.Duration) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	tok := "hvs.tok" + strconv.Itoa(len(s.tokens))
	t := &token{}
	if ttl > 0 {
		t.expires = time.Now().Add(ttl)
	}
	s.tokens[tok] = t
	return tok
}

// Seal makes every request answer 503, as a sealed Vault does.
func (s *Server) Seal(sealed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sealed = sealed
}

// Deny makes reads of path (for example "secret/data/acme") answer 403
// to non-root tokens, as a policy without read on it would.
func (s *Server) Deny(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied[path] = true
}

// Requests counts the requests for "METHOD path" (path without /v1/).
func (s *Server) Requests(methodPath string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[methodPath]
}

// Logins counts successful logins.
func (s *Server) Logins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// writeErrors answers Vault's error shape; msgs may be empty, as Vault's
// 404 for a missing secret is.
func writeErrors(w http.ResponseWriter, status int, msgs ...string) {
	if msgs == nil {
		msgs = []string{}
	}
	writeJSON(w, status, map[string]any{"errors": msgs})
}

// envelope is Vault's response shape.
func envelope(data, auth any) map[string]any {
	return map[string]any{"request_id": "00000000-0000-0000-0000-000000000000", "lease_id": "", "renewable": false,
		"lease_duration": 0, "data": data, "wrap_info": nil, "warnings": nil, "auth": auth, "mount_type": "kv"}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	path, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	s.mu.Lock()
	s.requests[r.Method+" "+path]++
	sealed := s.sealed
	s.mu.Unlock()
	if !ok {
		writeErrors(w, http.StatusNotFound)
		return
	}
	if sealed {
		writeErrors(w, http.StatusServiceUnavailable, "Vault is sealed")
		return
	}
	var req map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			writeErrors(w, http.StatusBadRequest, "failed to parse JSON input")
			return
		}
	}
	if path == "auth/approle/login" && (r.Method == http.MethodPost || r.Method == http.MethodPut) {
		s.approleLogin(w, req)
		return
	}
	tok, ok := s.token(r)
	if !ok {
		writeErrors(w, http.StatusForbidden, "permission denied")
		return
	}
	switch {
	case path == "auth/token/lookup-self" && r.Method == http.MethodGet:
		s.lookupSelf(w, tok)
	case path == "auth/token/renew-self" && (r.Method == http.MethodPost || r.Method == http.MethodPut):
		s.renewSelf(w, r, tok)
	default:
		s.kv(w, r, tok, path, req)
	}
}

func (s *Server) token(r *http.Request) (*token, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[r.Header.Get("X-Vault-Token")]
	if !ok || !t.expires.IsZero() && time.Now().After(t.expires) {
		return nil, false
	}
	return t, true
}

func (s *Server) approleLogin(w http.ResponseWriter, req map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if req["role_id"] != s.RoleID || req["secret_id"] != s.SecretID {
		writeErrors(w, http.StatusBadRequest, "invalid role or secret ID")
		return
	}
	s.logins++
	tok := fmt.Sprintf("hvs.login%d", s.logins)
	s.tokens[tok] = &token{expires: time.Now().Add(s.tokenTTL)}
	policies := []string{"default", "cardgate-gateway"}
	writeJSON(w, http.StatusOK, envelope(nil, map[string]any{
		"client_token": tok, "accessor": "acc" + tok, "policies": policies, "token_policies": policies,
		"lease_duration": int(s.tokenTTL.Seconds()), "renewable": true, "entity_id": "", "token_type": "service", "orphan": true,
	}))
}

func (s *Server) lookupSelf(w http.ResponseWriter, t *token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ttl := int64(0)
	if !t.expires.IsZero() {
		ttl = int64(time.Until(t.expires).Seconds())
	}
	writeJSON(w, http.StatusOK, envelope(map[string]any{"ttl": ttl, "renewable": !t.expires.IsZero()}, nil))
}

func (s *Server) renewSelf(w http.ResponseWriter, r *http.Request, t *token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.expires.IsZero() {
		writeErrors(w, http.StatusBadRequest, "lease is not renewable")
		return
	}
	t.expires = time.Now().Add(s.tokenTTL)
	writeJSON(w, http.StatusOK, envelope(nil, map[string]any{
		"client_token": r.Header.Get("X-Vault-Token"), "lease_duration": int(s.tokenTTL.Seconds()), "renewable": true,
	}))
}
