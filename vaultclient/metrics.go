package vaultclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
)

// Metric names. Their attributes are closed sets of words (the backend
// kind, the operation, the outcome): never a token, a key name, a blob or
// anything a caller chose.
const (
	// MetricKeyDuration is a histogram of key-backend call durations, in
	// seconds, by backend (local, hsm, vault, other), operation (encrypt,
	// decrypt, fingerprint, rewrap) and outcome (ok, error, timeout).
	MetricKeyDuration = "cardgate.vaultclient.key_duration"
	// MetricStoreDuration is a histogram of card-store call durations, in
	// seconds, by store (redis, bolt, other), operation (put, get_record,
	// get, get_and_delete_cvc, delete_cvc; and for the lifecycle meta,
	// replace, put_cvc, touch, delete) and outcome (ok, error, timeout).
	// Detokenize records get_record, DetokenizeConsumingCVC
	// get_and_delete_cvc, Rewrap get; a forward's first use of a token in
	// a TouchInterval also records touch. A token that is not found is ok:
	// the store answered.
	MetricStoreDuration = "cardgate.vaultclient.store_duration"
)

// Outcomes recorded in the histograms.
const (
	outcomeOK      = "ok"
	outcomeError   = "error"
	outcomeTimeout = "timeout"
)

// durationBuckets suit calls that take from a fraction of a millisecond
// (local keyring, Redis on loopback) to the default 2s timeout; the SDK's
// default boundaries start at 5 and would put every call in one bucket.
var durationBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

// metrics holds the instruments and the two labels fixed at New.
type metrics struct {
	key     metric.Float64Histogram
	store   metric.Float64Histogram
	backend attribute.KeyValue
	storeKV attribute.KeyValue
	// keyOpts and storeOpts are the attribute options of every operation
	// this package records, by outcome, built once at New: building an
	// attribute set on each call costs several allocations, on every
	// Detokenize. They are read-only after New.
	keyOpts   map[string]*outcomeOpts
	storeOpts map[string]*outcomeOpts
}

// outcomeOpts holds one operation's record options, by outcome index
// (see outcomeIndex).
type outcomeOpts [len(outcomes)][]metric.RecordOption

// outcomes are the outcome attribute values, by outcome index.
var outcomes = [...]string{outcomeOK, outcomeError, outcomeTimeout}

// Operations recorded in the histograms.
var (
	keyOps   = []string{"encrypt", "decrypt", "fingerprint", "rewrap"}
	storeOps = []string{"put", "get_record", "get", "get_and_delete_cvc", "delete_cvc", "meta", "replace", "put_cvc", "touch", "delete"}
)

func newOutcomeOpts(fixed attribute.KeyValue, ops []string) map[string]*outcomeOpts {
	m := make(map[string]*outcomeOpts, len(ops))
	for _, op := range ops {
		o := new(outcomeOpts)
		for i := range outcomes {
			o[i] = recordOpts(fixed, op, i)
		}
		m[op] = o
	}
	return m
}

func recordOpts(fixed attribute.KeyValue, op string, outcome int) []metric.RecordOption {
	return []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(
		fixed, attribute.String("operation", op), attribute.String("outcome", outcomes[outcome])))}
}

// opts returns the record options for op and outcome, from m when op is
// one of the precomputed operations.
func opts(m map[string]*outcomeOpts, fixed attribute.KeyValue, op string, outcome int) []metric.RecordOption {
	if o, ok := m[op]; ok {
		return o[outcome]
	}
	return recordOpts(fixed, op, outcome)
}

func newMetrics(mp metric.MeterProvider, keys Keyer, store Store) (*metrics, error) {
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	m := mp.Meter(tracerName)
	key, err := m.Float64Histogram(MetricKeyDuration,
		metric.WithDescription("Key-backend call duration, by backend, operation and outcome."),
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(durationBuckets...))
	if err != nil {
		return nil, fmt.Errorf("vaultclient: new: histogram: %w", err)
	}
	st, err := m.Float64Histogram(MetricStoreDuration,
		metric.WithDescription("Card-store call duration, by store, operation and outcome."),
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(durationBuckets...))
	if err != nil {
		return nil, fmt.Errorf("vaultclient: new: histogram: %w", err)
	}
	mt := &metrics{
		key:     key,
		store:   st,
		backend: attribute.String("backend", backendKind(keys)),
		storeKV: attribute.String("store", storeKind(store)),
	}
	mt.keyOpts = newOutcomeOpts(mt.backend, keyOps)
	mt.storeOpts = newOutcomeOpts(mt.storeKV, storeOps)
	return mt, nil
}

// backendKind names the key backend by what operators deploy (an HSM,
// Vault), not by the Go type; wrappers and test doubles are "other".
func backendKind(k Keyer) string {
	switch k.(type) {
	case *LocalKeyring:
		return "local"
	case *PKCS11:
		return "hsm"
	case *Transit:
		return "vault"
	}
	return "other"
}

func storeKind(s Store) string {
	switch s.(type) {
	case *RedisStore:
		return "redis"
	case *BoltStore:
		return "bolt"
	}
	return "other"
}

// recordKey records one key-backend call that started at start. callCtx
// is the call's own context, whose deadline tells a timeout apart from a
// failure even when the backend wrapped the error in its own.
func (m *metrics) recordKey(callCtx context.Context, op string, start time.Time, err error) {
	m.key.Record(callCtx, time.Since(start).Seconds(), opts(m.keyOpts, m.backend, op, outcomeIndex(callCtx, err))...)
}

// recordStore is recordKey for the card store.
func (m *metrics) recordStore(callCtx context.Context, op string, start time.Time, err error) {
	if errors.Is(err, ErrNotFound) {
		err = nil
	}
	m.store.Record(callCtx, time.Since(start).Seconds(), opts(m.storeOpts, m.storeKV, op, outcomeIndex(callCtx, err))...)
}

// outcomeIndex returns the index in outcomes of a call's outcome.
func outcomeIndex(callCtx context.Context, err error) int {
	switch {
	case err == nil:
		return 0 // outcomeOK
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(callCtx.Err(), context.DeadlineExceeded):
		return 2 // outcomeTimeout
	}
	return 1 // outcomeError
}
