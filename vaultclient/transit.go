package vaultclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
)

// TransitBackend is KeyID.Backend for the Vault Transit backend.
const TransitBackend = "transit"

// Transit authentication methods.
const (
	TransitAuthAppRole = "approle"
	TransitAuthCert    = "cert"
	TransitAuthToken   = "token"
)

// Defaults for TransitConfig.
const (
	DefaultTransitMount          = "transit"
	DefaultTransitKey            = "cardgate-card"
	DefaultTransitFingerprintKey = "cardgate-fingerprint"
	// DefaultTransitTimeout bounds each HTTP request to Vault, retries
	// included; the caller's deadline wins if it is earlier.
	DefaultTransitTimeout = 2 * time.Second
	// DefaultTransitMaxRetries is how often an idempotent call is retried
	// after a connection error or a 5xx.
	DefaultTransitMaxRetries = 2
	// maxTransitResponse bounds what is read from Vault.
	maxTransitResponse = 4 << 20
	// transitReloginWait is the pause between failed logins.
	transitReloginWait = 5 * time.Second
)

// TransitAuth says how the gateway logs in to Vault.
type TransitAuth struct {
	// Method is TransitAuthAppRole, TransitAuthCert or TransitAuthToken.
	Method string
	// Mount is the auth method's mount path. "" means the method's name.
	Mount string
	// RoleID is the AppRole role id (not secret on its own).
	RoleID string
	// SecretIDFile holds the AppRole secret id, or with SecretIDWrapped
	// a response-wrapping token that unwraps to it once. It is read at
	// every login, so a delivery agent can replace it.
	SecretIDFile    string
	SecretIDWrapped bool
	// CertRole names the cert auth role; "" lets Vault match any role
	// whose certificate the client's matches. The client certificate is
	// TransitConfig.ClientCert.
	CertRole string
	// Token is a Vault token for TransitAuthToken: for operators' tools
	// and development. It is renewed if renewable but cannot be replaced
	// when it expires.
	Token string
}

// TransitConfig locates Vault (or OpenBao) and names the keys. Every zero
// optional field means its documented default.
type TransitConfig struct {
	// Address is Vault's https URL. Required; http is refused.
	Address string
	// Namespace is the Vault Enterprise namespace, if any.
	Namespace string
	// Mount is the Transit mount path. "" means DefaultTransitMount.
	Mount string
	// Key is the card key: aes256-gcm96 with derived: true. "" means
	// DefaultTransitKey.
	Key string
	// FingerprintKey is the separate key used with transit/hmac. "" means
	// DefaultTransitFingerprintKey. It must never be rotated: a new
	// version would give every card a new fingerprint.
	FingerprintKey string
	// CACertFile is the PEM bundle that issued Vault's certificate. ""
	// means the system roots. Verification is never off.
	CACertFile string
	// ClientCertFile and ClientKeyFile are the gateway's TLS client
	// certificate: required for TransitAuthCert, optional otherwise
	// (mutual TLS to Vault).
	ClientCertFile string
	ClientKeyFile  string
	// TLSServerName overrides the name checked in Vault's certificate.
	TLSServerName string
	// Timeout bounds each request. 0 means DefaultTransitTimeout.
	Timeout time.Duration
	// MaxRetries bounds retries of idempotent calls. 0 means
	// DefaultTransitMaxRetries; negative means none.
	MaxRetries int
	Auth       TransitAuth
	// Logger receives login and renewal events, never bodies or tokens.
	// nil discards.
	Logger *slog.Logger
}

