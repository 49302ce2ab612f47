package forwarder

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/cardscan"
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
	usedCVC     bool
	destination string // r.Destination once validate accepted it, else ""
	token       string // r.Card if it is spelled like a token, else ""
	canary      bool
	claimed     bool // this forward owns the request's idempotency key
	intent      bool // the intent record is durable: a result record must follow
	attempts    int
	replayed    bool

	tlsMu      sync.Mutex
	tlsVersion string // tls.VersionName of the last connection
	peerCert   string // hex sha256 of its leaf certificate
}

// Forward checks, fills in and sends r. Errors are *Error, and always say
// whether anything was sent.
func (f *Forwarder) Forward(ctx context.Context, r *Request) (*Response, error) {
	if f == nil || f.allow == nil || f.cards == nil || f.auditor == nil {
		return nil, notSent(CodeInternal, "forwarder is not configured")
	}
	// fw.destination stays empty until validate has checked the caller's
	// string: until then it is recorded as "invalid".
	fw := &forward{id: newForwardID(), req: r, start: time.Now()}
	ctx, span := f.tel.start(ctx, fw)
	resp, ferr := f.forward(ctx, fw, r)
	if fw.intent {
		// Every intent gets its result, whatever the outcome.
		f.auditResult(ctx, fw, resp, ferr)
	}
	f.finish(ctx, span, fw, resp, ferr, time.Since(fw.start))
	if ferr != nil {
		return nil, ferr
	}
	return resp, nil
}

// forward runs the steps that come before the allowlist, and owns the
// idempotency claim: whatever decide returns is stored (or the claim
// released) here.
func (f *Forwarder) forward(ctx context.Context, fw *forward, r *Request) (*Response, *Error) {
	// 1. Validate the request and find every placeholder.
	if r == nil {
		return nil, notSent(CodeInvalidRequest, "request is empty")
	}
	fw.token = auditToken(r.Card)
	v, e := f.validate(r)
	if e != nil {
		if e.Code == CodeLiteralCard {
			// Someone typed a card into a request: a refusal worth an
			// audit record (without the offending value), within the
			// caller's budget so that a flood of them cannot flood the
			// audit log.
			if be := f.checkBudget(ctx, r); be != nil {
				return nil, be
			}
			f.auditDenied(ctx, fw, e.Code)
		}
		return nil, e
	}
	fw.host = v.target.host
	fw.destination = r.Destination

	// 2. Budgets, before anything that writes an audit record or an
	// alert, so that a flood of refused requests (canary uses among them)
	// cannot flood the audit log.
	if e := f.checkBudget(ctx, r); e != nil {
		return nil, e
	}

	// 3. Canary tokens alert on any use within the budget; the refusal
	// comes where an unknown token's would.
	if e := f.checkCanary(ctx, fw, r); e != nil {
		return nil, e
	}

	// 4. Idempotency: a replay returns the stored answer and sends nothing.
	if r.IdempotencyKey == "" || r.DryRun {
		return f.decide(ctx, fw, r, v)
	}
	if f.idem == nil {
		return nil, notSent(CodeIdempotencyNotSupported, "this gateway keeps no idempotency store (single-node bolt mode); send the request without Idempotency-Key")
	}
	resp, e := f.claim(ctx, fw, r)
	if resp != nil || e != nil {
		return resp, e
	}
	resp, e = f.decide(ctx, fw, r, v)
	if fw.intent {
		// The result record goes first: an answer replayed from the store
		// must never exist for a forward the audit log has no result for.
		f.auditResult(ctx, fw, resp, e)
		fw.intent = false
	}
	f.settle(ctx, fw, r, resp, e)
	return resp, e
}

