package vaultclient

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
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

// vaultStandIn is an HTTPS server that answers like Vault's Transit
// secrets engine and the AppRole, cert and token auth methods, as their
// API documentation and source describe them: the JSON envelope
// ({"data": …, "auth": …}), {"errors": […]} bodies with 400, 403, 404,
// 500 and 503, "vault:vN:" + base64(nonce ‖ ciphertext ‖ tag), derived
// keys (HKDF-SHA256 of the version key with the context as info, as
// keysutil does) that need a context, batch_input with per-item errors
// and a 400 when any item fails, min_decryption_version, rotate, rewrap,
// hmac, response-wrapped secret ids, and token TTLs with renew-self.
//
// A real Vault cannot run on the machines these tests run on; this
// stand-in exists for the auth, TLS and error paths. It is not a
// cryptographic reference: the Keyer contract is the same one the local
// keyring and SoftHSM2 pass.
type vaultStandIn struct {
	t      testing.TB
	srv    *httptest.Server
	caFile string
	ca     *testpki.CA

	mu        sync.Mutex
	keys      map[string]*standInKey
	tokens    map[string]*standInToken
	wraps     map[string]string // wrapping token → secret id
	roleID    string
	secretID  string
	certRole  string
	tokenTTL  time.Duration
	tokenMax  time.Duration
	sealed    bool
	fail5xx   int           // answer this many requests with 500 first
	failPath  string        // only requests to this path, if set
	delay     time.Duration // before answering transit calls
	requests  map[string]int
	logins    int
	renewals  int
	lastBody  map[string][]byte // path → last request body
	readOnly  bool              // tokens may not read keys (the gateway's policy)
	noRefEcho bool              // behave like Vault before 1.11: no reference echo
}

type standInKey struct {
	typ        string
	derived    bool
	versions   [][]byte // index v-1
	hmacKeys   [][]byte
	minDecrypt int
}

type standInToken struct {
	expires  time.Time
	maxUntil time.Time
	policies []string
}

func newVaultStandIn(t testing.TB) *vaultStandIn {
	t.Helper()
	ca, err := testpki.NewCA("vault stand-in ca")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(testpki.Leaf{DNSNames: []string{"vault.test"}, IPs: nil})
	if err != nil {
		t.Fatal(err)
	}
	v := &vaultStandIn{
		t: t, ca: ca,
		keys: map[string]*standInKey{}, tokens: map[string]*standInToken{}, wraps: map[string]string{},
		roleID: "gateway-role", secretID: "s3cret-id", certRole: "gateway",
		tokenTTL: time.Hour, tokenMax: 24 * time.Hour,
		requests: map[string]int{}, lastBody: map[string][]byte{},
	}
	v.srv = httptest.NewUnstartedServer(http.HandlerFunc(v.serve))
	// The TLS tests fail handshakes on purpose; keep their noise out.
	v.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	v.srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{leaf.TLS},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    ca.Pool(),
		MinVersion:   tls.VersionTLS12,
	}
	v.srv.StartTLS()
	t.Cleanup(v.srv.Close)
	v.caFile = filepath.Join(t.TempDir(), "vault-ca.pem")
	if err := os.WriteFile(v.caFile, ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return v
}

