// Package config owns cardgate's one configuration file: strict decoding
// (an unknown or duplicate key is an error), environment overrides for
// addresses and secrets, named defaults, and Validate, whose messages name
// the key and the fix. It holds settings only, never live state, and it
// never turns a safety check off by default.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"time"
)

// Modes. Dev mode enables the loopback-only development caller identity and
// the local keyring; production requires mTLS callers and a key service.
const (
	ModeProduction = "production"
	ModeDev        = "dev"
)

// Store and key backends.
const (
	StoreRedis = "redis"
	StoreBolt  = "bolt"
)

// Defaults, applied by Default and by Load before the file is decoded.
const (
	DefaultListenAddr        = "127.0.0.1:8443"
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 15 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultShutdownTimeout   = 60 * time.Second // at least the write timeout: a forward in flight may take that long
	DefaultMaxRequestBytes   = 256 << 10
	DefaultMaxHeaderBytes    = 32 << 10
	DefaultThreshold         = 2 // M-of-N: one auditor alone cannot widen the allowlist
	DefaultMaxValidity       = 90 * 24 * time.Hour
	DefaultRedisPrefix       = "cardgate:"
	DefaultDialTimeout       = 5 * time.Second
	DefaultDNSTimeout        = 2 * time.Second
	DefaultUpstreamTimeout   = 30 * time.Second
	DefaultMaxResponseBytes  = 1 << 20
	DefaultCVCTTL            = time.Hour
	DefaultLogLevel          = "info"
	DefaultServiceName       = "cardgate"
	DefaultTraceSampleRatio  = 1.0
	DefaultOTLPTimeout       = 10 * time.Second
)

// Trace exporters.
const (
	ExporterNone   = "none"
	ExporterStdout = "stdout"
	ExporterOTLP   = "otlp"
)

// Config is the whole gateway configuration.
type Config struct {
	// Mode is "production" (the default) or "dev".
	Mode string `yaml:"mode"`
	// Environment must equal the signed allowlist's environment, so a
	// staging allowlist cannot be replayed in production.
	Environment string    `yaml:"environment"`
	Listen      Listen    `yaml:"listen"`
	Allowlist   Allowlist `yaml:"allowlist"`
	Store       Store     `yaml:"store"`
	Keys        Keys      `yaml:"keys"`
	Egress      Egress    `yaml:"egress"`
	Cards       Cards     `yaml:"cards"`
	Log         Log       `yaml:"log"`
	Telemetry   Telemetry `yaml:"telemetry"`
	Admin       Admin     `yaml:"admin"`
	// The forward path's reliability sections; see forwarding.go.
	Audit       Audit       `yaml:"audit"`
	Limits      Limits      `yaml:"limits"`
	Idempotency Idempotency `yaml:"idempotency"`
	KillSwitch  KillSwitch  `yaml:"killswitch"`
	// Credentials are the processor credentials the gateway holds, by
	// name; see credentials.go.
	Credentials map[string]Credential `yaml:"credentials"`
	// Callers says which card operations each caller may do; nil (no
	// section) means the defaults in callers.go.
	Callers []Caller `yaml:"callers"`

	// env names, per key path, the environment variable that set it, so
	// that a problem with the value can say where it came from.
	env map[string]string
}