func (c TransitConfig) withDefaults() (TransitConfig, error) {
	if c.Address == "" {
		return c, errors.New("vaultclient: transit: address is required")
	}
	if !strings.HasPrefix(c.Address, "https://") {
		return c, errors.New("vaultclient: transit: address must be an https:// URL; card keys are never reached in clear")
	}
	if c.Mount == "" {
		c.Mount = DefaultTransitMount
	}
	if c.Key == "" {
		c.Key = DefaultTransitKey
	}
	if c.FingerprintKey == "" {
		c.FingerprintKey = DefaultTransitFingerprintKey
	}
	if c.Key == c.FingerprintKey {
		return c, errors.New("vaultclient: transit: the card and fingerprint keys must differ")
	}
	for _, s := range []string{c.Mount, c.Key, c.FingerprintKey, c.Auth.Mount} {
		if strings.ContainsAny(s, "?#% ") || strings.Contains(s, "..") {
			return c, fmt.Errorf("vaultclient: transit: %q is not a valid mount or key name", s)
		}
	}
	switch {
	case c.Timeout == 0:
		c.Timeout = DefaultTransitTimeout
	case c.Timeout < 0:
		return c, fmt.Errorf("vaultclient: transit: timeout %v is negative", c.Timeout)
	}
	switch {
	case c.MaxRetries == 0:
		c.MaxRetries = DefaultTransitMaxRetries
	case c.MaxRetries < 0:
		c.MaxRetries = 0
	}
	if (c.ClientCertFile == "") != (c.ClientKeyFile == "") {
		return c, errors.New("vaultclient: transit: client cert and key files must both be set")
	}
	switch c.Auth.Method {
	case TransitAuthAppRole:
		if c.Auth.RoleID == "" || c.Auth.SecretIDFile == "" {
			return c, errors.New("vaultclient: transit: approle needs a role id and a secret id file")
		}
	case TransitAuthCert:
		if c.ClientCertFile == "" {
			return c, errors.New("vaultclient: transit: cert auth needs a client certificate")
		}
	case TransitAuthToken:
		if c.Auth.Token == "" {
			return c, errors.New("vaultclient: transit: token auth needs a token")
		}
	default:
		return c, fmt.Errorf("vaultclient: transit: auth method %q is not %q, %q or %q", c.Auth.Method, TransitAuthAppRole, TransitAuthCert, TransitAuthToken)
	}
	if c.Auth.Mount == "" {
		c.Auth.Mount = c.Auth.Method
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c, nil
}

// Transit is a Keyer backed by HashiCorp Vault's (or OpenBao's) Transit
// secrets engine. Keys never leave Vault: the gateway sends plaintext to
// transit/encrypt and gets it back from transit/decrypt, over TLS.
//
// The card key is created with derived: true, and each call passes the
// record's Binding as the derivation context: a ciphertext opens only
// under the binding it was sealed with, and — unlike associated_data,
// which transit/rewrap ignores — the context survives rewrap. Ciphertexts
// are stored verbatim ("vault:vN:…"); the version in the record is taken
// from the response and checked against that prefix. Card and CVC go in
// one batch_input request. Fingerprints come from transit/hmac under a
// separate key.
//
// Each request is bounded by Timeout. Idempotent calls are retried after
// connection errors and 5xx answers only (encrypt, decrypt, rewrap and
// hmac change no state in Vault); key creation and rotation never are.
// Request and response bodies are never logged or put in errors. The
// login token is renewed in the background and replaced by a new login
// when it can no longer be renewed.
type Transit struct {
	cfg    TransitConfig
	client *api.Client
	log    *slog.Logger

	stop context.CancelFunc
	done chan struct{} // closed when the renewal goroutine has ended

	mu     sync.RWMutex
	closed bool
}

// noRetryKey marks a request context whose call must not be retried.
type noRetryKey struct{}

// OpenTransit builds the client, logs in (within ctx and Timeout) and
// starts token renewal. It does not check the keys; Ping and the first
// call do.
func OpenTransit(ctx context.Context, cfg TransitConfig) (*Transit, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	client, err := newVaultClient(cfg)
	if err != nil {
		return nil, err
	}
	t := &Transit{cfg: cfg, client: client, log: cfg.Logger, done: make(chan struct{})}
	lctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	secret, err := t.login(lctx)
	cancel()
	if err != nil {
		return nil, err
	}
	// The renewal goroutine outlives OpenTransit's ctx, so it gets its
	// own, cancelled by Close.
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	t.stop = stop
	go t.renew(rctx, secret)
	return t, nil
}

// newVaultClient builds an api.Client from cfg alone. api.NewClient reads
// VAULT_TOKEN, VAULT_NAMESPACE and VAULT_HEADERS from the environment;
// they are cleared here, so the process environment cannot change whom
// the gateway talks to or as whom. TLS verification cannot be turned off.
func newVaultClient(cfg TransitConfig) (*api.Client, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.TLSServerName}
	if cfg.CACertFile != "" {
		pem, err := os.ReadFile(cfg.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("vaultclient: transit: ca cert: %w", err)
		}
		tlsCfg.RootCAs = x509.NewCertPool()
		if !tlsCfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("vaultclient: transit: ca cert %s holds no PEM certificate", cfg.CACertFile)
		}
	}
	if cfg.ClientCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.ClientCertFile, cfg.ClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("vaultclient: transit: client certificate: %w", err)
		}
		tlsCfg.Certificates = []tls.Certificate{cert}
	}
	transport := &http.Transport{
		Proxy:                  nil, // the key service is never reached through a proxy
		DialContext:            (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:        tlsCfg,
		TLSHandshakeTimeout:    cfg.Timeout,
		ResponseHeaderTimeout:  cfg.Timeout,
		IdleConnTimeout:        90 * time.Second,
		MaxIdleConnsPerHost:    64,
		MaxResponseHeaderBytes: 64 << 10,
		ForceAttemptHTTP2:      true,
	}
	c := &api.Config{
		Address:      strings.TrimRight(cfg.Address, "/"),
		HttpClient:   &http.Client{Transport: transport, Timeout: cfg.Timeout},
		MaxRetries:   cfg.MaxRetries,
		Timeout:      cfg.Timeout,
		MinRetryWait: 50 * time.Millisecond,
		MaxRetryWait: 250 * time.Millisecond,
		CheckRetry:   transitRetry,
		// Vault answers a standby's redirect with 307; the api client
		// follows one, and refuses a downgrade to http.
	}
	client, err := api.NewClient(c)
	if err != nil {
		return nil, fmt.Errorf("vaultclient: transit: %w", err)
	}
	client.ClearToken()
	client.SetHeaders(http.Header{api.RequestHeaderName: {"true"}})
	client.SetNamespace(cfg.Namespace)
	return client, nil
}

