package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cardgate/cardgate/api"
	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/audit/checkpoint"
	"github.com/cardgate/cardgate/canary"
	"github.com/cardgate/cardgate/config"
	"github.com/cardgate/cardgate/forwarder"
	"github.com/cardgate/cardgate/idempotency"
	"github.com/cardgate/cardgate/killswitch"
	"github.com/cardgate/cardgate/ratelimit"
	"github.com/cardgate/cardgate/vaultclient"
)

// guards are the forward path's reliability parts: the audit log, budgets,
// the kill switch, canaries and idempotency. Each is built from its config
// section; what the store backend cannot support is left nil, and the
// forwarder documents what nil means for each.
type guards struct {
	auditor  *audit.Log
	file     *audit.FileSink         // nil unless audit.file
	stream   *audit.RedisStreamSink  // nil unless audit.redis_stream
	limiter  forwarder.Limiter       // nil when both limits are zero
	watcher  *killswitch.Watcher     // nil only in dev mode with bolt and no killswitch.file
	canaries *canary.Watcher         // nil with bolt
	idem     *idempotency.RedisStore // nil with bolt
	log      *slog.Logger

	// checkpoints is nil unless audit.checkpoint (audit_checkpoint.go).
	checkpoints *checkpoint.Publisher

	headMu    sync.Mutex
	lastChain string // the head logHead logged last
	lastSeq   uint64
}

// headInterval is how often the audit chain's head goes to the operational
// log (see logHeads).
const headInterval = time.Minute

// With both audit sinks, how often the reconciler looks for records the
// stream lacks, and how long one reconciliation may take.
const (
	auditReconcileInterval = 500 * time.Millisecond
	auditReconcileTimeout  = 10 * time.Second
)

// Redis keys of the operator-controlled state, shared with the CLI.
func killSwitchKey(cfg config.Config) string {
	return cfg.Store.Redis.Prefix + "killswitch:" + cfg.Environment
}

func canaryKey(cfg config.Config) string { return cfg.Store.Redis.Prefix + "canary:" + cfg.Environment }

// killSwitchStore returns the store cfg names, or nil when there is none
// (dev mode with bolt and no file).
func killSwitchStore(cfg config.Config, rdb redis.UniversalClient) killswitch.Store {
	switch {
	case cfg.Store.Backend == config.StoreRedis:
		return killswitch.NewRedisStore(rdb, killSwitchKey(cfg))
	case cfg.KillSwitch.File != "":
		return killswitch.NewFileStore(cfg.KillSwitch.File)
	}
	return nil
}