// config returns a TransitConfig that logs in with AppRole.
func (v *vaultStandIn) config(t testing.TB) TransitConfig {
	t.Helper()
	f := filepath.Join(t.TempDir(), "secret-id")
	if err := os.WriteFile(f, []byte(v.secretID+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return TransitConfig{
		Address:       v.srv.URL,
		CACertFile:    v.caFile,
		TLSServerName: "vault.test",
		Auth:          TransitAuth{Method: TransitAuthAppRole, RoleID: v.roleID, SecretIDFile: f},
	}
}

// rootToken issues a token that never expires, for setup.
func (v *vaultStandIn) rootToken() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	tok := "hvs.root" + strconv.Itoa(len(v.tokens))
	v.tokens[tok] = &standInToken{policies: []string{"root"}}
	return tok
}

func (v *vaultStandIn) count(path string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.requests[path]
}

func (v *vaultStandIn) set(f func(v *vaultStandIn)) {
	v.mu.Lock()
	defer v.mu.Unlock()
	f(v)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

func writeErrors(w http.ResponseWriter, status int, msgs ...string) {
	if msgs == nil {
		msgs = []string{}
	}
	writeJSON(w, status, map[string]any{"errors": msgs})
}

// envelope is Vault's response shape.
func envelope(data map[string]any, auth map[string]any) map[string]any {
	var d, a any
	if data != nil {
		d = data
	}
	if auth != nil {
		a = auth
	}
	return map[string]any{"request_id": "00000000-0000-0000-0000-000000000000", "lease_id": "", "renewable": false,
		"lease_duration": 0, "data": d, "wrap_info": nil, "warnings": nil, "auth": a}
}

func (v *vaultStandIn) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	v.mu.Lock()
	v.requests[path]++
	v.lastBody[path] = body
	sealed, delay := v.sealed, v.delay
	fail := v.fail5xx > 0 && (v.failPath == "" || v.failPath == path)
	if fail {
		v.fail5xx--
	}
	v.mu.Unlock()
	if r.Header.Get("X-Vault-Request") != "true" {
		writeErrors(w, http.StatusPreconditionFailed, "missing X-Vault-Request header")
		return
	}
	if sealed {
		writeErrors(w, http.StatusServiceUnavailable, "Vault is sealed")
		return
	}
	if fail {
		writeErrors(w, http.StatusInternalServerError, "1 error occurred:\n\t* internal error\n\n")
		return
	}
	if delay > 0 && strings.HasPrefix(path, "transit/") {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			// Cut off: send nothing, as a server whose client left does;
			// returning would send an empty 200.
			panic(http.ErrAbortHandler)
		}
	}
	var req map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			writeErrors(w, http.StatusBadRequest, "failed to parse JSON input: "+err.Error()[:10])
			return
		}
	}
	switch {
	case path == "auth/approle/login" && r.Method == http.MethodPut || path == "auth/approle/login" && r.Method == http.MethodPost:
		v.approleLogin(w, req)
		return
	case path == "auth/cert/login":
		v.certLogin(w, r, req)
		return
	case path == "sys/wrapping/unwrap":
		v.unwrap(w, r)
		return
	}
	tok, ok := v.token(r)
	if !ok {
		writeErrors(w, http.StatusForbidden, "permission denied")
		return
	}
	switch {
	case path == "auth/token/lookup-self" && r.Method == http.MethodGet:
		v.mu.Lock()
		ttl := int64(0)
		if !tok.expires.IsZero() {
			ttl = int64(time.Until(tok.expires).Seconds())
		}
		v.mu.Unlock()
		writeJSON(w, http.StatusOK, envelope(map[string]any{"ttl": ttl, "renewable": !tok.expires.IsZero(), "policies": tok.policies}, nil))
	case path == "auth/token/renew-self":
		v.renewSelf(w, r, tok)
	case strings.HasPrefix(path, "transit/"):
		v.transit(w, r, tok, strings.TrimPrefix(path, "transit/"), req)
	default:
		writeErrors(w, http.StatusNotFound)
	}
}

func (v *vaultStandIn) token(r *http.Request) (*standInToken, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	tok, ok := v.tokens[r.Header.Get("X-Vault-Token")]
	if !ok || !tok.expires.IsZero() && time.Now().After(tok.expires) {
		return nil, false
	}
	return tok, true
}

// issue makes a token with the configured TTL; the caller holds mu.
func (v *vaultStandIn) issue(w http.ResponseWriter, policies []string) {
	v.logins++
	tok := fmt.Sprintf("hvs.login%d", v.logins)
	now := time.Now()
	v.tokens[tok] = &standInToken{expires: now.Add(v.tokenTTL), maxUntil: now.Add(v.tokenMax), policies: policies}
	writeJSON(w, http.StatusOK, envelope(nil, map[string]any{
		"client_token": tok, "accessor": "acc" + tok, "policies": policies, "token_policies": policies,
		"lease_duration": int(v.tokenTTL.Seconds()), "renewable": true, "entity_id": "", "token_type": "service", "orphan": true,
	}))
}

func (v *vaultStandIn) approleLogin(w http.ResponseWriter, req map[string]any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if req["role_id"] != v.roleID || req["secret_id"] != v.secretID {
		writeErrors(w, http.StatusBadRequest, "invalid role or secret ID")
		return
	}
	v.issue(w, []string{"default", "cardgate-gateway"})
}

func (v *vaultStandIn) certLogin(w http.ResponseWriter, r *http.Request, req map[string]any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		writeErrors(w, http.StatusBadRequest, "invalid certificate or no client certificate supplied")
		return
	}
	if name, ok := req["name"].(string); ok && name != v.certRole {
		writeErrors(w, http.StatusBadRequest, "invalid certificate or no client certificate supplied")
		return
	}
	v.issue(w, []string{"default", "cardgate-gateway"})
}

