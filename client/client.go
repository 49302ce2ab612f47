package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Defaults of the options.
const (
	DefaultMaxAttempts      = 3
	DefaultBackoff          = 200 * time.Millisecond // before the second attempt; doubles after
	DefaultMaxBackoff       = 5 * time.Second
	DefaultMaxRetryAfter    = 30 * time.Second
	DefaultMaxResponseBytes = 8 << 20 // a 1 MiB processor body, JSON-escaped, with room
	DefaultMaxIdlePerHost   = 32

	DefaultDialTimeout         = 5 * time.Second
	DefaultTLSHandshakeTimeout = 5 * time.Second
	// DefaultResponseHeaderTimeout is longer than the gateway's default
	// listen.write_timeout (60s): the gateway answers every forward before
	// then, with an error if the processor is slow.
	DefaultResponseHeaderTimeout = 90 * time.Second
	DefaultIdleConnTimeout       = 90 * time.Second

	maxResponseHeaderBytes = 64 << 10
)

// Client calls one gateway. It is safe for concurrent use; make one per
// gateway and keep it, so that its connections are reused.
type Client struct {
	base      string
	tlsSource tlsSource
	transport *http.Transport
	hc        *http.Client
	wrap      []func(http.RoundTripper) http.RoundTripper

	timeouts         Timeouts
	maxAttempts      int
	backoff          time.Duration
	maxBackoff       time.Duration
	maxRetryAfter    time.Duration
	maxResponseBytes int64
	noKeys           bool

	// sleep waits d or until ctx ends; tests replace it.
	sleep func(ctx context.Context, d time.Duration) bool
}

// Option configures a Client.
type Option func(*Client) error

// Timeouts bound the transport's steps; a zero field means its default.
// The whole call is bounded by the context given to it.
type Timeouts struct {
	Dial           time.Duration // TCP connect (DefaultDialTimeout)
	TLSHandshake   time.Duration // DefaultTLSHandshakeTimeout
	ResponseHeader time.Duration // from the request written to the answer's headers (DefaultResponseHeaderTimeout)
	IdleConn       time.Duration // how long an unused connection is kept (DefaultIdleConnTimeout)
}

// WithTimeouts sets the transport's timeouts.
func WithTimeouts(t Timeouts) Option {
	return func(c *Client) error {
		if t.Dial < 0 || t.TLSHandshake < 0 || t.ResponseHeader < 0 || t.IdleConn < 0 {
			return errors.New("client: timeouts must not be negative")
		}
		c.timeouts = t
		return nil
	}
}

// WithRetries sets how many times a call is tried at most (1: never
// retried; at most 10) and the backoff before the second attempt, doubled
// after each and capped at maxBackoff, with full jitter. The gateway's
// Retry-After is waited at least, unless it is longer than 30 seconds
// or than the context allows: then the error is returned at once.
func WithRetries(maxAttempts int, backoff, maxBackoff time.Duration) Option {
	return func(c *Client) error {
		if maxAttempts < 1 || maxAttempts > 10 {
			return fmt.Errorf("client: WithRetries: %d attempts: want 1 to 10", maxAttempts)
		}
		if backoff <= 0 || maxBackoff < backoff {
			return errors.New("client: WithRetries: want 0 < backoff <= maxBackoff")
		}
		c.maxAttempts, c.backoff, c.maxBackoff = maxAttempts, backoff, maxBackoff
		return nil
	}
}

// WithoutIdempotencyKeys stops the client generating an Idempotency-Key
// per forward, for a gateway on the single-node bolt store, which refuses
// the header. A forward without a usable answer is then retried only if
// its request was never written.
func WithoutIdempotencyKeys() Option {
	return func(c *Client) error {
		c.noKeys = true
		return nil
	}
}

// WithMaxResponseBytes caps the size of an answer the client reads
// (DefaultMaxResponseBytes). A larger answer is an *Error with
// ErrNoAnswer; set it above the gateway's egress.max_response_bytes.
func WithMaxResponseBytes(n int64) Option {
	return func(c *Client) error {
		if n <= 0 {
			return errors.New("client: WithMaxResponseBytes: want a positive size")
		}
		c.maxResponseBytes = n
		return nil
	}
}

// WithMiddleware wraps the client's transport, for example with
// otelhttp.NewTransport to propagate a trace (the gateway continues a W3C
// traceparent). The wrapper sees every attempt, with the request body;
// it must not log bodies. Several wrappers apply in order, the last
// outermost.
func WithMiddleware(wrap func(http.RoundTripper) http.RoundTripper) Option {
	return func(c *Client) error {
		if wrap == nil {
			return errors.New("client: WithMiddleware: nil wrapper")
		}
		c.wrap = append(c.wrap, wrap)
		return nil
	}
}

