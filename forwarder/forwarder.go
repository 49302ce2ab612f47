package forwarder

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/internal/randid"
	"github.com/cardgate/cardgate/vaultclient"
)

// Request is one forward, as decoded from POST /v1/forward. Caller is set
// from the authenticated identity, never from the body.
type Request struct {
	Destination string      `json:"destination"`
	URL         string      `json:"url"`
	Method      string      `json:"method"`
	Card        string      `json:"card"`
	Headers     http.Header `json:"headers,omitempty"`
	Body        string      `json:"body,omitempty"`
	// DryRun checks the policy and the template without reading the card
	// or sending anything; the Response's DryRun shows what would be sent.
	DryRun bool `json:"dry_run,omitempty"`
	// Cards are named cards, for a template that sends several
	// ({{cards.NAME.FIELD}}); a request sends Card or Cards, never both.
	Cards map[string]string `json:"cards,omitempty"`

	Caller    string `json:"-"`
	RequestID string `json:"-"`
	// IdempotencyKey is the caller's Idempotency-Key header, scoped to
	// Caller. Empty means none.
	IdempotencyKey string `json:"-"`
}

// Outcome says whether the card left the gateway.
type Outcome string

// Outcomes. The zero value is not one of them.
const (
	NotSent        Outcome = "not_sent"         // nothing reached the processor
	SentNoResponse Outcome = "sent_no_response" // bytes may have reached it; no answer
	Answered       Outcome = "answered"         // the processor answered
)

// Response is what the caller gets back.
type Response struct {
	ForwardID        string      `json:"forward_id"`
	AllowlistVersion uint64      `json:"allowlist_version"`
	Outcome          Outcome     `json:"outcome"`
	Status           int         `json:"status"`
	Headers          http.Header `json:"headers"`
	Body             string      `json:"body"` // card numbers masked
	// BodyEncoding is "" when Body is the processor's UTF-8 text and
	// "base64" when the processor's bytes were not valid UTF-8.
	BodyEncoding string `json:"body_encoding,omitempty"`
	// Location is the processor's Location header (masked) on a 3xx. The
	// redirect was not followed.
	Location string `json:"location,omitempty"`
	// ReturnedCards lists the cards the answer held at the entry's
	// response.returned_cards paths: tokenized (the body holds the token)
	// or masked, with the reason.
	ReturnedCards []ReturnedCard `json:"returned_cards,omitempty"`
	// DryRun is set, and nothing else but the ids and Outcome not_sent,
	// when the request was a dry run.
	DryRun *Preview `json:"dry_run,omitempty"`

	// Replayed is true when this is the stored answer to an earlier
	// request with the same Idempotency-Key; nothing was sent this time.
	Replayed bool `json:"-"`
}

// Defaults used when an Options field is zero.
const (
	DefaultTimeout             = 30 * time.Second // whole upstream exchange, unless the entry sets its own
	DefaultDialTimeout         = 5 * time.Second  // one TCP connect attempt
	DefaultDNSTimeout          = 5 * time.Second  // one host lookup
	DefaultTLSHandshakeTimeout = 10 * time.Second // one TLS handshake
	DefaultCardTimeout         = 5 * time.Second  // one Detokenize call
	DefaultMaxResponseBytes    = 1 << 20          // processor body, unless the entry sets its own
	DefaultMaxRequestBodyBytes = 1 << 20          // the caller's body template
	DefaultAuditTimeout        = 5 * time.Second  // one audit append
	DefaultMaxAttempts         = 3                // sends per forward, counting the first
	DefaultRetryBackoff        = 100 * time.Millisecond
	DefaultRetryMaxBackoff     = time.Second
	DefaultCheckTimeout        = 2 * time.Second // one rate-limit, canary or idempotency call

	// UserAgent is sent on every outbound request, replacing the caller's.
	UserAgent = "cardgate-forwarder/1"
)

// Request limits that are not configurable.
const (
	maxURLBytes     = 8 << 10
	maxHeaders      = 64
	maxHeaderBytes  = 32 << 10
	maxTokenBytes   = 256
	maxCardHeaderNm = 128
	maxRoutes       = 1024 // transports kept at once (entries × hosts)
)

