package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/api"
	"github.com/cardgate/cardgate/config"
	"github.com/cardgate/cardgate/credentials"
	"github.com/cardgate/cardgate/forwarder"
	"github.com/cardgate/cardgate/vaultclient"
)

// gateway is one running cardgate: every part built from one Config.
type gateway struct {
	cfg       config.Config
	log       *slog.Logger
	allowlist *allowlist.Holder
	vault     *vaultclient.Vault
	creds     *credentials.Store // nil when none are configured (credentials.go)
	forwarder *forwarder.Forwarder
	guards    *guards
	server    *http.Server
	admin     *http.Server    // nil unless admin.addr is set
	crl       *api.Revocation // nil unless listen.tls.crl_file is set
	tel       *telemetry
	loops     *runGroup  // the background loops; serve starts them, close awaits them
	cards     cardWiring // cards_lifecycle.go
	closers   []io.Closer
}

// openGateway builds the gateway from cfg. It verifies the allowlist before
// anything listens: an unsigned or altered allowlist stops the start.
func openGateway(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *gateway, err error) {
	g := &gateway{cfg: cfg, log: log, loops: newRunGroup(ctx)}
	defer func() {
		if err != nil {
			g.close()
		}
	}()
	// First, so that it is closed last and flushes every span.
	if g.tel, err = openTelemetry(ctx, cfg, os.Stdout); err != nil {
		return nil, err
	}
	g.closers = append(g.closers, g.tel)
	log = withTraceIDs(log)
	g.log = log

	var rdb redis.UniversalClient
	if cfg.Store.Backend == config.StoreRedis {
		if rdb, err = newRedisClient(cfg.Store.Redis); err != nil {
			return nil, err
		}
		g.closers = append(g.closers, rdb)
		if err := checkEviction(ctx, rdb, log); err != nil {
			return nil, err
		}
	}
	if cfg.Allowlist.Threshold < 2 && cfg.Mode != config.ModeDev {
		log.Warn("allowlist.threshold is 1: a single signer can change where cards may be sent; use 2 or more")
	}

	signers, err := allowlist.ReadAllowedSigners(ctx, cfg.Allowlist.AllowedSigners)
	if err != nil {
		return nil, fmt.Errorf("allowlist.allowed_signers: %w", err)
	}
	// Before the allowlist: it is refused if an entry names a client
	// certificate that is not configured here.
	clientCerts, err := loadClientCerts(cfg.Egress.ClientCerts)
	if err != nil {
		return nil, err
	}
	var state allowlist.StateStore
	if cfg.Allowlist.StateFile != "" {
		state = allowlist.NewFileStateStore(cfg.Allowlist.StateFile)
	} else {
		// Validate guarantees the redis store here: the mark is shared by
		// every replica on it, scoped to the environment.
		state = allowlist.NewRedisStateStore(rdb, cfg.Store.Redis.Prefix+"allowlist:state:"+cfg.Environment)
	}
	loads := newAllowlistRecorder(log, cfg.Audit.Timeout)
	g.allowlist = allowlist.NewHolder(allowlist.HolderOptions{
		OnLoad:        loads.onLoad,
		Path:          cfg.Allowlist.Path,
		SignaturesDir: cfg.Allowlist.SignaturesDir,
		Policy: allowlist.Policy{
			AllowedSigners: signers,
			Threshold:      cfg.Allowlist.Threshold,
			Environment:    cfg.Environment,
			MaxValidity:    cfg.Allowlist.MaxValidity,
		},
		State:         state,
		Logger:        log,
		MeterProvider: g.tel.meters,
		Check: func(d *allowlist.Document) error {
			return errors.Join(checkDestinationTLS(d, clientCerts, cfg.Egress.CABundles), checkDestinationCredentials(d, cfg.Credentials))
		},
	})
	if err := g.allowlist.LoadContext(ctx); err != nil {
		return nil, fmt.Errorf("refusing to start: %w", err)
	}

	var store vaultclient.Store
	switch cfg.Store.Backend {
	case config.StoreBolt:
		bolt, err := vaultclient.OpenBoltStoreWith(cfg.Store.Bolt.Path, vaultclient.BoltOptions{Logger: log, MeterProvider: g.tel.meters})
		if err != nil {
			return nil, fmt.Errorf("store.bolt: %w", err)
		}
		g.closers = append(g.closers, bolt)
		store = bolt
	case config.StoreRedis:
		store = newRedisCardStore(rdb, cfg)
	}
	keys, err := openKeys(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	g.closers = append(g.closers, keys)
	if unsafeLocalKeys(cfg) {
		// At every start, not once: whoever reads this log must not miss
		// that key custody is off.
		log.Warn(unsafeLocalKeysWarning, slog.String("keyring", cfg.Keys.Local.Path))
	}
	if g.creds, err = openCredentials(ctx, cfg, keys, log, g.tel.meters, &g.closers); err != nil {
		return nil, err
	}
	storeTimeout := time.Duration(0) // vaultclient's default, for bolt
	if cfg.Store.Backend == config.StoreRedis {
		storeTimeout = cfg.Store.Redis.Timeout
	}
	g.vault, err = vaultclient.New(store, keys, vaultclient.Options{
		CVCTTL:         cfg.Cards.CVCTTL,
		StoreTimeout:   storeTimeout,
		KeyTimeout:     keyTimeout(cfg),
		Logger:         log,
		TracerProvider: g.tel.tracers,
		MeterProvider:  g.tel.meters,
	})
	if err != nil {
		return nil, err
	}

	roots, err := certPool("egress.ca_file", cfg.Egress.CAFile)
	if err != nil {
		return nil, err
	}
	bundles := map[string]*x509.CertPool{}
	for name, path := range cfg.Egress.CABundles {
		if bundles[name], err = certPool("egress.ca_bundles."+name, path); err != nil {
			return nil, err
		}
	}
	if g.guards, err = openGuards(ctx, cfg, rdb, keys, log, &g.closers); err != nil {
		return nil, err
	}
	if err := loads.attach(ctx, g.guards.auditor); err != nil {
		return nil, err
	}
	fo := forwarder.Options{
		Allowlist:            g.allowlist,
		Cards:                g.vault,
		RootCAs:              roots,
		CABundles:            bundles,
		ClientCerts:          clientCerts,
		StripResponseHeaders: cfg.Egress.StripResponseHeaders,
		Credentials:          g.forwarderCredentials(),
		MaxRequestBodyBytes:  cfg.Listen.MaxRequestBytes,
		Logger:               log,
		TracerProvider:       g.tel.tracers,
		MeterProvider:        g.tel.meters,
		DefaultTimeout:       cfg.Egress.Timeout,
		DialTimeout:          cfg.Egress.DialTimeout,
		DNSTimeout:           cfg.Egress.DNSTimeout,
		MaxResponseBytes:     cfg.Egress.MaxResponseBytes,
		// One Detokenize: a store read and a key-backend call, each bounded
		// by its own configured timeout inside vaultclient.
		CardTimeout: cardTimeout(storeTimeout, keyTimeout(cfg)),
		// The answer must reach the caller before the server's write
		// deadline, which runs from the request's headers: the body may
		// take up to the read timeout before the forward starts.
		MaxTimeout: cfg.Listen.WriteTimeout - cfg.Listen.ReadTimeout - config.WriteMargin,
	}
	g.guards.apply(&fo, cfg)
	if g.forwarder, err = forwarder.New(fo); err != nil {
		return nil, err
	}

	ready := []api.Check{
		{Name: "allowlist", Check: g.allowlistReady},
		{Name: "cards", Check: func(ctx context.Context) (string, error) { return "", g.vault.Ping(ctx) }},
		keyCustodyCheck(cfg),
	}
	if cfg.Listen.TLS.CRLFile != "" {
		if g.crl, err = openRevocation(cfg.Listen.TLS); err != nil {
			return nil, err
		}
		ready = append(ready, api.Check{Name: "caller_crl", Check: func(context.Context) (string, error) { return g.crl.Check() }})
	}
	if err := g.openCardCalls(cfg, rdb, store, log); err != nil {
		return nil, err
	}
	dev := cfg.Mode == config.ModeDev
	handler, err := api.New(api.Options{
		Cards:           g.vault,
		Forwarder:       g.forwarder,
		MaxRequestBytes: cfg.Listen.MaxRequestBytes,
		MaxHeaderBytes:  cfg.Listen.MaxHeaderBytes,
		DevCallers:      dev && !cfg.Listen.TLS.Enabled(),
		Logger:          log,
		Ready:           append(append(ready, g.credentialChecks()...), g.guards.checks()...),
		CardCalls:       g.cards.api,
	})
	if err != nil {
		return nil, err
	}
	g.admin = g.tel.newAdminServer(ctx, cfg, handler, log)
	g.routeCheckpoint() // audit_checkpoint.go
	if g.crl != nil {
		// Per request as well as per handshake: a CRL loaded while a
		// caller's connection is open must stop that connection too.
		handler = g.crl.Handler(handler)
	}
	handler = g.tel.traceRequests(handler)
	g.server = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cfg.Listen.ReadHeaderTimeout,
		ReadTimeout:       cfg.Listen.ReadTimeout,
		WriteTimeout:      cfg.Listen.WriteTimeout,
		IdleTimeout:       cfg.Listen.IdleTimeout,
		MaxHeaderBytes:    api.ServerMaxHeaderBytes(cfg.Listen.MaxHeaderBytes), // above the limit, so the handler answers the JSON 431
		ErrorLog:          stdlog.New(serverLog{log: log}, "", 0),              // stdlog.go
		// Not ctx itself: SIGTERM cancels ctx, and a request in flight
		// must finish (serve's Shutdown drains it) rather than be canceled
		// half-way, perhaps after the card was sent.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if cfg.Listen.TLS.Enabled() {
		g.server.TLSConfig, err = callerTLS(cfg.Listen.TLS, g.crl)
		if err != nil {
			return nil, err
		}
	} else {
		log.Warn("DEV MODE: callers are not authenticated by mTLS; the " + api.DevCallerHeader + " header is trusted on loopback")
	}
	return g, nil
}