// transitRetry retries after connection errors (not certificate errors)
// and 5xx answers other than 501, unless the call is marked not
// idempotent or its context is done.
func transitRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if ctx.Value(noRetryKey{}) != nil {
		return false, nil
	}
	if err != nil {
		// retryablehttp's policy refuses to retry certificate, scheme
		// and redirect errors, and retries the rest.
		return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	}
	return resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented, nil
}

// login authenticates and sets the client's token.
func (t *Transit) login(ctx context.Context) (*api.Secret, error) {
	a := t.cfg.Auth
	var secret *api.Secret
	var err error
	switch a.Method {
	case TransitAuthAppRole:
		opts := []approle.LoginOption{approle.WithMountPath(a.Mount)}
		if a.SecretIDWrapped {
			opts = append(opts, approle.WithWrappingToken())
		}
		var auth *approle.AppRoleAuth
		auth, err = approle.NewAppRoleAuth(a.RoleID, &approle.SecretID{FromFile: a.SecretIDFile}, opts...)
		if err == nil {
			secret, err = t.client.Auth().Login(ctx, auth)
		}
	case TransitAuthCert:
		// The TLS client certificate is the credential; the body names
		// the role.
		body := map[string]any{}
		if a.CertRole != "" {
			body["name"] = a.CertRole
		}
		secret, err = t.client.Logical().WriteWithContext(ctx, "auth/"+a.Mount+"/login", body)
		if err == nil && (secret == nil || secret.Auth == nil || secret.Auth.ClientToken == "") {
			err = errors.New("login answered without a token")
		}
		if err == nil {
			t.client.SetToken(secret.Auth.ClientToken)
		}
	case TransitAuthToken:
		t.client.SetToken(a.Token)
		var self *api.Secret
		self, err = t.client.Auth().Token().LookupSelfWithContext(ctx)
		if err == nil && self != nil {
			ttl, terr := self.TokenTTL()
			renewable, rerr := self.TokenIsRenewable()
			if terr != nil || rerr != nil || ttl < 0 {
				// Read as zero, they would stop renewal without a word. The
				// parse errors quote Vault's values: left out.
				return nil, fmt.Errorf("vaultclient: transit: %s login: %w", a.Method, ErrTokenLifetime)
			}
			secret = &api.Secret{Auth: &api.SecretAuth{ClientToken: a.Token, Renewable: renewable, LeaseDuration: int(ttl.Seconds())}}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("vaultclient: transit: %s login: %w", a.Method, vaultError(err))
	}
	if secret == nil || secret.Auth == nil {
		return nil, fmt.Errorf("vaultclient: transit: %s login answered without auth", a.Method)
	}
	t.log.Info("logged in to vault", "method", a.Method, "ttl", time.Duration(secret.Auth.LeaseDuration)*time.Second, "renewable", secret.Auth.Renewable)
	return secret, nil
}

// renew keeps the token alive with a LifetimeWatcher and logs in again
// when it can no longer be renewed, until ctx ends.
func (t *Transit) renew(ctx context.Context, secret *api.Secret) {
	defer close(t.done)
	for {
		next := t.watch(ctx, secret)
		if ctx.Err() != nil {
			return
		}
		if !next {
			<-ctx.Done()
			return
		}
		for {
			lctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
			s, err := t.login(lctx)
			cancel()
			if err == nil {
				secret = s
				break
			}
			t.log.Error("vault login failed; key operations fail until it succeeds", "error", err.Error())
			select {
			case <-ctx.Done():
				return
			case <-time.After(transitReloginWait):
			}
		}
	}
}

// watch renews secret until it can be renewed no longer, and reports
// whether a new login can replace it.
func (t *Transit) watch(ctx context.Context, secret *api.Secret) (relogin bool) {
	relogin = t.cfg.Auth.Method != TransitAuthToken
	lease := time.Duration(secret.Auth.LeaseDuration) * time.Second
	if !secret.Auth.Renewable {
		if lease == 0 {
			return false // a token that never expires
		}
		// Log in again at two thirds of the lease, as the watcher would.
		select {
		case <-ctx.Done():
		case <-time.After(lease * 2 / 3):
		}
		return relogin
	}
	w, err := t.client.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: secret})
	if err != nil {
		t.log.Error("vault token renewal could not start", "error", err.Error())
		return relogin
	}
	go w.Start()
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case err := <-w.DoneCh():
			if err != nil {
				t.log.Warn("vault token renewal stopped; logging in again", "error", vaultError(err).Error())
			} else {
				t.log.Info("vault token reached its maximum lifetime; logging in again")
			}
			if !relogin {
				t.log.Error("the configured vault token can no longer be renewed; replace it")
			}
			return relogin
		case r := <-w.RenewCh():
			if r != nil && r.Secret != nil && r.Secret.Auth != nil {
				t.log.Debug("vault token renewed", "ttl", time.Duration(r.Secret.Auth.LeaseDuration)*time.Second)
			}
		}
	}
}