// decide asks the kill switch and the allowlist, then either previews (dry
// run) or sends.
func (f *Forwarder) decide(ctx context.Context, fw *forward, r *Request, v *validated) (*Response, *Error) {
	// 5. The kill switch: an operator's "stop" overrides the allowlist.
	if f.switches != nil {
		if err := f.switches.Check(r.Destination); err != nil {
			e := passThrough(err, "kill switch state unavailable")
			if e.Code == CodeInternal {
				e.Code, e.Message = CodeKillSwitchUnavailable, "the kill switch state could not be read recently enough; forwards are refused until it can"
			}
			f.auditDenied(ctx, fw, e.Code)
			return nil, e
		}
	}

	// 6. The live allowlist, and the entry this request may use.
	al, err := f.allow.Current()
	if err != nil {
		e := passThrough(err, "allowlist unavailable")
		f.auditDenied(ctx, fw, e.Code)
		return nil, e
	}
	if al == nil {
		return nil, notSent(CodeInternal, "allowlist unavailable")
	}
	fw.version, fw.sha = al.Doc.Version, al.SHA256
	dest, err := al.Match(allowlist.Query{
		DestinationID: r.Destination,
		Caller:        r.Caller,
		Method:        r.Method,
		URL:           v.target.URL(),
		Fields:        v.fields,
		Now:           f.now(),
	})
	if err != nil {
		e := passThrough(err, "allowlist match failed")
		f.auditDenied(ctx, fw, e.Code)
		return nil, e
	}
	if dest == nil {
		return nil, notSent(CodeInternal, "allowlist match returned no entry")
	}
	// Match decided; check again what the dial depends on, so that a bug
	// there cannot send a card somewhere this package did not verify.
	if e := recheck(dest, r, v); e != nil {
		f.auditDenied(ctx, fw, e.Code)
		return nil, e
	}
	if e := v.checkHeaderSlots(dest); e != nil {
		return nil, e
	}

	// 7. A dry run stops here: nothing is read from the vault or sent.
	if r.DryRun {
		return f.preview(fw, v)
	}
	if fw.canary {
		// The same answer as for a token that does not exist, so that the
		// holder cannot tell a canary from a stale token.
		return nil, newError(CodeTokenNotFound, NotSent, "token not found", errCanary)
	}
	return f.sendCard(ctx, fw, r, v, al, dest)
}

// sendCard detokenizes, renders, writes the intent record and sends,
// retrying only what certainly was not sent.
func (f *Forwarder) sendCard(ctx context.Context, fw *forward, r *Request, v *validated, al *allowlist.Allowlist, dest *allowlist.Destination) (*Response, *Error) {
	// 8. The card. A template that uses the CVC consumes it in the same
	// store operation as the read, so that two concurrent forwards can
	// never both send it; from here it is gone whatever the outcome.
	fw.usedCVC = slices.Contains(v.fields, allowlist.FieldCVC)
	detokenize := f.cards.Detokenize
	if fw.usedCVC {
		detokenize = f.cards.DetokenizeConsumingCVC
	}
	cctx, cancel := context.WithTimeout(ctx, f.cardTimeout)
	card, err := detokenize(cctx, r.Card)
	cancel()
	if err != nil {
		return nil, passThrough(err, "card store unavailable")
	}
	if card == nil {
		return nil, notSent(CodeInternal, "card store returned no card")
	}
	cv := cardValues{card: card}

	// 9. Render, into a pooled buffer that the request body owns.
	body, hdr, e := f.render(v, cv)
	if e != nil {
		return nil, e
	}

	// 10. The intent record, durable before any byte of the card leaves.
	if e := f.auditIntent(ctx, fw, dest); e != nil {
		body.close()
		return nil, e
	}
	fw.intent = true
	if fw.claimed {
		// From here a crash leaves the key "outcome unknown", never free
		// for a second send.
		ictx, cancel := context.WithTimeout(ctx, f.checkTO)
		err := f.idem.MarkSending(ictx, r.Caller, r.IdempotencyKey, fw.id)
		cancel()
		if err != nil {
			body.close()
			// Whatever the key's state, this forward sent nothing: the
			// result record and the caller must say so.
			e := idempotencyError(err)
			e.Outcome = NotSent
			return nil, e
		}
	}

	// 11. Send and read; retry only a failure that sent nothing. With
	// MaxTimeout, attempts and backoff all end MaxTimeout after the
	// forward started, so the answer is written before the API server
	// gives up on the caller.
	sctx := ctx
	if f.maxTimeout > 0 {
		var cancel context.CancelFunc
		sctx, cancel = context.WithDeadline(ctx, fw.start.Add(f.maxTimeout))
		defer cancel()
	}
	var resp *Response
	for attempt := 1; ; attempt++ {
		fw.attempts = attempt
		resp, e = f.send(sctx, fw, al.SHA256, v, dest, hdr, body, card)
		if e == nil || !retryable(e) || attempt >= f.maxAttempts || !f.sleepBackoff(sctx, attempt) {
			break
		}
		// The transport closed the last body; render a fresh one.
		if body, hdr, e = f.render(v, cv); e != nil {
			break
		}
	}
	if e != nil {
		return nil, e
	}
	resp.ForwardID = fw.id
	resp.AllowlistVersion = fw.version
	return resp, nil
}