// allowlistReady reports the live allowlist, and a failed reload even
// while the last good allowlist still serves.
func (g *gateway) allowlistReady(ctx context.Context) (string, error) {
	st := g.allowlist.Status()
	_, err := g.allowlist.Current()
	detail := "no verified allowlist"
	if st.Version > 0 {
		detail = fmt.Sprintf("version %d, sha256 %s, expires %s", st.Version, st.SHA256, st.Expires.UTC().Format(time.RFC3339))
	}
	if st.LastError != "" {
		detail += "; last reload failed: " + st.LastError
	}
	return detail, err
}

// serve accepts on ln until ctx is done, then shuts down in order (see
// shutdown). A SIGHUP-style reload arrives on reload. It also stops, with
// an error, when the listener fails or a background loop ends on its own.
func (g *gateway) serve(ctx context.Context, ln net.Listener, reload <-chan struct{}) error {
	stopAdmin, err := g.serveAdmin(ctx)
	if err != nil {
		return err
	}
	defer stopAdmin()
	errc := make(chan error, 1)
	go func() {
		if g.server.TLSConfig != nil {
			errc <- g.server.ServeTLS(ln, "", "")
			return
		}
		errc <- g.server.Serve(ln)
	}()
	g.startLoops()
	g.log.Info("cardgate listening", slog.String("addr", ln.Addr().String()), slog.String("mode", g.cfg.Mode))
	for {
		select {
		case err := <-errc:
			// Serve has returned; requests already accepted may still run.
			return g.shutdown(ctx, nil, fmt.Errorf("listen: %w", err))
		case name := <-g.loops.Ended():
			g.log.Error("ALERT: a background loop ended on its own; shutting down", slog.String("loop", name))
			return g.shutdown(ctx, errc, fmt.Errorf("background loop %s ended on its own", name))
		case <-reload:
			// The holder logs the outcome and keeps the last good
			// allowlist when the new one fails.
			_ = g.allowlist.LoadContext(ctx)
			g.reloadCredentials(ctx)
			g.reloadCRL(true)
		case <-ctx.Done():
			return g.shutdown(ctx, errc, nil)
		}
	}
}