var errTransitClosed = errors.New("vaultclient: transit backend is closed")

// ErrTokenLifetime: Vault's token lookup gave a ttl or renewable flag that
// does not parse (or a negative ttl). The token's renewal cannot be
// planned, so OpenTransit refuses to start rather than let it lapse.
var ErrTokenLifetime = errors.New("vaultclient: transit: the vault token's ttl or renewable flag is unreadable")

// Close stops token renewal. It does not revoke the token: other
// replicas may share the AppRole, and the token's TTL bounds it.
func (t *Transit) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.mu.Unlock()
	t.stop()
	<-t.done
	return nil
}

func (t *Transit) open() error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return errTransitClosed
	}
	return nil
}

// transitItem is one batch_input entry. []byte fields marshal as base64,
// as Transit expects, so plaintext never becomes a Go string here.
type transitItem struct {
	Plaintext  []byte `json:"plaintext,omitempty"`
	Ciphertext string `json:"ciphertext,omitempty"`
	Context    []byte `json:"context"`
	Reference  string `json:"reference"`
}

// transitResult is one batch_results entry.
type transitResult struct {
	Ciphertext string `json:"ciphertext"`
	Plaintext  []byte `json:"plaintext"`
	KeyVersion int    `json:"key_version"`
	Reference  string `json:"reference"`
	Error      string `json:"error"`
}

