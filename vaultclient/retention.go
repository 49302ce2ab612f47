package vaultclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
)

// Retention: a card not used (tokenized, forwarded, updated, or given a
// new CVC) for the configured retention expires. Each store records the
// last use in a marker beside the record (see LifecycleStore). Redis
// expires an unused record by itself (the retention is the record's key
// TTL, restarted on each use); bolt needs RunRetention.
//
// The forward path must stay cheap, so a forward marks a use at most once
// per TouchInterval per token per process: the first Detokenize of a
// token in an interval sends one small store write (a Redis script, or a
// bolt transaction), the others send nothing. The marker, and so
// last_used_at and the retention clock, is therefore up to TouchInterval
// (one minute) behind the true last forward, which is nothing against a
// retention of days or months. Tokenize, Update and CollectCVC mark their
// use in the same store operation as their write.

// TouchInterval is the longest a forward's use goes unrecorded.
const TouchInterval = time.Minute

// maxTouchEntries bounds the per-process cache of recent touches. When it
// fills, entries older than TouchInterval go; if that is not enough, the
// whole cache goes, which costs at most one extra touch per token.
const maxTouchEntries = 1 << 16

// MetricTouchFailures counts marks of a forward's use that failed, by
// class (timeout, other). The forward is not failed for it: the card was
// used, and the next forward retries the mark.
const MetricTouchFailures = "cardgate.vaultclient.touch_failures"

// touchCache remembers when this process last marked each token used.
type touchCache struct {
	mu       sync.Mutex
	last     map[string]time.Time
	failures metric.Int64Counter
}

func newTouchCache(mp metric.MeterProvider) (*touchCache, error) {
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	f, err := mp.Meter(tracerName).Int64Counter(MetricTouchFailures,
		metric.WithDescription("Failed marks of a forward's use of a card, by class."))
	if err != nil {
		return nil, fmt.Errorf("vaultclient: new: counter: %w", err)
	}
	return &touchCache{last: make(map[string]time.Time), failures: f}, nil
}

// due reports whether token should be marked used at now, and if so
// records now as its last mark.
func (c *touchCache) due(token string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.last[token]; ok && now.Sub(t) < TouchInterval && !now.Before(t) {
		return false
	}
	c.putLocked(token, now)
	return true
}

// mark records a use that was marked in the store by another operation.
func (c *touchCache) mark(token string, now time.Time) {
	c.mu.Lock()
	c.putLocked(token, now)
	c.mu.Unlock()
}

func (c *touchCache) putLocked(token string, now time.Time) {
	if _, ok := c.last[token]; !ok && len(c.last) >= maxTouchEntries {
		for k, t := range c.last {
			if now.Sub(t) >= TouchInterval || now.Before(t) {
				delete(c.last, k)
			}
		}
		if len(c.last) >= maxTouchEntries {
			clear(c.last)
		}
	}
	c.last[token] = now
}

func (c *touchCache) forget(token string) {
	c.mu.Lock()
	delete(c.last, token)
	c.mu.Unlock()
}

// noteUse marks a forward's use of token (see TouchInterval). It never
// fails the caller: a failed mark is logged by class and counted, and the
// token is forgotten so that its next use tries again. A token deleted
// meanwhile is not brought back: the store writes no marker without a
// record.
func (v *Vault) noteUse(ctx context.Context, token string) {
	ls, ok := v.store.(LifecycleStore)
	if !ok {
		return
	}
	now := v.now()
	if !v.touched.due(token, now) {
		return
	}
	_, err := storeCall(ctx, v, "vaultclient.store.Touch", "touch", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, ls.Touch(ctx, token, now)
	})
	if err == nil || errors.Is(err, ErrNotFound) {
		return
	}
	v.touched.forget(token)
	class := "other"
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		class = "timeout"
	}
	v.touched.failures.Add(ctx, 1, metric.WithAttributes(attribute.String("class", class)))
	v.log.LogAttrs(ctx, slog.LevelWarn, "vaultclient: marking a card used failed; retention counts from its previous use",
		slog.String("token", token), slog.String("class", class))
}

// AgeBuckets are the upper bounds of the age buckets CountByAge reports;
// a last bucket holds everything older.
var defaultAgeBuckets = []time.Duration{24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour, 90 * 24 * time.Hour, 365 * 24 * time.Hour}

// DefaultAgeBuckets returns the bucket bounds `cardgate cards status`
// uses: 1 day, 7, 30, 90 and 365 days.
func DefaultAgeBuckets() []time.Duration { return append([]time.Duration(nil), defaultAgeBuckets...) }

// AgeCounts counts the cards held by the time since their last use.
type AgeCounts struct {
	// Bounds are the bucket upper bounds, ascending.
	Bounds []time.Duration
	// Counts[i] counts cards last used less than Bounds[i] ago (and not
	// less than Bounds[i-1]); Counts[len(Bounds)] counts the rest.
	Counts []int
	Total  int
}

// CountByAge counts the cards held by the age of their last use, as of
// the Vault's clock. See CountByAge.
func (v *Vault) CountByAge(ctx context.Context, bounds []time.Duration) (AgeCounts, error) {
	ls, err := v.lifecycleStore()
	if err != nil {
		return AgeCounts{}, err
	}
	return CountByAge(ctx, ls, v.now(), bounds)
}