func (v *vaultStandIn) unwrap(w http.ResponseWriter, r *http.Request) {
	v.mu.Lock()
	defer v.mu.Unlock()
	wt := r.Header.Get("X-Vault-Token")
	sid, ok := v.wraps[wt]
	if !ok {
		writeErrors(w, http.StatusBadRequest, "wrapping token is not valid or does not exist")
		return
	}
	delete(v.wraps, wt) // single use
	writeJSON(w, http.StatusOK, envelope(map[string]any{"secret_id": sid, "secret_id_accessor": "acc", "secret_id_ttl": 0}, nil))
}

func (v *vaultStandIn) wrapSecretID() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	wt := "hvs.wrap" + strconv.Itoa(len(v.wraps)+v.logins)
	v.wraps[wt] = v.secretID
	return wt
}

func (v *vaultStandIn) renewSelf(w http.ResponseWriter, r *http.Request, tok *standInToken) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if tok.expires.IsZero() {
		writeErrors(w, http.StatusBadRequest, "lease is not renewable")
		return
	}
	v.renewals++
	exp := time.Now().Add(v.tokenTTL)
	if exp.After(tok.maxUntil) {
		exp = tok.maxUntil
	}
	tok.expires = exp
	writeJSON(w, http.StatusOK, envelope(nil, map[string]any{
		"client_token": r.Header.Get("X-Vault-Token"), "policies": tok.policies,
		"lease_duration": int(time.Until(exp).Round(time.Second).Seconds()), "renewable": true,
	}))
}

func (v *vaultStandIn) transit(w http.ResponseWriter, r *http.Request, tok *standInToken, path string, req map[string]any) {
	parts := strings.Split(path, "/")
	v.mu.Lock()
	defer v.mu.Unlock()
	root := len(tok.policies) == 1 && tok.policies[0] == "root"
	switch {
	case len(parts) == 2 && parts[0] == "keys" && r.Method == http.MethodGet:
		if v.readOnly && !root {
			writeErrors(w, http.StatusForbidden, "1 error occurred:\n\t* permission denied\n\n")
			return
		}
		k := v.keys[parts[1]]
		if k == nil {
			writeErrors(w, http.StatusNotFound)
			return
		}
		keys := map[string]any{}
		for i := range k.versions {
			if i+1 >= k.minDecrypt {
				keys[strconv.Itoa(i+1)] = time.Now().Unix()
				if k.typ == "ed25519" {
					// Vault lists an asymmetric key's versions as objects
					// holding the public key (api-docs/secret/transit, read key).
					pub := ed25519.NewKeyFromSeed(k.versions[i]).Public().(ed25519.PublicKey)
					keys[strconv.Itoa(i+1)] = map[string]any{
						"creation_time": time.Now().UTC().Format(time.RFC3339Nano),
						"name":          "ed25519",
						"public_key":    base64.StdEncoding.EncodeToString(pub),
					}
				}
			}
		}
		writeJSON(w, http.StatusOK, envelope(map[string]any{
			"name": parts[1], "type": k.typ, "derived": k.derived, "exportable": false, "deletion_allowed": false,
			"latest_version": len(k.versions), "min_decryption_version": k.minDecrypt, "min_encryption_version": 0,
			"keys": keys, "supports_encryption": true, "supports_decryption": true, "supports_derivation": true,
		}, nil))
	case len(parts) == 2 && parts[0] == "keys" && (r.Method == http.MethodPost || r.Method == http.MethodPut):
		if !root {
			writeErrors(w, http.StatusForbidden, "1 error occurred:\n\t* permission denied\n\n")
			return
		}
		if v.keys[parts[1]] == nil {
			derived, _ := req["derived"].(bool)
			typ, _ := req["type"].(string)
			if typ == "" {
				typ = "aes256-gcm96"
			}
			v.keys[parts[1]] = &standInKey{typ: typ, derived: derived, minDecrypt: 1}
			v.keys[parts[1]].rotate()
		}
		w.WriteHeader(http.StatusNoContent)
	case len(parts) == 3 && parts[0] == "keys" && parts[2] == "rotate":
		k := v.keys[parts[1]]
		if !root || k == nil {
			writeErrors(w, http.StatusForbidden, "1 error occurred:\n\t* permission denied\n\n")
			return
		}
		k.rotate()
		writeJSON(w, http.StatusOK, envelope(map[string]any{"name": parts[1], "latest_version": len(k.versions)}, nil))
	case len(parts) == 3 && parts[0] == "keys" && parts[2] == "config":
		k := v.keys[parts[1]]
		if !root || k == nil {
			writeErrors(w, http.StatusForbidden, "1 error occurred:\n\t* permission denied\n\n")
			return
		}
		if m, ok := req["min_decryption_version"].(float64); ok {
			if int(m) > len(k.versions) {
				writeErrors(w, http.StatusBadRequest, "cannot set min decryption version to a value greater than the latest version")
				return
			}
			k.minDecrypt = int(m)
		}
		w.WriteHeader(http.StatusNoContent)
	case len(parts) == 2 && (parts[0] == "encrypt" || parts[0] == "decrypt" || parts[0] == "rewrap"):
		k := v.keys[parts[1]]
		if k == nil {
			// The gateway's policy has update, not create, on encrypt:
			// Vault refuses the upsert that would create the key.
			if parts[0] == "encrypt" {
				writeErrors(w, http.StatusForbidden, "1 error occurred:\n\t* permission denied\n\n")
			} else {
				writeErrors(w, http.StatusBadRequest, "encryption key not found")
			}
			return
		}
		v.cryptBatch(w, parts[0], k, req)
	case len(parts) == 2 && parts[0] == "sign":
		v.sign(w, v.keys[parts[1]], req)
	case len(parts) == 3 && parts[0] == "hmac":
		k := v.keys[parts[1]]
		if k == nil {
			writeErrors(w, http.StatusBadRequest, "encryption key not found")
			return
		}
		if parts[2] != "sha2-256" {
			writeErrors(w, http.StatusBadRequest, "unsupported algorithm "+parts[2])
			return
		}
		in, err := base64.StdEncoding.DecodeString(fmt.Sprint(req["input"]))
		if err != nil {
			writeErrors(w, http.StatusBadRequest, "unable to decode input as base64: "+err.Error())
			return
		}
		m := hmac.New(sha256.New, k.hmacKeys[len(k.hmacKeys)-1])
		m.Write(in)
		writeJSON(w, http.StatusOK, envelope(map[string]any{
			"hmac": "vault:v" + strconv.Itoa(len(k.hmacKeys)) + ":" + base64.StdEncoding.EncodeToString(m.Sum(nil)),
		}, nil))
	default:
		writeErrors(w, http.StatusNotFound)
	}
}