// New returns a client for the gateway at baseURL ("https://host:port").
// One TLS option is required: WithPEMFiles, WithX509Source or
// WithX509SourceAndServerCA.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("client: the gateway URL must be https://host[:port] with no path, query or credentials")
	}
	c := &Client{
		base:             "https://" + u.Host,
		maxAttempts:      DefaultMaxAttempts,
		backoff:          DefaultBackoff,
		maxBackoff:       DefaultMaxBackoff,
		maxRetryAfter:    DefaultMaxRetryAfter,
		maxResponseBytes: DefaultMaxResponseBytes,
		sleep:            sleepCtx,
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if c.tlsSource == nil {
		return nil, errors.New("client: mTLS is required: give WithPEMFiles, WithX509Source or WithX509SourceAndServerCA")
	}
	tlsConf, err := c.tlsSource()
	if err != nil {
		return nil, err
	}
	t := c.timeouts
	c.transport = &http.Transport{
		// Direct: the gateway is an internal service, and a proxy from the
		// environment would see who calls it.
		Proxy:                  nil,
		DialContext:            (&net.Dialer{Timeout: orDefault(t.Dial, DefaultDialTimeout), KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:        tlsConf,
		TLSHandshakeTimeout:    orDefault(t.TLSHandshake, DefaultTLSHandshakeTimeout),
		ResponseHeaderTimeout:  orDefault(t.ResponseHeader, DefaultResponseHeaderTimeout),
		IdleConnTimeout:        orDefault(t.IdleConn, DefaultIdleConnTimeout),
		ExpectContinueTimeout:  time.Second,
		MaxIdleConns:           DefaultMaxIdlePerHost,
		MaxIdleConnsPerHost:    DefaultMaxIdlePerHost,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		ForceAttemptHTTP2:      true,
	}
	var rt http.RoundTripper = c.transport
	for _, w := range c.wrap {
		rt = w(rt)
	}
	c.hc = &http.Client{
		Transport: rt,
		// The gateway never redirects; a redirect is an answer to report,
		// not to follow with a card's request body.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// CloseIdleConnections closes the connections kept for reuse; the next
// call makes a new one (and a new TLS handshake, with the current
// certificate).
func (c *Client) CloseIdleConnections() { c.transport.CloseIdleConnections() }

// Tokenize stores card at the gateway and returns its token. It is
// retried only as the package documentation says: the gateway has no
// idempotency for it, and a tokenize that may have been stored is not
// repeated.
func (c *Client) Tokenize(ctx context.Context, card Card) (*TokenInfo, error) {
	body, err := json.Marshal(card.wire())
	if err != nil {
		return nil, fmt.Errorf("client: tokenize: encode: %w", err)
	}
	defer clear(body) // the number and CVC, once the call is over
	var out TokenInfo
	if _, err := c.call(ctx, call{op: "tokenize", path: "/v1/cards", body: body, status: http.StatusCreated}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Forward asks the gateway to send req with its token's card filled in.
// A nil error means the gateway did its part: the processor's own status
// is in the answer's Status. Set req.DryRun to check the request without
// reading the card or sending anything.
func (c *Client) Forward(ctx context.Context, req *ForwardRequest) (*ForwardResponse, error) {
	if req == nil {
		return nil, errors.New("client: forward: nil request")
	}
	key := req.IdempotencyKey
	if key != "" && !ValidIdempotencyKey(key) {
		return nil, &Error{Op: "forward", Code: ErrInvalidIdempotencyKey, Outcome: NotSent,
			Message: "the Idempotency-Key must be 1-128 characters of A-Z, a-z, 0-9, '-', '_', '.' or ':' (not sent)"}
	}
	if key == "" && !c.noKeys {
		req = withKey(req, NewIdempotencyKey())
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("client: forward: encode: %w", err)
	}
	var out ForwardResponse
	meta, err := c.call(ctx, call{op: "forward", path: "/v1/forward", body: body, status: http.StatusOK,
		forward: true, dryRun: req.DryRun, key: req.IdempotencyKey}, &out)
	if err != nil {
		return nil, err
	}
	out.RequestID, out.Replayed, out.IdempotencyKey = meta.requestID, meta.replayed, req.IdempotencyKey
	return &out, nil
}

// withKey returns a copy of req carrying key, so that the caller's request
// is left as it was given.
func withKey(req *ForwardRequest, key string) *ForwardRequest {
	cp := *req
	cp.IdempotencyKey = key
	return &cp
}