// transitResponse is the part of Vault's response envelope used here.
type transitResponse struct {
	Data struct {
		BatchResults         []transitResult `json:"batch_results"`
		HMAC                 string          `json:"hmac"`
		LatestVersion        int             `json:"latest_version"`
		MinDecryptionVersion int             `json:"min_decryption_version"`
		MinEncryptionVersion int             `json:"min_encryption_version"`
		Derived              bool            `json:"derived"`
		Type                 string          `json:"type"`
		// For signing keys (transitsign.go).
		Keys       map[string]json.RawMessage `json:"keys"`
		Signature  string                     `json:"signature"`
		KeyVersion int                        `json:"key_version"`
	} `json:"data"`
	Errors []string `json:"errors"`
}

// wipe zeroes the plaintexts of a decoded response.
func (r *transitResponse) wipe() {
	for i := range r.Data.BatchResults {
		clear(r.Data.BatchResults[i].Plaintext)
	}
}

// errTransitStatus is an HTTP error answer from Vault: the status and
// Vault's error messages, which name the failure and never echo data.
type errTransitStatus struct {
	Status   int
	Messages []string
}

func (e *errTransitStatus) Error() string {
	msg := "status " + strconv.Itoa(e.Status)
	switch e.Status {
	case http.StatusForbidden:
		msg += " (permission denied: check the token's policy)"
	case http.StatusNotFound:
		msg += " (not found: check the mount and key names)"
	case http.StatusServiceUnavailable:
		msg += " (vault sealed, in standby or unavailable)"
	}
	if len(e.Messages) > 0 {
		m := strings.Join(e.Messages, "; ")
		if len(m) > 300 {
			m = m[:300] + "…"
		}
		msg += ": " + strings.TrimSpace(m)
	}
	return msg
}

// vaultError turns the api client's errors into ones that hold no body:
// an *api.ResponseError keeps a non-JSON body verbatim.
func vaultError(err error) error {
	var re *api.ResponseError
	if errors.As(err, &re) {
		e := &errTransitStatus{Status: re.StatusCode}
		if !re.RawError {
			e.Messages = re.Errors
		}
		return e
	}
	return err
}

// call sends one request to path and decodes the answer. A 4xx or 5xx
// with a body that decodes is returned with its decoded body (batch
// answers carry per-item errors in batch_results) and an
// *errTransitStatus.
func (t *Transit) call(ctx context.Context, method, path string, body any, idempotent bool) (*transitResponse, error) {
	if err := t.open(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	if !idempotent {
		ctx = context.WithValue(ctx, noRetryKey{}, true)
	}
	r := t.client.NewRequest(method, "/v1/"+path)
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		defer clear(b)
		r.BodyBytes = b
	}
	resp, err := t.client.RawRequestWithContext(ctx, r)
	if resp == nil {
		if err == nil {
			err = errors.New("no response")
		}
		// Connection, TLS and timeout errors name the URL, never the body.
		return nil, vaultError(err)
	}
	defer resp.Body.Close()
	raw, rerr := io.ReadAll(io.LimitReader(resp.Body, maxTransitResponse+1))
	defer clear(raw)
	if rerr != nil {
		return nil, fmt.Errorf("status %d: reading the answer: %w", resp.StatusCode, rerr)
	}
	if len(raw) > maxTransitResponse {
		return nil, fmt.Errorf("status %d: answer larger than %d bytes", resp.StatusCode, maxTransitResponse)
	}
	// An answer that ends after the deadline is not trusted: a server
	// cut off mid-answer can leave a short or empty 200 behind, and the
	// caller must see the deadline, not a malformed answer.
	if cerr := ctx.Err(); cerr != nil {
		return nil, cerr
	}
	out := &transitResponse{}
	if len(bytes.TrimSpace(raw)) > 0 {
		if jerr := json.Unmarshal(raw, out); jerr != nil {
			// json errors can quote the input; say only what failed.
			out.wipe()
			return nil, fmt.Errorf("status %d: answer is not Vault's JSON", resp.StatusCode)
		}
	}
	if resp.StatusCode >= 400 {
		return out, &errTransitStatus{Status: resp.StatusCode, Messages: out.Errors}
	}
	return out, nil
}