// render renders the body and the headers. A nil body is valid (no body).
func (f *Forwarder) render(v *validated, cv fieldValues) (*pooledBody, http.Header, *Error) {
	body, e := f.renderBody(v, cv)
	if e != nil {
		return nil, nil, e
	}
	hdr, e := v.renderHeaders(cv)
	if e != nil {
		body.close()
		return nil, nil, e
	}
	return body, hdr, nil
}

// recheck repeats the parts of the allowlist decision that the dial and the
// render depend on: same entry, https host and port equality, path prefix on
// a segment boundary, method, caller and fields.
func recheck(d *allowlist.Destination, r *Request, v *validated) *Error {
	deny := func(msg string) *Error { return notSent(CodeDestinationNotAllowed, msg) }
	if d.ID != r.Destination {
		return deny("destination does not match the allowlist entry")
	}
	if d.Host == "" || d.Port < 1 || d.Port > 65535 {
		return deny("allowlist entry has no host or port")
	}
	t := v.target
	if t.ip.IsValid() {
		a, err := netip.ParseAddr(trimBrackets(d.Host))
		if err != nil || a != t.ip {
			return notSent(CodeAddressForbidden, "url: an IP address is allowed only when the entry names that exact address")
		}
	} else if !hostMatchesEntry(t.host, d.Host) {
		return deny("url: host is not the entry's host")
	}
	if t.port != d.Port {
		return deny("url: port is not the entry's port")
	}
	if !pathHasPrefix(mustUnescape(t.path), d.PathPrefix) {
		return deny("url: path is outside the entry's path prefix")
	}
	if !slices.Contains(d.Methods, r.Method) {
		return deny("method is not allowed for this destination")
	}
	if !slices.Contains(d.Callers, r.Caller) {
		return deny("caller is not allowed for this destination")
	}
	for _, fl := range v.fields {
		if !slices.Contains(d.Fields, fl) {
			return deny("card field " + string(fl) + " is not allowed for this destination")
		}
	}
	return nil
}

// hostMatchesEntry compares a normalized host with an entry's host: equal,
// or, for a "*.example.com" entry, one or more labels below example.com
// (never example.com itself).
func hostMatchesEntry(host, entry string) bool {
	if suffix, ok := strings.CutPrefix(entry, "*"); ok {
		sub, ok := strings.CutSuffix(host, suffix)
		return ok && strings.HasPrefix(suffix, ".") && sub != "" && !strings.HasSuffix(sub, ".")
	}
	return host == entry
}

func trimBrackets(h string) string {
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}

// pathHasPrefix reports whether the escaped path p is prefix or below it on
// a segment boundary ("/v1" admits "/v1" and "/v1/x", not "/v10").
func pathHasPrefix(p, prefix string) bool {
	if prefix == "" || prefix == "/" {
		return true
	}
	if !strings.HasPrefix(p, prefix) {
		return false
	}
	return len(p) == len(prefix) || strings.HasSuffix(prefix, "/") || p[len(prefix)] == '/'
}

// routeFor returns the transport for the entry and host, building it on
// first use. The key includes the host because a wildcard entry admits
// several. Routes belong to one allowlist document: when the document
// changes, the old routes' idle connections are closed and the routes
// dropped, so a connection checked under an old policy is not reused.
func (f *Forwarder) routeFor(al string, d *allowlist.Destination, t *target) (*route, *Error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sha != al {
		for _, r := range f.routes {
			r.transport.CloseIdleConnections()
		}
		clear(f.routes)
		f.sha = al
	}
	key := d.ID + "\x00" + t.dialAddr()
	if r, ok := f.routes[key]; ok {
		return r, nil
	}
	if len(f.routes) >= maxRoutes {
		// A wildcard entry admits any number of hosts; do not let them
		// grow the map without bound. In-flight forwards keep their
		// transports; only idle connections are closed.
		for _, r := range f.routes {
			r.transport.CloseIdleConnections()
		}
		clear(f.routes)
	}
	r, e := f.newRoute(t, d)
	if e != nil {
		return nil, e
	}
	f.routes[key] = r
	return r, nil
}