// startLoops starts every background loop as an actor of g.loops. The
// allowlist reloads on a file change as well as on SIGHUP.
func (g *gateway) startLoops() {
	g.loops.Go("allowlist watch", func(ctx context.Context) { _ = g.allowlist.Watch(ctx) })
	g.runCredentials(g.loops)
	g.guards.run(g.loops)
	if g.crl != nil {
		g.loops.Go("caller CRL poll", g.pollCRL)
	}
	g.runCardRetention(g.loops)
}

// shutdown stops the gateway in the one order that loses nothing: stop
// accepting and drain the requests in flight within
// listen.shutdown_timeout; log the final audit head, once no forward can
// append any more; stop the background loops and wait for each to return,
// since until then one may still use Redis, the audit sink or the keys.
// close, which the caller runs next, closes those. errc, unless nil,
// receives Serve's result; cause is why serve is stopping, nil for a
// SIGTERM.
func (g *gateway) shutdown(ctx context.Context, errc <-chan error, cause error) error {
	g.log.Info("shutting down: finishing requests in flight")
	errs := []error{cause}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.cfg.Listen.ShutdownTimeout)
	defer cancel()
	if err := g.server.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("shutdown: %w", err))
	}
	if errc != nil {
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("listen: %w", err))
		}
	}
	// The last anchor against truncating the audit log, and the last
	// checkpoint, once no forward can append any more.
	g.guards.logHead(true)
	g.guards.publishCheckpoint(sctx)
	if err := g.loops.Stop(loopStopTimeout); err != nil {
		g.log.Error("closing the stores and the audit sink with background loops still running", slog.String("error", err.Error()))
		errs = append(errs, fmt.Errorf("shutdown: %w", err))
	} else {
		g.log.Info("background loops stopped")
	}
	return errors.Join(errs...)
}