// classify maps one Transit error message onto the Keyer sentinels.
// Transit reports these failures only in words; the strings are Vault's
// (sdk/helper/keysutil and crypto/cipher) and are shared by OpenBao.
func classify(msg string) error {
	switch {
	case strings.Contains(msg, "disallowed by policy (too old)"),
		strings.Contains(msg, "version is too new"),
		strings.Contains(msg, "encryption key not found"):
		return ErrKeyRetired
	case strings.Contains(msg, "message authentication failed"),
		strings.HasPrefix(msg, "invalid ciphertext"):
		return ErrIntegrity
	}
	return nil
}

// batchError turns a failed batch call into the right sentinel: the
// first per-item error that names one, else the status error.
func batchError(resp *transitResponse, err error) error {
	if resp != nil {
		defer resp.wipe()
		for _, r := range resp.Data.BatchResults {
			if r.Error == "" {
				continue
			}
			if s := classify(r.Error); s != nil {
				return fmt.Errorf("%s: %w", r.Error, s)
			}
		}
		var se *errTransitStatus
		if errors.As(err, &se) && se.Status == http.StatusBadRequest {
			for _, m := range se.Messages {
				if s := classify(m); s != nil {
					return fmt.Errorf("%s: %w", m, s)
				}
			}
		}
	}
	return err
}

// batch sends items to transit/<op>/<key> and checks that one result came
// back per item, in order.
func (t *Transit) batch(ctx context.Context, op string, items []transitItem) (*transitResponse, error) {
	for i := range items {
		items[i].Reference = strconv.Itoa(i)
	}
	resp, err := t.call(ctx, http.MethodPost, t.cfg.Mount+"/"+op+"/"+t.cfg.Key, map[string]any{"batch_input": items}, true)
	if err != nil {
		return nil, fmt.Errorf("vaultclient: transit %s: %w", op, batchError(resp, err))
	}
	if len(resp.Data.BatchResults) != len(items) {
		resp.wipe()
		return nil, fmt.Errorf("vaultclient: transit %s: %d results for %d items", op, len(resp.Data.BatchResults), len(items))
	}
	for i, r := range resp.Data.BatchResults {
		// Vault before 1.11 does not echo references; order then rules.
		if r.Reference != "" && r.Reference != items[i].Reference {
			resp.wipe()
			return nil, fmt.Errorf("vaultclient: transit %s: result %d answers item %q", op, i, r.Reference)
		}
		if r.Error != "" {
			err := batchError(resp, errors.New("item failed"))
			return nil, fmt.Errorf("vaultclient: transit %s: %w", op, err)
		}
	}
	return resp, nil
}

// parseCiphertext returns N from "vault:vN:…".
func parseCiphertext(s string) (uint32, bool) {
	rest, ok := strings.CutPrefix(s, "vault:v")
	if !ok {
		return 0, false
	}
	vs, b64, ok := strings.Cut(rest, ":")
	if !ok || b64 == "" {
		return 0, false
	}
	v, err := strconv.ParseUint(vs, 10, 32)
	if err != nil || v == 0 || strconv.FormatUint(v, 10) != vs {
		return 0, false
	}
	return uint32(v), true
}

// sealed checks a result's ciphertext against its key_version.
func (t *Transit) sealed(op string, r transitResult) (Sealed, error) {
	v, ok := parseCiphertext(r.Ciphertext)
	if !ok {
		return Sealed{}, fmt.Errorf("vaultclient: transit %s: answer is not a vault:vN: ciphertext", op)
	}
	if r.KeyVersion != 0 && uint32(r.KeyVersion) != v {
		return Sealed{}, fmt.Errorf("vaultclient: transit %s: key_version %d disagrees with ciphertext version %d", op, r.KeyVersion, v)
	}
	return Sealed{Key: KeyID{Backend: TransitBackend, Name: t.cfg.Key, Version: v}, Blob: []byte(r.Ciphertext)}, nil
}