// openGuards builds the guards. Whatever it opens that needs closing is
// appended to *closers, also on error. keys seals the stored idempotency
// answers.
func openGuards(ctx context.Context, cfg config.Config, rdb redis.UniversalClient, keys vaultclient.Keyer, log *slog.Logger, closers *[]io.Closer) (*guards, error) {
	g := &guards{log: log}
	redisStore := cfg.Store.Backend == config.StoreRedis

	var sinks []audit.Sink
	if cfg.Audit.File != "" {
		f, pub, err := openAuditFile(ctx, cfg, keys, log, closers)
		if err != nil {
			return nil, err
		}
		g.checkpoints = pub
		*closers = append(*closers, f)
		g.file = f
		sinks = append(sinks, f)
	}
	var mirror audit.Mirror
	if cfg.Audit.RedisStream != "" {
		s, err := audit.NewRedisStreamSink(audit.RedisStreamOptions{Client: rdb, Key: cfg.Audit.RedisStream, Timeout: cfg.Audit.Timeout})
		if err != nil {
			return nil, fmt.Errorf("audit.redis_stream: %w", err)
		}
		g.stream = s
		if g.file != nil {
			// The file is the primary and the stream its mirror: see
			// audit.Options.Mirror.
			mirror = s
		} else {
			sinks = append(sinks, s)
		}
	}
	if len(sinks) == 0 {
		// Validate allows this in dev mode only.
		log.Warn("DEV MODE: no audit sink configured; audit records go to this log and are not durable")
		sinks = append(sinks, logSink{log: log})
	}
	var err error
	if g.auditor, err = audit.New(audit.Options{Sinks: sinks, Mirror: mirror, Logger: log}); err != nil {
		return nil, err
	}
	if mirror != nil {
		// A lag an earlier run left (the stream was down when it stopped)
		// is copied now, before the first intent; if it cannot be, intents
		// are refused until the reconciler manages.
		rctx, cancel := context.WithTimeout(ctx, auditReconcileTimeout)
		if err := g.auditor.Reconcile(rctx); err != nil {
			log.Warn("audit stream not reconciled with the audit file at start; forwards are refused until it is", slog.String("error", err.Error()))
		}
		cancel()
	}

	limits := ratelimit.Limits{
		PerCaller:            ratelimit.Limit(cfg.Limits.PerCaller),
		PerCallerDestination: ratelimit.Limit(cfg.Limits.PerCallerDestination),
	}
	if !limits.Unlimited() {
		if redisStore {
			g.limiter, err = ratelimit.NewRedis(ratelimit.RedisOptions{Client: rdb, Prefix: cfg.Store.Redis.Prefix + "ratelimit:" + cfg.Environment + ":", Limits: limits})
		} else {
			// One node: its memory is the whole budget.
			g.limiter, err = ratelimit.NewMemory(limits, nil)
		}
		if err != nil {
			return nil, fmt.Errorf("limits: %w", err)
		}
	}

	if st := killSwitchStore(cfg, rdb); st != nil {
		g.watcher, err = killswitch.NewWatcher(killswitch.WatcherOptions{
			Store: st, PollInterval: cfg.KillSwitch.PollInterval, MaxStaleness: cfg.KillSwitch.MaxStaleness, Logger: log,
		})
		if err != nil {
			return nil, fmt.Errorf("killswitch: %w", err)
		}
		// A first read now, so that a healthy gateway serves from its first
		// request; if it fails, forwards are refused until a read succeeds.
		if err := g.watcher.Refresh(ctx); err != nil {
			log.Warn("kill switch state not readable at start; forwards are refused until it is", slog.String("error", err.Error()))
		}
	} else {
		log.Warn("DEV MODE: no kill switch (bolt store without killswitch.file)")
	}

	if redisStore {
		set, err := canary.NewSet(rdb, canaryKey(cfg), cfg.Store.Redis.Timeout)
		if err != nil {
			return nil, err
		}
		// A snapshot polled like the kill switch's, so the check costs no
		// Redis round trip per forward; stale means refused.
		g.canaries, err = canary.NewWatcher(canary.WatcherOptions{
			Set: set, PollInterval: cfg.KillSwitch.PollInterval, MaxStaleness: cfg.KillSwitch.MaxStaleness, Logger: log,
		})
		if err != nil {
			return nil, fmt.Errorf("canary: %w", err)
		}
		if err := g.canaries.Refresh(ctx); err != nil {
			log.Warn("canary set not readable at start; forwards are refused until it is", slog.String("error", err.Error()))
		}
		// Stored answers are sealed under data keys the key backend wraps.
		dataKeys, err := vaultclient.NewDataKeys(keys, "idempotency-answers", keyTimeout(cfg))
		if err != nil {
			return nil, fmt.Errorf("idempotency: %w", err)
		}
		if g.idem, err = idempotency.NewRedisStore(idempotency.RedisOptions{
			Client: rdb,
			Keys:   dataKeys,
			Prefix: cfg.Store.Redis.Prefix + "idempotency:" + cfg.Environment + ":",
			TTL:    cfg.Idempotency.TTL,
			Lease:  cfg.Idempotency.Lease,
			Wait:   cfg.Idempotency.Wait,
		}); err != nil {
			return nil, fmt.Errorf("idempotency: %w", err)
		}
	}
	return g, nil
}

// apply sets the forwarder options the guards provide. Only non-nil parts
// are set, so that a nil pointer never becomes a non-nil interface.
func (g *guards) apply(o *forwarder.Options, cfg config.Config) {
	o.Auditor = g.auditor
	o.AuditTimeout = cfg.Audit.Timeout
	o.Limiter = g.limiter
	if g.watcher != nil {
		o.Switch = g.watcher
	}
	if g.canaries != nil {
		o.Canaries = g.canaries
	}
	if g.idem != nil {
		o.Idempotency = g.idem
	}
	o.MaxAttempts = cfg.Egress.Retry.MaxAttempts
	o.RetryBackoff = cfg.Egress.Retry.Backoff
	o.RetryMaxBackoff = cfg.Egress.Retry.MaxBackoff
}