// crlPollInterval is how often the caller CRL file is checked for a change
// and the live CRLs for staleness.
const crlPollInterval = 10 * time.Second

// pollCRL checks the caller CRL every crlPollInterval until ctx ends.
func (g *gateway) pollCRL(ctx context.Context) {
	t := time.NewTicker(crlPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.reloadCRL(false)
		}
	}
}

// reloadCRL re-reads the caller CRL on SIGHUP (force) or when the file
// changed, and logs, at every poll, a CRL past its next update: from then
// on every caller of its CA is refused at the handshake.
func (g *gateway) reloadCRL(force bool) {
	if g.crl == nil {
		return
	}
	if force || g.crl.Changed() {
		if err := g.crl.Load(); err != nil {
			g.log.Error("caller CRL reload refused; keeping the last good one", slog.String("error", err.Error()))
		} else {
			g.log.Info("caller CRL loaded", slog.String("file", g.cfg.Listen.TLS.CRLFile))
		}
	}
	if _, err := g.crl.Check(); err != nil {
		g.log.Error("ALERT: caller CRL is stale; refusing callers until a fresh one is loaded", slog.String("error", err.Error()))
	}
}

// close releases what openGateway built, in reverse. The background loops
// are stopped and awaited first, whatever path led here: serve's shutdown
// has done so already, an aborted start has none running.
func (g *gateway) close() {
	if err := g.loops.Stop(loopStopTimeout); err != nil {
		g.log.Error("closing the stores and the audit sink with background loops still running", slog.String("error", err.Error()))
	}
	if g.forwarder != nil {
		g.forwarder.Close()
	}
	for i := len(g.closers) - 1; i >= 0; i-- {
		// A failed Close can be the audit file's last fsync: the records
		// answered behind it may be lost, so it is worth an error line.
		// Closers are stores, sinks and exporters; their errors quote
		// no caller or processor bytes.
		if err := g.closers[i].Close(); err != nil {
			g.log.Error("closing at shutdown failed", slog.String("closer", fmt.Sprintf("%T", g.closers[i])),
				slog.String("error", err.Error()))
		}
	}
}