// Encrypt implements Keyer with one transit/encrypt batch call.
func (t *Transit) Encrypt(ctx context.Context, items []EncryptItem) ([]Sealed, error) {
	in := make([]transitItem, len(items))
	for i, it := range items {
		in[i] = transitItem{Plaintext: it.Plaintext, Context: it.Binding.Bytes()}
	}
	resp, err := t.batch(ctx, "encrypt", in)
	if err != nil {
		return nil, err
	}
	out := make([]Sealed, len(items))
	for i, r := range resp.Data.BatchResults {
		if out[i], err = t.sealed("encrypt", r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// checkSealed refuses a blob that is not this key's, or whose prefix
// disagrees with the version the record names (a record edited in
// clear).
func (t *Transit) checkSealed(op string, it DecryptItem) error {
	id := it.Sealed.Key
	if id.Backend != TransitBackend || id.Name != t.cfg.Key {
		return fmt.Errorf("vaultclient: transit %s: this backend has no key %s/%s: %w", op, id.Backend, id.Name, ErrKeyRetired)
	}
	v, ok := parseCiphertext(string(it.Sealed.Blob))
	if !ok {
		return fmt.Errorf("vaultclient: transit %s: sealed %s is not a vault:vN: ciphertext: %w", op, it.Binding.Field, ErrIntegrity)
	}
	if v != id.Version {
		return fmt.Errorf("vaultclient: transit %s: sealed %s says version %d, its record %d: %w", op, it.Binding.Field, v, id.Version, ErrIntegrity)
	}
	return nil
}

// Decrypt implements Keyer with one transit/decrypt batch call.
func (t *Transit) Decrypt(ctx context.Context, items []DecryptItem) ([][]byte, error) {
	in := make([]transitItem, len(items))
	for i, it := range items {
		if err := t.checkSealed("decrypt", it); err != nil {
			return nil, err
		}
		in[i] = transitItem{Ciphertext: string(it.Sealed.Blob), Context: it.Binding.Bytes()}
	}
	resp, err := t.batch(ctx, "decrypt", in)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(items))
	for i, r := range resp.Data.BatchResults {
		out[i] = r.Plaintext // the caller zeroes it
	}
	return out, nil
}

// Rewrap implements Keyer with one transit/rewrap batch call: Vault opens
// and seals inside itself, so the plaintext never leaves Vault.
func (t *Transit) Rewrap(ctx context.Context, items []DecryptItem) ([]Sealed, error) {
	in := make([]transitItem, len(items))
	for i, it := range items {
		if err := t.checkSealed("rewrap", it); err != nil {
			return nil, err
		}
		in[i] = transitItem{Ciphertext: string(it.Sealed.Blob), Context: it.Binding.Bytes()}
	}
	resp, err := t.batch(ctx, "rewrap", in)
	if err != nil {
		return nil, err
	}
	out := make([]Sealed, len(items))
	for i, r := range resp.Data.BatchResults {
		if out[i], err = t.sealed("rewrap", r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Fingerprint implements Keyer with transit/hmac/<fingerprint key>/sha2-256.
func (t *Transit) Fingerprint(ctx context.Context, pan []byte) ([]byte, KeyID, error) {
	input := make([]byte, 0, len(fingerprintDomain)+len(pan))
	input = append(append(input, fingerprintDomain...), pan...)
	defer clear(input)
	resp, err := t.call(ctx, http.MethodPost, t.cfg.Mount+"/hmac/"+t.cfg.FingerprintKey+"/sha2-256", map[string]any{"input": input}, true)
	if err != nil {
		return nil, KeyID{}, fmt.Errorf("vaultclient: transit hmac: %w", err)
	}
	v, ok := parseCiphertext(resp.Data.HMAC)
	if !ok {
		return nil, KeyID{}, errors.New("vaultclient: transit hmac: answer is not a vault:vN: hmac")
	}
	mac, err := base64.StdEncoding.DecodeString(resp.Data.HMAC[strings.LastIndexByte(resp.Data.HMAC, ':')+1:])
	if err != nil || len(mac) != 32 {
		return nil, KeyID{}, errors.New("vaultclient: transit hmac: answer is not 32 bytes of base64")
	}
	return mac, KeyID{Backend: TransitBackend, Name: t.cfg.FingerprintKey, Version: v}, nil
}

// KeyInfo is what Vault says about the card key.
type KeyInfo struct {
	LatestVersion        uint32
	MinDecryptionVersion uint32
	MinEncryptionVersion uint32
	Derived              bool
	Type                 string
}

// KeyInfo reads transit/keys/<key>. It needs read on that path, which the
// gateway's policy need not grant; operators' tools use it.
func (t *Transit) KeyInfo(ctx context.Context) (KeyInfo, error) {
	return t.keyInfo(ctx, t.cfg.Key)
}

func (t *Transit) keyInfo(ctx context.Context, name string) (KeyInfo, error) {
	resp, err := t.call(ctx, http.MethodGet, t.cfg.Mount+"/keys/"+name, nil, true)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("vaultclient: transit read key %s: %w", name, err)
	}
	d := resp.Data
	return KeyInfo{LatestVersion: uint32(d.LatestVersion), MinDecryptionVersion: uint32(d.MinDecryptionVersion),
		MinEncryptionVersion: uint32(d.MinEncryptionVersion), Derived: d.Derived, Type: d.Type}, nil
}

// Primary implements Keyer: Transit encrypts with the latest version.
func (t *Transit) Primary(ctx context.Context) (KeyID, error) {
	info, err := t.KeyInfo(ctx)
	if err != nil {
		return KeyID{}, err
	}
	if info.LatestVersion == 0 {
		return KeyID{}, fmt.Errorf("vaultclient: transit: key %s reports no version", t.cfg.Key)
	}
	return KeyID{Backend: TransitBackend, Name: t.cfg.Key, Version: info.LatestVersion}, nil
}

// Ping implements Keyer with auth/token/lookup-self: Vault is reachable,
// unsealed, and the token is valid.
func (t *Transit) Ping(ctx context.Context) error {
	if _, err := t.call(ctx, http.MethodGet, "auth/token/lookup-self", nil, true); err != nil {
		return fmt.Errorf("vaultclient: transit ping: %w", err)
	}
	return nil
}

// InitKeys creates the card key (aes256-gcm96, derived, not exportable)
// and the fingerprint key if they do not exist, and checks that existing
// ones have the right shape: a card key that is not derived would take
// the binding as nothing. It returns the names it created.
func (t *Transit) InitKeys(ctx context.Context) ([]string, error) {
	var created []string
	for _, k := range []struct {
		name    string
		derived bool
	}{{t.cfg.Key, true}, {t.cfg.FingerprintKey, false}} {
		info, err := t.keyInfo(ctx, k.name)
		var se *errTransitStatus
		switch {
		case err == nil:
		case errors.As(err, &se) && se.Status == http.StatusNotFound:
			body := map[string]any{"type": "aes256-gcm96", "derived": k.derived, "exportable": false, "allow_plaintext_backup": false}
			if _, err := t.call(ctx, http.MethodPost, t.cfg.Mount+"/keys/"+k.name, body, false); err != nil {
				return created, fmt.Errorf("vaultclient: transit create key %s: %w", k.name, err)
			}
			created = append(created, k.name)
			if info, err = t.keyInfo(ctx, k.name); err != nil {
				return created, err
			}
		default:
			return created, err
		}
		if info.Type != "aes256-gcm96" || info.Derived != k.derived {
			return created, fmt.Errorf("vaultclient: transit: key %s is %s with derived=%t; cardgate needs aes256-gcm96 with derived=%t", k.name, info.Type, info.Derived, k.derived)
		}
	}
	return created, nil
}

// Rotate adds a version to the card key and returns it. It is never
// retried: a retry after a lost answer would add two versions.
func (t *Transit) Rotate(ctx context.Context) (KeyID, error) {
	if _, err := t.call(ctx, http.MethodPost, t.cfg.Mount+"/keys/"+t.cfg.Key+"/rotate", map[string]any{}, false); err != nil {
		return KeyID{}, fmt.Errorf("vaultclient: transit rotate %s: %w", t.cfg.Key, err)
	}
	return t.Primary(ctx)
}

// SetMinDecryptionVersion retires every card key version below v:
// Vault then refuses to decrypt or rewrap what they sealed, and records
// still under them fail with ErrKeyRetired.
func (t *Transit) SetMinDecryptionVersion(ctx context.Context, v uint32) error {
	body := map[string]any{"min_decryption_version": v}
	if _, err := t.call(ctx, http.MethodPost, t.cfg.Mount+"/keys/"+t.cfg.Key+"/config", body, true); err != nil {
		return fmt.Errorf("vaultclient: transit config %s: %w", t.cfg.Key, err)
	}
	return nil
}