// sign answers transit/sign/:name as Vault does for an ed25519 key:
// input is base64, key_version 0 (or absent) means the latest, and the
// signature is "vault:v<version>:" + base64 of the 64-byte pure Ed25519
// signature of the input (prehashed is not set; hash_algorithm is
// ignored for ed25519).
func (v *vaultStandIn) sign(w http.ResponseWriter, k *standInKey, req map[string]any) {
	if k == nil {
		writeErrors(w, http.StatusBadRequest, "signing key not found")
		return
	}
	if k.typ != "ed25519" {
		writeErrors(w, http.StatusBadRequest, "key type "+k.typ+" does not support signing")
		return
	}
	in, err := base64.StdEncoding.DecodeString(fmt.Sprint(req["input"]))
	if err != nil {
		writeErrors(w, http.StatusBadRequest, "unable to decode input as base64: "+err.Error())
		return
	}
	ver := len(k.versions)
	if kv, ok := req["key_version"].(float64); ok && kv != 0 {
		ver = int(kv)
	}
	if ver < 1 || ver > len(k.versions) {
		writeErrors(w, http.StatusBadRequest, "requested version for signing does not exist")
		return
	}
	sig := ed25519.Sign(ed25519.NewKeyFromSeed(k.versions[ver-1]), in)
	writeJSON(w, http.StatusOK, envelope(map[string]any{
		"signature":   "vault:v" + strconv.Itoa(ver) + ":" + base64.StdEncoding.EncodeToString(sig),
		"key_version": ver,
	}, nil))
}

func (k *standInKey) rotate() {
	key, hk := make([]byte, 32), make([]byte, 32)
	rand.Read(key)
	rand.Read(hk)
	k.versions = append(k.versions, key)
	k.hmacKeys = append(k.hmacKeys, hk)
}

// aead derives the per-context key as keysutil does for derived keys
// (HKDF-SHA256, the version key as secret, the context as info).
func (k *standInKey) aead(version int, context []byte) (cipher.AEAD, string) {
	key := k.versions[version-1]
	if k.derived {
		if len(context) == 0 {
			return nil, "missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key"
		}
		var err error
		key, err = hkdf.Key(sha256.New, key, nil, string(context), 32)
		if err != nil {
			return nil, err.Error()
		}
	}
	block, _ := aes.NewCipher(key)
	g, _ := cipher.NewGCM(block)
	return g, ""
}