// entryTimeout is the bound on one upstream exchange under entry d: its
// own timeout or the default, capped by MaxTimeout. An auditor-approved
// entry may allow up to five minutes, more than the API server waits to
// write an answer.
func (f *Forwarder) entryTimeout(d *allowlist.Destination) time.Duration {
	t := f.timeout
	if d.Timeout > 0 {
		t = d.Timeout
	}
	if f.maxTimeout > 0 {
		t = min(t, f.maxTimeout)
	}
	return t
}

func (f *Forwarder) entryMaxResp(d *allowlist.Destination) int64 {
	if d.MaxResponseBytes > 0 {
		return d.MaxResponseBytes
	}
	return f.maxResp
}

// send performs one attempt of the exchange under its own span.
func (f *Forwarder) send(ctx context.Context, fw *forward, sha string, v *validated, d *allowlist.Destination, hdr http.Header, body *pooledBody, card *vaultclient.Card) (*Response, *Error) {
	ctx, span := f.tel.startUpstream(ctx, fw, d)
	resp, e := f.exchange(ctx, fw, sha, v, d, hdr, body, card)
	f.tel.endUpstream(span, fw, resp, e)
	return resp, e
}

// exchange performs the exchange and turns the answer into a Response.
func (f *Forwarder) exchange(ctx context.Context, fw *forward, sha string, v *validated, d *allowlist.Destination, hdr http.Header, body *pooledBody, card *vaultclient.Card) (*Response, *Error) {
	rt, e := f.routeFor(sha, d, v.target)
	if e != nil {
		body.close()
		return nil, e
	}

	uctx, cancel := context.WithTimeout(ctx, f.entryTimeout(d))
	defer cancel()
	uctx = httptrace.WithClientTrace(uctx, &httptrace.ClientTrace{
		GotConn: func(ci httptrace.GotConnInfo) {
			fw.gotConn.Store(true)
			if ci.Conn != nil {
				fw.remote.Store(ci.Conn.RemoteAddr().String())
				if tc, ok := ci.Conn.(interface{ ConnectionState() tls.ConnectionState }); ok {
					fw.setTLS(tc.ConnectionState())
				}
			}
		},
	})

	u := v.target.URL()
	req := &http.Request{
		Method:     v.method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     hdr,
		Host:       v.target.hostPort(),
	}
	if body != nil {
		req.Body = body
		req.ContentLength = int64(body.len())
		// No GetBody: the transport may then never replay a request whose
		// body it has started to send, so a card is never sent twice by us.
	} else {
		// Not http.NoBody: net/http treats a request with a nil or NoBody
		// body as replayable, and silently resends it when a pooled
		// connection breaks after the request was written, which would send
		// a card in a header twice. An empty body of our own type is not
		// replayable. For GET-like methods the transport finds it empty and
		// sends no body; for POST, PUT and PATCH it sends an empty chunked
		// body.
		req.Body = emptyBody{}
	}
	req = req.WithContext(uctx)

	// The transport, not an http.Client: a RoundTrip is one exchange, so a
	// redirect comes back as an answer and is never followed (its target
	// was not checked against the allowlist).
	resp, err := rt.transport.RoundTrip(req)
	if err != nil {
		return nil, f.classifySendError(ctx, uctx, fw, err)
	}
	defer resp.Body.Close()
	if resp.TLS != nil {
		fw.setTLS(*resp.TLS)
	}

	maxBytes := f.entryMaxResp(d)
	out := &Response{Outcome: Answered, Status: resp.StatusCode}
	if !identityEncoding(resp.Header) {
		return nil, newError(CodeUpstreamError, Answered, "processor answered with a Content-Encoding that cannot be scanned", nil)
	}
	if resp.ContentLength > maxBytes {
		return nil, newError(CodeUpstreamTooLarge, Answered, "processor response is larger than the entry allows", nil)
	}
	raw := f.getBuf()
	defer f.putBuf(raw)
	n, err := readCapped(raw, resp.Body, maxBytes)
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			return nil, ce
		}
		if uctx.Err() != nil {
			return nil, newError(CodeUpstreamTimeout, Answered, "processor response body did not arrive in time", err)
		}
		return nil, newError(CodeUpstreamError, Answered, "processor response body was cut off", err)
	}
	own := cardscan.NewSecrets(card.Number.Reveal(), "") // masked in every encoding
	if fw.usedCVC {
		own = cardscan.NewSecrets(card.Number.Reveal(), card.CVC.Reveal())
	}
	defer own.Wipe()
	red := f.getBuf()
	defer f.putBuf(red)
	*red = growZeroed(*red, n) // masking keeps the length
	*red = own.Redact((*red)[:0], (*raw)[:n])
	if utf8.Valid(*red) {
		out.Body = string(*red)
	} else {
		out.Body = base64.StdEncoding.EncodeToString(*red)
		out.BodyEncoding = "base64"
	}
	out.Headers = f.cleanResponseHeaders(resp.Header, &own)
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		out.Location = out.Headers.Get("Location")
	}
	return out, nil
}