// Listen is the caller-facing HTTPS listener.
type Listen struct {
	Addr string `yaml:"addr"`
	// TLS is required outside dev mode; callers must then present a client
	// certificate issued by ClientCAFile.
	TLS               ListenTLS     `yaml:"tls"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	ShutdownTimeout   time.Duration `yaml:"shutdown_timeout"`
	MaxRequestBytes   int64         `yaml:"max_request_bytes"`
	MaxHeaderBytes    int           `yaml:"max_header_bytes"`
}

// ListenTLS names the server certificate and the CA that issues caller
// certificates.
type ListenTLS struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
	// CRLFile, when set, is a certificate revocation list (PEM or DER)
	// signed by the client CA: a caller whose certificate serial it lists
	// is refused at the handshake. It is re-read on SIGHUP and when the
	// file changes; a list past its next update refuses every caller.
	CRLFile string `yaml:"crl_file"`
}

// Enabled reports whether any TLS file is set.
func (t ListenTLS) Enabled() bool {
	return t.CertFile != "" || t.KeyFile != "" || t.ClientCAFile != "" || t.CRLFile != ""
}

// Allowlist locates the signed allowlist and pins who may sign it.
type Allowlist struct {
	Path string `yaml:"path"`
	// SignaturesDir holds one detached SSHSIG file (*.sig) per signer.
	SignaturesDir string `yaml:"signatures_dir"`
	// AllowedSigners is an OpenSSH allowed_signers file.
	AllowedSigners string        `yaml:"allowed_signers"`
	Threshold      int           `yaml:"threshold"`
	MaxValidity    time.Duration `yaml:"max_validity"`
	// StateFile keeps the rollback high-water mark (the highest version
	// ever accepted) for a single node. With the Redis store and no
	// StateFile, the mark is kept in Redis and shared by every replica.
	StateFile string `yaml:"state_file"`
}

// Store selects the card store.
type Store struct {
	Backend string `yaml:"backend"`
	Redis   Redis  `yaml:"redis"`
	Bolt    Bolt   `yaml:"bolt"`
}

// Bolt is the embedded single-file store, for single-node use.
type Bolt struct {
	Path string `yaml:"path"`
}

// Local is the development keyring: key material in a file on the gateway.
type Local struct {
	Path string `yaml:"path"`
	// UnsafeAllowOutsideDev permits the local keyring outside dev mode.
	// With it the gateway holds its own key-encryption key, which defeats
	// key custody on separate machines. Never set it in production.
	UnsafeAllowOutsideDev bool `yaml:"unsafe_allow_outside_dev"`
}

// Egress configures the connections to processors.
type Egress struct {
	// CAFile, when set, replaces the system roots with this PEM bundle for
	// processors. Certificate verification itself is never optional.
	CAFile string `yaml:"ca_file"`
	// CABundles names PEM bundles an allowlist entry can pin with
	// tls.ca_bundle, for processors with a private CA.
	CABundles map[string]string `yaml:"ca_bundles"`
	// ClientCerts names the client certificates an allowlist entry can
	// present with tls.client_cert, for processors that require mTLS. A
	// certificate is presented only on connections for entries naming it.
	ClientCerts map[string]ClientCert `yaml:"client_certs"`
	// StripResponseHeaders names extra processor response headers that are
	// never returned to callers (hop-by-hop and Set-Cookie always are).
	StripResponseHeaders []string      `yaml:"strip_response_headers"`
	DialTimeout          time.Duration `yaml:"dial_timeout"`
	DNSTimeout           time.Duration `yaml:"dns_timeout"`
	Timeout              time.Duration `yaml:"timeout"`
	MaxResponseBytes     int64         `yaml:"max_response_bytes"`
	Retry                Retry         `yaml:"retry"`
}

// ClientCert is a PEM certificate (chain) and its private key.
type ClientCert struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Cards configures card handling.
type Cards struct {
	// CVCTTL bounds how long a CVC is kept after tokenization.
	CVCTTL time.Duration `yaml:"cvc_ttl"`
	// Retention expires a card not used (tokenized, forwarded, updated,
	// given a new CVC) for that long; 0 keeps cards for ever. See
	// docs/cards.md.
	Retention time.Duration `yaml:"retention"`
	// PerCaller is each caller's budget for the card calls (tokenize,
	// read, update, cvc, delete) together; zero rate means no limit.
	PerCaller Limit `yaml:"per_caller"`
}

// Log configures the structured log.
type Log struct {
	Level string `yaml:"level"`
}

// Telemetry configures OpenTelemetry. Spans go to Traces.Exporter; metrics
// are served for scraping on the admin listener's /metrics (see Admin), so
// they exist only when the admin listener is on.
type Telemetry struct {
	// ServiceName is the service.name resource attribute of every span and
	// metric.
	ServiceName string `yaml:"service_name"`
	Traces      Traces `yaml:"traces"`
}

// Traces selects where spans go.
type Traces struct {
	// Exporter is "none" (the default), "stdout" (one JSON object per span
	// on standard output, for development) or "otlp" (OTLP over HTTP).
	Exporter string `yaml:"exporter"`
	// SampleRatio is the share of new traces recorded, from 0 to 1. A
	// caller's sampling decision (W3C traceparent) is followed.
	SampleRatio float64 `yaml:"sample_ratio"`
	OTLP        OTLP    `yaml:"otlp"`
}

// OTLP is the collector that receives spans over OTLP/HTTP (protobuf).
type OTLP struct {
	// Endpoint is the full traces URL, such as
	// https://otel-collector:4318/v1/traces. An http:// URL sends spans
	// unencrypted: use it only on a host-local or private network.
	Endpoint string `yaml:"endpoint"`
	// CAFile verifies an https collector instead of the system roots.
	CAFile string `yaml:"ca_file"`
	// Timeout bounds one export.
	Timeout time.Duration `yaml:"timeout"`
}

// Admin is the operators' listener: /metrics (Prometheus), /healthz and
// /readyz. It has no authentication and serves no card endpoint.
type Admin struct {
	// Addr is host:port; empty (the default) turns the listener off. The
	// host must be named: 127.0.0.1:9464 keeps it on loopback, and only an
	// explicit 0.0.0.0:9464 exposes it to a scraper on the network.
	Addr string `yaml:"addr"`
}

// Default returns a configuration with every default filled in.
func Default() Config {
	c := Config{
		Mode: ModeProduction,
		Listen: Listen{
			Addr:              DefaultListenAddr,
			ReadHeaderTimeout: DefaultReadHeaderTimeout,
			ReadTimeout:       DefaultReadTimeout,
			WriteTimeout:      DefaultWriteTimeout,
			IdleTimeout:       DefaultIdleTimeout,
			ShutdownTimeout:   DefaultShutdownTimeout,
			MaxRequestBytes:   DefaultMaxRequestBytes,
			MaxHeaderBytes:    DefaultMaxHeaderBytes,
		},
		Allowlist: Allowlist{Threshold: DefaultThreshold, MaxValidity: DefaultMaxValidity},
		Store:     Store{Backend: StoreRedis, Redis: defaultRedis()},
		Keys:      Keys{Backend: KeysLocal, HSM: defaultHSM(), Vault: defaultVault()},
		Egress: Egress{
			DialTimeout:      DefaultDialTimeout,
			DNSTimeout:       DefaultDNSTimeout,
			Timeout:          DefaultUpstreamTimeout,
			MaxResponseBytes: DefaultMaxResponseBytes,
		},
		Cards: Cards{CVCTTL: DefaultCVCTTL},
		Log:   Log{Level: DefaultLogLevel},
		Telemetry: Telemetry{
			ServiceName: DefaultServiceName,
			Traces: Traces{
				Exporter:    ExporterNone,
				SampleRatio: DefaultTraceSampleRatio,
				OTLP:        OTLP{Timeout: DefaultOTLPTimeout},
			},
		},
	}
	c.setForwardingDefaults()
	return c
}

// WriteMargin is the time the gateway needs around one upstream exchange:
// the store and key backend reads before it, the scan and reply after it.
const WriteMargin = 10 * time.Second

// Validate checks the whole configuration and returns every problem, each
// a *FieldError, joined.
func (c *Config) Validate() error {
	var errs []error
	for _, p := range c.problems() {
		errs = append(errs, p)
	}
	return errors.Join(errs...)
}

// problems is Validate's list. A problem with a key an environment
// variable set names that variable.
func (c *Config) problems() []*FieldError {
	var errs []*FieldError
	bad := func(key, format string, args ...any) {
		errs = append(errs, &FieldError{Key: key, Msg: fmt.Sprintf(format, args...), Env: c.envFor(key)})
	}
	dev := c.Mode == ModeDev
	switch c.Mode {
	case ModeProduction, ModeDev:
	default:
		bad("mode", "%q is not a mode: use %q or %q", c.Mode, ModeProduction, ModeDev)
	}
	if c.Environment == "" {
		bad("environment", "required: set it to the environment named in the signed allowlist (for example \"production\")")
	}

	if _, _, err := net.SplitHostPort(c.Listen.Addr); err != nil {
		bad("listen.addr", "%q is not host:port (%v)", c.Listen.Addr, err)
	}
	if c.Listen.TLS.Enabled() {
		t := c.Listen.TLS
		if t.CertFile == "" || t.KeyFile == "" {
			bad("listen.tls", "cert_file and key_file must both be set")
		}
		if t.ClientCAFile == "" {
			bad("listen.tls.client_ca_file", "required: callers are authenticated by mTLS; name the CA that issues their certificates")
		}
	} else if !dev {
		bad("listen.tls", "required outside dev mode: set cert_file, key_file and client_ca_file so callers authenticate with mTLS")
	} else if !isLoopback(c.Listen.Addr) {
		bad("listen.addr", "without TLS the dev listener must bind a loopback address such as 127.0.0.1:8443, not %q", c.Listen.Addr)
	}
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			bad(key, "must be a positive duration such as \"5s\"")
		}
	}
	positive("listen.read_header_timeout", c.Listen.ReadHeaderTimeout)
	positive("listen.read_timeout", c.Listen.ReadTimeout)
	positive("listen.write_timeout", c.Listen.WriteTimeout)
	// The answer to a forward must be able to reach the caller after the
	// processor took its whole timeout; otherwise the caller sees a broken
	// connection for a card that was sent, and is likely to retry it.
	// The server's write deadline starts when the request's headers are
	// read; the body may take up to read_timeout to arrive before the
	// forward starts.
	if c.Listen.WriteTimeout > 0 && c.Egress.Timeout > 0 && c.Listen.WriteTimeout < c.Listen.ReadTimeout+c.Egress.Timeout+WriteMargin {
		bad("listen.write_timeout", "%v must be at least listen.read_timeout (%v) + egress.timeout (%v) + %v, so a processor's late answer still reaches the caller", c.Listen.WriteTimeout, c.Listen.ReadTimeout, c.Egress.Timeout, WriteMargin)
	}
	// SIGTERM drains for shutdown_timeout; a shorter drain than the longest
	// forward would cut a forward whose card was already sent.
	if c.Listen.ShutdownTimeout > 0 && c.Listen.ShutdownTimeout < c.Listen.WriteTimeout {
		bad("listen.shutdown_timeout", "%v must be at least listen.write_timeout (%v), so that forwards in flight finish after SIGTERM", c.Listen.ShutdownTimeout, c.Listen.WriteTimeout)
	}
	positive("listen.idle_timeout", c.Listen.IdleTimeout)
	positive("listen.shutdown_timeout", c.Listen.ShutdownTimeout)
	if c.Listen.MaxRequestBytes <= 0 {
		bad("listen.max_request_bytes", "must be positive (default %d)", DefaultMaxRequestBytes)
	}
	if c.Listen.MaxHeaderBytes <= 0 {
		bad("listen.max_header_bytes", "must be positive (default %d)", DefaultMaxHeaderBytes)
	}

	if c.Allowlist.Path == "" {
		bad("allowlist.path", "required: the signed allowlist file")
	}
	if c.Allowlist.SignaturesDir == "" {
		bad("allowlist.signatures_dir", "required: the directory holding one *.sig file per signer")
	}
	if c.Allowlist.AllowedSigners == "" {
		bad("allowlist.allowed_signers", "required: the pinned OpenSSH allowed_signers file")
	}
	if c.Allowlist.Threshold < 1 {
		bad("allowlist.threshold", "must be at least 1 (the default, 2, is recommended)")
	}
	positive("allowlist.max_validity", c.Allowlist.MaxValidity)
	if c.Store.Backend != StoreRedis && c.Allowlist.StateFile == "" {
		bad("allowlist.state_file", "required without the redis store: a file that keeps the highest allowlist version ever accepted, so a restart cannot be rolled back")
	}

	switch c.Store.Backend {
	case StoreRedis:
		c.Store.Redis.validate(bad)
	case StoreBolt:
		if c.Store.Bolt.Path == "" {
			bad("store.bolt.path", "required for the bolt store: the database file, or set %s", EnvBoltPath)
		}
	default:
		bad("store.backend", "%q is not a store: use %q or %q", c.Store.Backend, StoreRedis, StoreBolt)
	}

	c.validateKeys(bad, dev)

	for name, path := range c.Egress.CABundles {
		if name == "" || path == "" {
			bad("egress.ca_bundles", "each bundle needs a name and a PEM file path")
		}
	}
	for name, cc := range c.Egress.ClientCerts {
		key := "egress.client_certs." + name
		if !validCertName(name) {
			bad(key, "%q is not a name an allowlist entry can use in tls.client_cert: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
		}
		if cc.CertFile == "" {
			bad(key+".cert_file", "required: the PEM certificate (with its intermediates) presented to the processor")
		}
		if cc.KeyFile == "" {
			bad(key+".key_file", "required: the PEM private key of cert_file")
		}
	}
	positive("egress.dial_timeout", c.Egress.DialTimeout)
	positive("egress.dns_timeout", c.Egress.DNSTimeout)
	positive("egress.timeout", c.Egress.Timeout)
	if c.Egress.MaxResponseBytes <= 0 {
		bad("egress.max_response_bytes", "must be positive (default %d)", DefaultMaxResponseBytes)
	}
	positive("cards.cvc_ttl", c.Cards.CVCTTL)
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not a level: use debug, info, warn or error", c.Log.Level)
	}
	c.validateTelemetry(bad)
	c.validateForwarding(bad)
	c.validateCredentials(bad, dev)
	c.validateCards(bad)
	return errs
}

// validCertName is the allowlist's grammar for tls.client_cert, so that
// every configured name can be named by an entry.
func validCertName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// validateTelemetry checks the telemetry and admin sections.
func (c *Config) validateTelemetry(bad func(key, format string, args ...any)) {
	t := c.Telemetry
	if t.ServiceName == "" {
		bad("telemetry.service_name", "must not be empty (default %q)", DefaultServiceName)
	}
	if r := t.Traces.SampleRatio; !(r >= 0 && r <= 1) {
		bad("telemetry.traces.sample_ratio", "%v is not a ratio: use a number from 0 (no new traces) to 1 (every trace)", r)
	}
	switch t.Traces.Exporter {
	case ExporterNone, ExporterStdout:
	case ExporterOTLP:
		if msg := checkOTLPEndpoint(t.Traces.OTLP.Endpoint); msg != "" {
			bad("telemetry.traces.otlp.endpoint", "%s; or set %s", msg, EnvOTLPEndpoint)
		}
		if t.Traces.OTLP.Timeout <= 0 {
			bad("telemetry.traces.otlp.timeout", "must be a positive duration such as \"10s\"")
		}
	default:
		bad("telemetry.traces.exporter", "%q is not an exporter: use %q, %q or %q", t.Traces.Exporter, ExporterNone, ExporterStdout, ExporterOTLP)
	}
	if a := c.Admin.Addr; a != "" {
		host, _, err := net.SplitHostPort(a)
		switch {
		case err != nil:
			bad("admin.addr", "%q is not host:port (%v)", a, err)
		case host == "":
			// ":9464" would listen on every interface; say so explicitly.
			bad("admin.addr", "%q names no host: use 127.0.0.1%s for loopback, or 0.0.0.0%s to let a scraper on the network reach it", a, a, a)
		}
	}
}

// checkOTLPEndpoint returns what is wrong with a traces URL, or "".
func checkOTLPEndpoint(raw string) string {
	if raw == "" {
		return "required for the otlp exporter: the collector's traces URL such as https://otel-collector:4318/v1/traces"
	}
	u, err := url.Parse(raw)
	// Messages name the URL without its password: configuration errors are
	// printed and logged.
	switch {
	case err != nil:
		return "the value is not a URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("%q must start with https:// (or http:// on a private network)", u.Redacted())
	case u.Host == "":
		return fmt.Sprintf("%q names no host", u.Redacted())
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return fmt.Sprintf("%q must not carry credentials, a query or a fragment: send credentials in OTEL_EXPORTER_OTLP_HEADERS", u.Redacted())
	}
	return ""
}