// AllowlistSource yields the live, verified allowlist. allowlist.Holder
// implements it.
type AllowlistSource interface {
	Current() (*allowlist.Allowlist, error)
}

// Cards reads cards from the vault. vaultclient.Vault implements it.
//
// DetokenizeConsumingCVC is Detokenize that deletes the CVC in the same
// store operation as the read; a forward whose template uses the CVC reads
// the card with it. Of two concurrent forwards, at most one gets the CVC,
// and the CVC is gone whatever the outcome, not_sent included: the caller
// collects it again from the cardholder (cvc_not_available says so).
type Cards interface {
	Detokenize(ctx context.Context, token string) (*vaultclient.Card, error)
	DetokenizeConsumingCVC(ctx context.Context, token string) (*vaultclient.Card, error)
}

// Resolver looks host names up. *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Options configures a Forwarder. Allowlist, Cards and Auditor are
// required; every other zero field means the documented default. No field
// loosens a check: there is no way to skip TLS verification, the address
// checks or the audit record (an entry widens the address check only
// through its own UnsafeAllowRanges).
type Options struct {
	Allowlist AllowlistSource
	Cards     Cards
	// Auditor receives an intent record before every send (the forward is
	// refused if it fails), a result record after it, and records of
	// policy refusals and canary use. *audit.Log implements it.
	Auditor Auditor

	// Limiter enforces the per-caller and per-(caller, destination)
	// budgets. Nil means no budgets.
	Limiter Limiter
	// Switch is the kill switch, asked before the allowlist. Nil means no
	// operator switch (the allowlist alone decides).
	Switch Switch
	// Canaries says which tokens are canaries. Nil means none are.
	Canaries Canaries
	// Idempotency stores Idempotency-Key claims and answers. Nil means a
	// request with a key is refused (idempotency_not_supported), never
	// sent without the guarantee it asked for.
	Idempotency IdempotencyStore

	// MaxAttempts bounds the sends of one forward; only failures that are
	// certainly not_sent (no connection was made) are retried. 0 means
	// DefaultMaxAttempts; 1 turns retries off.
	MaxAttempts int
	// RetryBackoff is the wait before the second attempt; it doubles per
	// attempt up to RetryMaxBackoff, with full jitter. 0 means the defaults.
	RetryBackoff    time.Duration
	RetryMaxBackoff time.Duration
	// AuditTimeout bounds one audit append; 0 means DefaultAuditTimeout.
	AuditTimeout time.Duration
	// CheckTimeout bounds one Limiter, Canaries or Idempotency call (an
	// idempotency wait for a concurrent duplicate has its own bound); 0
	// means DefaultCheckTimeout.
	CheckTimeout time.Duration

	// RootCAs verifies processors' certificates. Nil means the system roots.
	RootCAs *x509.CertPool
	// Resolver looks destination hosts up. Nil means net.DefaultResolver.
	Resolver Resolver
	// Logger gets one line per forward. Nil discards.
	Logger *slog.Logger
	// TracerProvider and MeterProvider default to OpenTelemetry no-ops.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider

	DefaultTimeout      time.Duration // per entry unless it sets Timeout; 0 = DefaultTimeout
	DialTimeout         time.Duration // 0 = DefaultDialTimeout
	DNSTimeout          time.Duration // 0 = DefaultDNSTimeout
	TLSHandshakeTimeout time.Duration // 0 = DefaultTLSHandshakeTimeout
	CardTimeout         time.Duration // 0 = DefaultCardTimeout
	MaxResponseBytes    int64         // per entry unless it sets its own; 0 = DefaultMaxResponseBytes
	MaxRequestBodyBytes int64         // 0 = DefaultMaxRequestBodyBytes

	// MaxTimeout caps every entry's timeout and DefaultTimeout, and bounds
	// the sending phase of a forward (every attempt and backoff) to end
	// MaxTimeout after the forward started. Set it below the API server's
	// write timeout: a processor answer that arrives after the server gave
	// up on the caller is lost, and a caller who retries a card that was
	// charged charges it twice. 0 means no cap.
	MaxTimeout time.Duration

	// CABundles are the trust roots an entry can name in tls.ca_bundle
	// instead of RootCAs. An entry naming a bundle that is not here is
	// refused.
	CABundles map[string]*x509.CertPool
	// ClientCerts are the client certificates an entry can name in
	// tls.client_cert, for processors that require mTLS. Each is presented
	// only on connections for entries naming it; an entry naming one that
	// is not here is refused (internal_error, not_sent).
	ClientCerts map[string]*tls.Certificate

	// StripResponseHeaders names extra response headers never returned to
	// callers, on top of hop-by-hop headers, Set-Cookie and Set-Cookie2.
	StripResponseHeaders []string

	// Credentials hands out the processor credentials that entries grant
	// ({{secret.NAME}} placeholders, signing keys). Nil means the gateway
	// holds none: a forward that needs one is refused
	// (credential_unavailable, not_sent).
	Credentials Credentials

	// Now is the clock for allowlist matching. Nil means time.Now.
	Now func() time.Time
}