// classifySendError maps a failed exchange to a code and an outcome. Before
// a connection was handed to the request nothing can have been written;
// after it we assume the processor may have the card.
func (f *Forwarder) classifySendError(parent, uctx context.Context, fw *forward, err error) *Error {
	var ce *Error
	if errors.As(err, &ce) {
		return ce // from dialTLS: DNS, address policy, connect, TLS; all not_sent
	}
	timedOut := uctx.Err() == context.DeadlineExceeded || isTimeout(err)
	canceled := parent.Err() == context.Canceled
	if clientCertRefused(err) {
		return newError(CodeUpstreamTLSError, NotSent, "processor refused the gateway's client certificate", fmt.Errorf("forwarder: tls: %w", err))
	}
	if !fw.gotConn.Load() {
		switch {
		case canceled:
			return newError(CodeCanceled, NotSent, "request canceled before anything was sent", err)
		case timedOut:
			return newError(CodeUpstreamConnectFailed, NotSent, "timed out connecting to the destination", err)
		}
		return newError(CodeUpstreamConnectFailed, NotSent, "could not connect to the destination", err)
	}
	switch {
	case canceled:
		return newError(CodeCanceled, SentNoResponse, "request canceled after it may have been sent", err)
	case timedOut:
		return newError(CodeUpstreamTimeout, SentNoResponse, "processor did not answer in time", err)
	}
	return newError(CodeUpstreamError, SentNoResponse, "connection failed after the request may have been sent", err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// identityEncoding reports whether every Content-Encoding the processor
// named, in every header line and every comma-separated item, is identity
// (or empty). Anything else (gzip, br, an unknown token) is bytes we cannot
// scan for card numbers, which would reach the caller as base64.
func identityEncoding(h http.Header) bool {
	for _, v := range h.Values("Content-Encoding") {
		for item := range strings.SplitSeq(v, ",") {
			if item = strings.TrimSpace(item); item != "" && !strings.EqualFold(item, "identity") {
				return false
			}
		}
	}
	return true
}

// readCapped reads r into *buf, up to max bytes. More than max is an error.
// The buffer grows by copying into a larger one and zeroing the old, so no
// copy of the response is left behind for the GC.
func readCapped(buf *[]byte, r io.Reader, max int64) (int, error) {
	b := (*buf)[:0]
	lr := io.LimitReader(r, max+1)
	for {
		if len(b) == cap(b) {
			b = growZeroed(b, len(b)+minBufGrowth)
		}
		n, err := lr.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		*buf = b
		if int64(len(b)) > max {
			return 0, newError(CodeUpstreamTooLarge, Answered, "processor response is larger than the entry allows", nil)
		}
		if err == io.EOF {
			return len(b), nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// minBufGrowth is the least a full buffer grows by.
const minBufGrowth = 4 << 10

// growZeroed returns b's contents in a buffer of capacity at least n
// (doubling at least), and zeroes b: append would leave the old array, which
// may hold card data, to the GC as it is.
func growZeroed(b []byte, n int) []byte {
	if cap(b) >= n {
		return b
	}
	out := make([]byte, len(b), max(n, 2*cap(b)))
	copy(out, b)
	clear(b[:cap(b)])
	return out
}

// hopByHop are the headers of one connection (RFC 9110 §7.6.1), never passed
// on in either direction.
func hopByHop(name string) bool {
	switch name {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Http2-Settings":
		return true
	}
	return false
}

// cleanResponseHeaders returns the processor's headers without hop-by-hop
// headers (including those its Connection header names), cookies and the
// configured extras, with card numbers and the forwarded card masked in
// every value.
func (f *Forwarder) cleanResponseHeaders(h http.Header, own *cardscan.Secrets) http.Header {
	drop := map[string]bool{}
	for _, v := range h.Values("Connection") {
		for _, n := range strings.Split(v, ",") {
			drop[http.CanonicalHeaderKey(strings.TrimSpace(n))] = true
		}
	}
	out := make(http.Header, len(h))
	var buf []byte
	for name, vals := range h {
		k := http.CanonicalHeaderKey(name)
		if hopByHop(k) || drop[k] || f.stripResp[k] || k == "Set-Cookie" || k == "Set-Cookie2" || cardscan.ContainsString(k) {
			continue
		}
		for _, v := range vals {
			buf = own.Redact(buf[:0], []byte(v))
			out[k] = append(out[k], string(buf))
		}
	}
	return out
}

// bufSize is the capacity of a new pooled buffer: enough for a typical
// request or response, small enough that hundreds of forwards in flight hold
// little memory. Larger bodies grow the buffer (growZeroed), and a grown
// buffer goes back to the pool at its new size.
const bufSize = 4 << 10

func (f *Forwarder) getBuf() *[]byte {
	if b, ok := f.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, bufSize)
	return &b
}

// putBuf zeroes a buffer before pooling it: it may have held card data.
// The whole capacity, not just the length: an io.Reader may use all of the
// buffer it is given as scratch space.
func (f *Forwarder) putBuf(b *[]byte) {
	clear((*b)[:cap(*b)])
	*b = (*b)[:0]
	if cap(*b) > 4<<20 {
		return // let the GC have outsized buffers
	}
	f.bufs.Put(b)
}

// pooledBody is the rendered request body. It returns its buffer to the
// pool, zeroed, when the transport closes it; a Read after Close fails.
type pooledBody struct {
	f      *Forwarder
	mu     sync.Mutex
	buf    *[]byte
	r      bytes.Reader
	closed bool
}

func (b *pooledBody) len() int { return len(*b.buf) }

func (b *pooledBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errors.New("forwarder: read after close")
	}
	return b.r.Read(p)
}

// close is Close for a body that may be nil (a request without a body).
func (b *pooledBody) close() {
	if b != nil {
		b.Close()
	}
}

func (b *pooledBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		b.r.Reset(nil)
		b.f.putBuf(b.buf)
	}
	return nil
}

func (f *Forwarder) renderBody(v *validated, cv fieldValues) (*pooledBody, *Error) {
	if v.body.text == "" {
		return nil, nil
	}
	// The buffer is sized for the worst case first, so that rendering never
	// grows it: append would leave a copy of the card to the GC.
	buf := f.getBuf()
	*buf = growZeroed(*buf, bodyBound(v.body, cv))
	out, e := renderBody((*buf)[:0], v.body, v.bodyKind, cv)
	*buf = out
	if e != nil {
		f.putBuf(buf)
		return nil, e
	}
	pb := &pooledBody{f: f, buf: buf}
	pb.r.Reset(*buf)
	return pb, nil
}

// idEncoding is lowercase base32 with the digits 2-7 only, as the API's
// request ids: a forward id goes into every audit record, and the audit
// log refuses identifiers holding a Luhn-valid run of 13-19 digits, which
// hex ids would hold every few thousand forwards.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func newForwardID() string {
	var b [15]byte
	rand.Read(b[:]) // never fails (crypto/rand crashes the program instead)
	return "fwd_" + idEncoding.EncodeToString(b[:])
}

// setTLS records what the audit result needs of the connection.
func (fw *forward) setTLS(cs tls.ConnectionState) {
	fw.tlsMu.Lock()
	defer fw.tlsMu.Unlock()
	fw.tlsVersion = tls.VersionName(cs.Version)
	if len(cs.PeerCertificates) > 0 {
		sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
		fw.peerCert = hex.EncodeToString(sum[:])
	}
}

func (fw *forward) tlsInfo() (version, peerCert string) {
	fw.tlsMu.Lock()
	defer fw.tlsMu.Unlock()
	return fw.tlsVersion, fw.peerCert
}

// emptyBody is a request body with nothing in it that net/http cannot
// replay (see send).
type emptyBody struct{}

func (emptyBody) Read([]byte) (int, error) { return 0, io.EOF }
func (emptyBody) Close() error             { return nil }