// egressRoots reads a PEM bundle; an empty path means the system roots.
func certPool(key, path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: %s holds no PEM certificate", key, path)
	}
	return pool, nil
}

// loadClientCerts reads egress.client_certs. A missing file or a key that
// does not match its certificate stops the start.
func loadClientCerts(certs map[string]config.ClientCert) (map[string]*tls.Certificate, error) {
	out := make(map[string]*tls.Certificate, len(certs))
	for name, cc := range certs {
		cert, err := tls.LoadX509KeyPair(cc.CertFile, cc.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("egress.client_certs.%s: %w", name, err)
		}
		out[name] = &cert
	}
	return out, nil
}

// checkDestinationTLS refuses an allowlist naming a client certificate or
// CA bundle this gateway does not configure: its forwards could only fail,
// so the last good allowlist stays live and the refusal is reported at load.
func checkDestinationTLS(d *allowlist.Document, certs map[string]*tls.Certificate, bundles map[string]string) error {
	for _, dst := range d.Destinations {
		if dst.TLS == nil {
			continue
		}
		if dst.TLS.ClientCert != "" && certs[dst.TLS.ClientCert] == nil {
			return fmt.Errorf("destination %s names client certificate %q, which egress.client_certs does not configure; add it and restart", dst.ID, dst.TLS.ClientCert)
		}
		if dst.TLS.CABundle != "" && bundles[dst.TLS.CABundle] == "" {
			return fmt.Errorf("destination %s names CA bundle %q, which egress.ca_bundles does not configure; add it and restart", dst.ID, dst.TLS.CABundle)
		}
	}
	return nil
}

// openRevocation loads listen.tls.crl_file against the caller CAs.
func openRevocation(c config.ListenTLS) (*api.Revocation, error) {
	pemBytes, err := os.ReadFile(c.ClientCAFile)
	if err != nil {
		return nil, fmt.Errorf("listen.tls.client_ca_file: %w", err)
	}
	var cas []*x509.Certificate
	for rest := pemBytes; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		ca, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("listen.tls.client_ca_file: %w", err)
		}
		cas = append(cas, ca)
	}
	r, err := api.NewRevocation(c.CRLFile, cas, nil)
	if err != nil {
		return nil, fmt.Errorf("listen.tls.crl_file: %w", err)
	}
	return r, nil
}

func callerTLS(c config.ListenTLS, crl *api.Revocation) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("listen.tls: %w", err)
	}
	if c.ClientCAFile == "" {
		// A nil pool would verify callers against the system roots.
		return nil, errors.New("listen.tls.client_ca_file: required")
	}
	pool, err := certPool("listen.tls.client_ca_file", c.ClientCAFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
	if crl != nil {
		// After the chain verification, never instead of it.
		cfg.VerifyConnection = crl.VerifyConnection
	}
	return cfg, nil
}

// checkEviction refuses a Redis that may evict keys: an evicted card record
// is a lost card, and an evicted allowlist high-water mark reopens rollback.
// A Redis that hides CONFIG (some managed services) gets a warning instead.
func checkEviction(ctx context.Context, rdb redis.UniversalClient, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := rdb.ConfigGet(ctx, "maxmemory-policy").Result()
	if err != nil {
		log.Warn("cannot read Redis maxmemory-policy; make sure it is noeviction", slog.String("error", err.Error()))
		return nil
	}
	if p, ok := res["maxmemory-policy"]; ok && p != "noeviction" {
		return fmt.Errorf("store.redis: Redis maxmemory-policy is %q; cardgate needs noeviction, or Redis may evict card records and the allowlist rollback mark", p)
	}
	return nil
}

// cardTimeout bounds one Detokenize from the outside: the store's and the
// key backend's own timeouts (zero: vaultclient's defaults), plus a margin.
func cardTimeout(store, key time.Duration) time.Duration {
	if store == 0 {
		store = vaultclient.DefaultStoreTimeout
	}
	if key == 0 {
		key = vaultclient.DefaultKeyTimeout
	}
	return store + key + time.Second
}