// Forwarder runs the forward path. It is safe for concurrent use. The zero
// value refuses every forward; build one with New.
type Forwarder struct {
	allow       AllowlistSource
	cards       Cards
	auditor     Auditor
	limiter     Limiter
	switches    Switch
	canaries    Canaries
	idem        IdempotencyStore
	maxAttempts int
	backoff     time.Duration
	maxBackoff  time.Duration
	auditTO     time.Duration
	checkTO     time.Duration
	resolver    Resolver
	rootCAs     *x509.CertPool
	caBundles   map[string]*x509.CertPool
	clientCerts map[string]*tls.Certificate
	classifier  *classifier
	log         *slog.Logger
	tel         *telemetry
	now         func() time.Time
	timeout     time.Duration
	maxTimeout  time.Duration // 0: no cap
	dialTimeout time.Duration
	dnsTimeout  time.Duration
	tlsTimeout  time.Duration
	cardTimeout time.Duration
	maxResp     int64
	maxReqBody  int64
	stripResp   map[string]bool

	// beforeRetry, when set (by tests only), runs after a failed attempt
	// and before the next one is rendered.
	beforeRetry func()
	creds       Credentials // nil: none held (secrets.go)
	signers     signerCache // per entry and credential value (sign.go)

	bufs sync.Pool // *[]byte; zeroed before reuse because they held card data

	mu     sync.Mutex
	sha    string            // allowlist document the routes belong to
	routes map[string]*route // destination id + host:port -> route
}