func (k *standInKey) seal(pt, context []byte) (string, int, string) {
	v := len(k.versions)
	g, msg := k.aead(v, context)
	if msg != "" {
		return "", 0, msg
	}
	nonce := make([]byte, 12)
	rand.Read(nonce)
	ct := g.Seal(nonce, nonce, pt, nil)
	return "vault:v" + strconv.Itoa(v) + ":" + base64.StdEncoding.EncodeToString(ct), v, ""
}

// open follows keysutil.Policy.Decrypt's checks and messages.
func (k *standInKey) open(ciphertext string, context []byte) ([]byte, string) {
	rest, ok := strings.CutPrefix(ciphertext, "vault:")
	if !ok {
		return nil, "invalid ciphertext: no prefix"
	}
	parts := strings.SplitN(strings.TrimPrefix(rest, "v"), ":", 2)
	if len(parts) != 2 {
		return nil, "invalid ciphertext: wrong number of fields"
	}
	ver, err := strconv.Atoi(parts[0])
	if err != nil {
		return nil, "invalid ciphertext: version number could not be decoded"
	}
	if ver == 0 {
		ver = 1
	}
	if ver > len(k.versions) {
		return nil, "invalid ciphertext: version is too new"
	}
	if k.minDecrypt > 0 && ver < k.minDecrypt {
		return nil, "ciphertext or signature version is disallowed by policy (too old)"
	}
	raw, err := base64.StdEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, "invalid ciphertext: could not decode base64"
	}
	g, msg := k.aead(ver, context)
	if msg != "" {
		return nil, msg
	}
	if len(raw) < 12+16 {
		return nil, "invalid ciphertext: could not decrypt"
	}
	pt, err := g.Open(nil, raw[:12], raw[12:], nil)
	if err != nil {
		return nil, "cipher: message authentication failed"
	}
	return pt, ""
}

// cryptBatch serves encrypt, decrypt and rewrap, single or batch.
func (v *vaultStandIn) cryptBatch(w http.ResponseWriter, op string, k *standInKey, req map[string]any) {
	raw, batch := req["batch_input"].([]any)
	if !batch {
		raw = []any{req}
	}
	if batch && len(raw) == 0 {
		writeErrors(w, http.StatusBadRequest, "missing batch input to process")
		return
	}
	results := make([]map[string]any, len(raw))
	failed := false
	for i, it := range raw {
		item, _ := it.(map[string]any)
		res := map[string]any{}
		if !v.noRefEcho {
			res["reference"] = item["reference"]
		}
		context, err := base64.StdEncoding.DecodeString(str(item["context"]))
		if err != nil {
			res["error"] = "failed to base64-decode context"
		} else {
			switch op {
			case "encrypt":
				pt, err := base64.StdEncoding.DecodeString(str(item["plaintext"]))
				if err != nil {
					res["error"] = "failed to base64-decode plaintext"
					break
				}
				if ct, kv, msg := k.seal(pt, context); msg != "" {
					res["error"] = msg
				} else {
					res["ciphertext"], res["key_version"] = ct, kv
				}
			case "decrypt":
				if pt, msg := k.open(str(item["ciphertext"]), context); msg != "" {
					res["error"] = msg
				} else {
					res["plaintext"] = base64.StdEncoding.EncodeToString(pt)
				}
			case "rewrap":
				pt, msg := k.open(str(item["ciphertext"]), context)
				if msg == "" {
					var ct string
					var kv int
					if ct, kv, msg = k.seal(pt, context); msg == "" {
						res["ciphertext"], res["key_version"] = ct, kv
					}
				}
				if msg != "" {
					res["error"] = msg
				}
			}
		}
		if res["error"] != nil {
			failed = true
		}
		results[i] = res
	}
	if !batch {
		if msg, ok := results[0]["error"].(string); ok {
			writeErrors(w, http.StatusBadRequest, msg)
			return
		}
		delete(results[0], "reference")
		writeJSON(w, http.StatusOK, envelope(results[0], nil))
		return
	}
	status := http.StatusOK
	if failed {
		// batchRequestResponse: a user error in any item makes the whole
		// answer a 400, whose body still carries batch_results.
		status = http.StatusBadRequest
	}
	writeJSON(w, status, envelope(map[string]any{"batch_results": results}, nil))
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