// CountByAge counts the cards s holds by the age of their last use at
// now. It reads every record's marker (in batches), never a sealed
// payload, so it needs no key backend. bounds must ascend; nil means
// DefaultAgeBuckets.
func CountByAge(ctx context.Context, s LifecycleStore, now time.Time, bounds []time.Duration) (AgeCounts, error) {
	if bounds == nil {
		bounds = DefaultAgeBuckets()
	}
	for i := 1; i < len(bounds); i++ {
		if bounds[i] <= bounds[i-1] {
			return AgeCounts{}, errors.New("vaultclient: count by age: bounds must ascend")
		}
	}
	ac := AgeCounts{Bounds: bounds, Counts: make([]int, len(bounds)+1)}
	err := s.LastUses(ctx, func(t time.Time) {
		age := now.Sub(t)
		i := 0
		for i < len(bounds) && age >= bounds[i] {
			i++
		}
		ac.Counts[i]++
		ac.Total++
	})
	if err != nil {
		return AgeCounts{}, fmt.Errorf("vaultclient: count by age: %w", err)
	}
	return ac, nil
}

// Retention sweep defaults.
const (
	// DefaultRetentionInterval is how often RunRetention sweeps.
	DefaultRetentionInterval = 10 * time.Minute
	// DefaultRetentionBatch is how many records one sweep transaction
	// deletes at most; a sweep runs batches until none is due.
	DefaultRetentionBatch = 500
	// MaxRetentionBatch bounds RetentionOptions.Batch: one bbolt write
	// transaction holds the file's only writer lock while it runs.
	MaxRetentionBatch = 10000
)

// MetricRetentionExpired counts records deleted because they were unused
// for longer than the retention, by store. MetricRetentionFailures counts
// failed sweeps, by class.
const (
	MetricRetentionExpired  = "cardgate.vaultclient.retention_expired"
	MetricRetentionFailures = "cardgate.vaultclient.retention_failures"
)

// RetentionOptions configures RunRetention.
type RetentionOptions struct {
	// Retention is how long an unused record is kept. Required (> 0).
	Retention time.Duration
	// Interval between sweeps; 0 means DefaultRetentionInterval.
	Interval time.Duration
	// Batch bounds the records deleted per transaction; 0 means
	// DefaultRetentionBatch, at most MaxRetentionBatch.
	Batch int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives sweep failures, by class only (bbolt's texts can
	// name keys, which are tokens). Nil discards.
	Logger *slog.Logger
	// MeterProvider records MetricRetentionExpired and
	// MetricRetentionFailures. Nil means a no-op.
	MeterProvider metric.MeterProvider
}

// RetentionSweeper deletes bolt records unused for longer than the
// retention. Build it with NewRetentionSweeper; run it with Run.
type RetentionSweeper struct {
	store    *BoltStore
	o        RetentionOptions
	expired  metric.Int64Counter
	failures metric.Int64Counter
	backfill string // BackfillUsed's cursor; "" and backfilled: done
	filled   bool
}

// NewRetentionSweeper checks o and returns a sweeper for s.
func NewRetentionSweeper(s *BoltStore, o RetentionOptions) (*RetentionSweeper, error) {
	if s == nil {
		return nil, errors.New("vaultclient: retention: store is nil")
	}
	if o.Retention <= 0 {
		return nil, fmt.Errorf("vaultclient: retention: %v is not positive", o.Retention)
	}
	switch {
	case o.Interval == 0:
		o.Interval = DefaultRetentionInterval
	case o.Interval < 0:
		return nil, fmt.Errorf("vaultclient: retention: interval %v is negative", o.Interval)
	}
	switch {
	case o.Batch == 0:
		o.Batch = DefaultRetentionBatch
	case o.Batch < 0 || o.Batch > MaxRetentionBatch:
		return nil, fmt.Errorf("vaultclient: retention: batch %d is not between 1 and %d", o.Batch, MaxRetentionBatch)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.MeterProvider == nil {
		o.MeterProvider = metricnoop.NewMeterProvider()
	}
	m := o.MeterProvider.Meter(tracerName)
	expired, err := m.Int64Counter(MetricRetentionExpired, metric.WithDescription("Card records deleted for exceeding the retention."))
	if err != nil {
		return nil, fmt.Errorf("vaultclient: retention: counter: %w", err)
	}
	failures, err := m.Int64Counter(MetricRetentionFailures, metric.WithDescription("Failed retention sweeps, by class."))
	if err != nil {
		return nil, fmt.Errorf("vaultclient: retention: counter: %w", err)
	}
	return &RetentionSweeper{store: s, o: o, expired: expired, failures: failures}, nil
}

// Run sweeps at once and then every Interval until ctx is cancelled; it
// returns nil then. A failed sweep is logged by class and counted, and the
// next interval tries again.
func (r *RetentionSweeper) Run(ctx context.Context) error {
	t := time.NewTicker(r.o.Interval)
	defer t.Stop()
	for {
		if _, err := r.Sweep(ctx); err != nil && ctx.Err() == nil {
			class := sweepErrorClass(err)
			r.failures.Add(ctx, 1, metric.WithAttributes(attribute.String("class", class)))
			r.o.Logger.LogAttrs(ctx, slog.LevelError, "vaultclient: retention sweep failed; unused records stay until a later sweep",
				slog.String("class", class))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sweep runs one sweep: it first gives records written before last-use
// markers existed a marker (their creation time), a batch per
// transaction, once per sweeper; then it deletes due records a batch per
// transaction until none is due or ctx is cancelled. It returns how many
// it deleted.
func (r *RetentionSweeper) Sweep(ctx context.Context) (int, error) {
	now := r.o.Now()
	for !r.filled {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		next, _, err := r.store.BackfillUsed(ctx, r.backfill, r.o.Batch, now)
		if err != nil {
			return 0, err
		}
		r.backfill, r.filled = next, next == ""
	}
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, more, err := r.store.SweepRetention(ctx, now.Add(-r.o.Retention), r.o.Batch)
		if n > 0 {
			r.expired.Add(ctx, int64(n), metric.WithAttributes(attribute.String("store", "bolt")))
			total += n
		}
		if err != nil || !more {
			return total, err
		}
	}
}