// New returns a Forwarder. It fails when a required option is missing or a
// duration or size is negative.
func New(o Options) (*Forwarder, error) {
	if o.Allowlist == nil {
		return nil, errors.New("forwarder: options: Allowlist is required")
	}
	if o.Cards == nil {
		return nil, errors.New("forwarder: options: Cards is required")
	}
	if o.Auditor == nil {
		// No audit means a card could leave without a trace: refuse to
		// build rather than default to "no audit".
		return nil, errors.New("forwarder: options: Auditor is required")
	}
	if o.MaxAttempts < 0 {
		return nil, errors.New("forwarder: options: MaxAttempts must not be negative")
	}
	for name, d := range map[string]time.Duration{
		"DefaultTimeout": o.DefaultTimeout, "DialTimeout": o.DialTimeout, "DNSTimeout": o.DNSTimeout,
		"TLSHandshakeTimeout": o.TLSHandshakeTimeout, "CardTimeout": o.CardTimeout,
		"RetryBackoff": o.RetryBackoff, "RetryMaxBackoff": o.RetryMaxBackoff,
		"AuditTimeout": o.AuditTimeout, "CheckTimeout": o.CheckTimeout, "MaxTimeout": o.MaxTimeout,
	} {
		if d < 0 {
			return nil, fmt.Errorf("forwarder: options: %s must not be negative", name)
		}
	}
	if o.MaxResponseBytes < 0 || o.MaxRequestBodyBytes < 0 {
		return nil, errors.New("forwarder: options: byte limits must not be negative")
	}
	tel, err := newTelemetry(o.TracerProvider, o.MeterProvider)
	if err != nil {
		return nil, err
	}
	f := &Forwarder{
		allow:       o.Allowlist,
		cards:       o.Cards,
		auditor:     o.Auditor,
		limiter:     o.Limiter,
		switches:    o.Switch,
		canaries:    o.Canaries,
		idem:        o.Idempotency,
		maxAttempts: int(orDefault(int64(o.MaxAttempts), DefaultMaxAttempts)),
		backoff:     orDefault(o.RetryBackoff, DefaultRetryBackoff),
		maxBackoff:  orDefault(o.RetryMaxBackoff, DefaultRetryMaxBackoff),
		auditTO:     orDefault(o.AuditTimeout, DefaultAuditTimeout),
		checkTO:     orDefault(o.CheckTimeout, DefaultCheckTimeout),
		resolver:    o.Resolver,
		rootCAs:     o.RootCAs,
		caBundles:   maps.Clone(o.CABundles),
		clientCerts: maps.Clone(o.ClientCerts),
		classifier:  newClassifier(),
		log:         o.Logger,
		tel:         tel,
		now:         o.Now,
		timeout:     orDefault(o.DefaultTimeout, DefaultTimeout),
		maxTimeout:  o.MaxTimeout,
		dialTimeout: orDefault(o.DialTimeout, DefaultDialTimeout),
		dnsTimeout:  orDefault(o.DNSTimeout, DefaultDNSTimeout),
		tlsTimeout:  orDefault(o.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout),
		cardTimeout: orDefault(o.CardTimeout, DefaultCardTimeout),
		maxResp:     orDefault(o.MaxResponseBytes, DefaultMaxResponseBytes),
		maxReqBody:  orDefault(o.MaxRequestBodyBytes, DefaultMaxRequestBodyBytes),
		stripResp:   map[string]bool{},
		creds:       o.Credentials,
		routes:      map[string]*route{},
	}
	if f.resolver == nil {
		f.resolver = net.DefaultResolver
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.now == nil {
		f.now = time.Now
	}
	for _, h := range o.StripResponseHeaders {
		f.stripResp[http.CanonicalHeaderKey(h)] = true
	}
	return f, nil
}

func orDefault[T int64 | time.Duration](v, d T) T {
	if v == 0 {
		return d
	}
	return v
}

// Close closes idle upstream connections. In-flight forwards finish.
func (f *Forwarder) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.routes {
		r.transport.CloseIdleConnections()
	}
}

// forward is the state of one forward, for the log line, the span and the
// audit records.
type forward struct {
	id          string
	req         *Request
	start       time.Time
	version     uint64
	sha         string // allowlist document sha256, once known
	host        string
	remote      atomic.Value // string: the address the connection went to
	gotConn     atomic.Bool  // a connection was handed to the request: bytes may leave
	gotAnswer   atomic.Bool  // the processor's first response byte arrived
	usedCVC     bool
	destination string // r.Destination once validate accepted it, else ""
	token       string // r.Card if it is spelled like a token, else ""
	canary      bool
	claimed     bool // this forward owns the request's idempotency key
	intent      bool // the intent record is durable: a result record must follow
	attempts    int
	replayed    bool
	secrets     *secretSet // the credentials this forward uses, masked in the answer
	tokens      []string   // r.Cards' tokens that are spelled like tokens, by card name

	tlsMu      sync.Mutex
	tlsVersion string // tls.VersionName of the last connection
	peerCert   string // hex sha256 of its leaf certificate
	// peerLeaf is the certificate peerCert was computed from: each
	// attempt sets the TLS state twice (connection, then answer), from
	// the same connection, and the second need not hash it again.
	peerLeaf *x509.Certificate
}

// newForwardID returns a fresh forward id; it goes into every audit
// record, so it is drawn from randid's card-safe alphabet.
func newForwardID() string { return randid.New("fwd_") }

// setTLS records what the audit result needs of the connection.
func (fw *forward) setTLS(cs tls.ConnectionState) {
	fw.tlsMu.Lock()
	defer fw.tlsMu.Unlock()
	fw.tlsVersion = tls.VersionName(cs.Version)
	if len(cs.PeerCertificates) > 0 && cs.PeerCertificates[0] != fw.peerLeaf {
		sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
		fw.peerCert = hex.EncodeToString(sum[:])
		fw.peerLeaf = cs.PeerCertificates[0]
	}
}

func (fw *forward) tlsInfo() (version, peerCert string) {
	fw.tlsMu.Lock()
	defer fw.tlsMu.Unlock()
	return fw.tlsVersion, fw.peerCert
}