// checks are the readiness probes of the audit sinks and the kill switch.
func (g *guards) checks() []api.Check {
	var out []api.Check
	if g.file != nil || g.stream != nil {
		out = append(out, api.Check{Name: "audit", Check: func(ctx context.Context) (string, error) {
			var errs []error
			if g.file != nil {
				errs = append(errs, g.file.Err())
			}
			if g.stream != nil {
				errs = append(errs, g.stream.Check(ctx))
			}
			if err := errors.Join(errs...); err != nil {
				return "an audit sink is failing; forwards are refused", err
			}
			if err := g.auditor.MirrorErr(); err != nil {
				return "the audit stream lacks records the audit file holds; forwards are refused until they agree", err
			}
			return "", nil
		}})
	}
	if g.watcher != nil {
		out = append(out, api.Check{Name: "killswitch", Check: func(context.Context) (string, error) {
			st, age, err := g.watcher.Status()
			if err != nil {
				return "kill switch state unreadable; forwards are refused", err
			}
			return fmt.Sprintf("%d disabled, read %dms ago", len(st), age.Milliseconds()), nil
		}})
	}
	if g.canaries != nil {
		out = append(out, api.Check{Name: "canaries", Check: func(context.Context) (string, error) {
			n, age, err := g.canaries.Status()
			if err != nil {
				return "canary set unreadable; forwards are refused", err
			}
			return fmt.Sprintf("%d canaries, read %dms ago", n, age.Milliseconds()), nil
		}})
	}
	return out
}

// run adds to loops the guards' own: the kill switch and canary polls,
// the audit reconciler (with both sinks) and the audit head logger. Each
// returns when its context ends.
func (g *guards) run(loops *runGroup) {
	if g == nil {
		return
	}
	if g.watcher != nil {
		loops.Go("kill switch poll", g.watcher.Run)
	}
	if g.canaries != nil {
		loops.Go("canary poll", g.canaries.Run)
	}
	if g.file != nil && g.stream != nil {
		loops.Go("audit reconciler", g.reconcileAudit)
	}
	loops.Go("audit head logger", g.logHeads)
	if g.checkpoints != nil {
		// Returns when ctx ends, after a last checkpoint.
		loops.Go("checkpoint signer", func(ctx context.Context) { _ = g.checkpoints.Run(ctx) })
	}
}

// reconcileAudit copies into the audit stream the records it lacks from
// the audit file, whenever it lags, until ctx ends. Until it has, intents,
// and so forwards, are refused and /readyz fails.
func (g *guards) reconcileAudit(ctx context.Context) {
	t := time.NewTicker(auditReconcileInterval)
	defer t.Stop()
	var lastLog time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if g.auditor.MirrorErr() == nil {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, auditReconcileTimeout)
		err := g.auditor.Reconcile(rctx)
		cancel()
		if err != nil && time.Since(lastLog) >= 30*time.Second {
			lastLog = time.Now()
			g.log.Warn("audit stream still lacks records the audit file holds; forwards are refused", slog.String("error", err.Error()))
		}
	}
}

// logHeads writes the audit chain's head (chain, seq, hash) to the
// operational log every headInterval and once more at the end. The
// operational log is shipped elsewhere, so these lines are anchors that a
// later `cardgate audit verify --expect-last` can hold the audit log to:
// records cut from a chain's end show up against them.
func (g *guards) logHeads(ctx context.Context) {
	t := time.NewTicker(headInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return // the final head is logged by shutdown, after the drain
		case <-t.C:
			g.logHead(false)
		}
	}
}

// logHead logs the audit chain's head if it moved since the last line, or
// always when final (at shutdown, once every forward has finished).
func (g *guards) logHead(final bool) {
	if g == nil || g.auditor == nil {
		return
	}
	chain, seq, hash := g.auditor.Head()
	g.headMu.Lock()
	defer g.headMu.Unlock()
	if chain == "" || (!final && chain == g.lastChain && seq == g.lastSeq) {
		return
	}
	g.lastChain, g.lastSeq = chain, seq
	g.log.Info("audit chain head", slog.String("chain", chain), slog.Uint64("seq", seq), slog.String("hash", hash), slog.Bool("final", final))
}

// logSink is dev mode's audit sink when none is configured: records go to
// the operational log. It is not durable and is refused outside dev mode
// (see config.Validate). Records hold no card data by construction.
type logSink struct{ log *slog.Logger }

func (s logSink) Write(ctx context.Context, batch []audit.Entry) error {
	for _, e := range batch {
		s.log.LogAttrs(ctx, slog.LevelInfo, "audit record (dev mode, not durable)", slog.String("record", string(e.Line)))
	}
	return nil
}
