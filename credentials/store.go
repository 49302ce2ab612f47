package credentials

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/api"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Defaults for Options.
const (
	// DefaultMaxValueBytes bounds one credential's raw bytes.
	DefaultMaxValueBytes = 64 << 10
	// DefaultPollInterval is how often Watch looks at the files.
	DefaultPollInterval = 10 * time.Second
	// DefaultVaultPollInterval is how often Watch reloads when a
	// credential comes from Vault without a pinned version, so that a new
	// version is followed without a signal.
	DefaultVaultPollInterval = time.Minute
)

// Options configures a Store. Zero fields mean the documented defaults.
type Options struct {
	// Vault is a logged-in client for VaultKV sources; the store uses its
	// address, token, namespace, TLS, timeout and retry policy as they
	// are (vaultclient.VaultSession.Client gives one). nil refuses every
	// VaultKV spec at New.
	Vault *api.Client
	// Getenv reads Env sources; nil means os.LookupEnv.
	Getenv func(string) (string, bool)
	// Logger receives loads, reload failures and what changed, by
	// credential name and version, never values. nil discards.
	Logger *slog.Logger
	// MeterProvider receives cardgate.credentials.* metrics. nil means
	// none.
	MeterProvider metric.MeterProvider
	// MaxValueBytes bounds each credential's raw bytes; zero means
	// DefaultMaxValueBytes.
	MaxValueBytes int64
	// PollInterval is Watch's file interval; zero means
	// DefaultPollInterval.
	PollInterval time.Duration
	// VaultPollInterval is Watch's reload interval while any credential
	// follows Vault's latest version; zero means
	// DefaultVaultPollInterval, negative turns it off (reload on SIGHUP
	// or a file change only).
	VaultPollInterval time.Duration
}

// Store holds the named credentials. It is safe for concurrent use: Get
// reads the live set without locking, and Reload replaces the whole set
// at once, so a Get sees either every old value or every new one.
type Store struct {
	specs []Spec // sorted by name; fixed by New
	names []string
	l     loader
	opts  Options
	log   *slog.Logger

	reloadMu sync.Mutex // serializes Reload
	cur      atomic.Pointer[set]

	statusMu sync.Mutex
	status   Status

	failures metric.Int64Counter
}

// set is one complete load.
type set struct {
	vals map[string]*value
	fp   [sha256.Size]byte // the file sources' stat before they were read
}

// loader is what sources read with.
type loader struct {
	vault    *api.Client
	getenv   func(string) (string, bool)
	maxBytes int64
}

// Status is what a readiness report shows about the credentials: names,
// sources, kinds and versions, never values.
type Status struct {
	Ready       bool               `json:"ready"` // a complete set is loaded
	LoadedAt    time.Time          `json:"loaded_at,omitzero"`
	LastAttempt time.Time          `json:"last_attempt,omitzero"`
	LastError   string             `json:"last_error,omitempty"` // the last reload failure; cleared by a success
	LastErrorAt time.Time          `json:"last_error_at,omitzero"`
	Failures    uint64             `json:"reload_failures"`
	Credentials []CredentialStatus `json:"credentials,omitempty"`
}

// CredentialStatus describes one loaded credential.
type CredentialStatus struct {
	Name    string `json:"name"`
	Source  string `json:"source"`
	Kind    Kind   `json:"kind"`
	Version int    `json:"version,omitempty"` // the Vault KV version held
}

// New checks the specs and returns a Store with nothing loaded: Get
// answers ErrNotLoaded until Reload succeeds. Every problem is returned,
// each an *Error with CodeBadSpec, joined.
func New(specs []Spec, o Options) (*Store, error) {
	var errs []error
	seen := map[string]bool{}
	for i := range specs {
		sp := &specs[i]
		if msg := sp.check(&o); msg != "" {
			errs = append(errs, &Error{Code: CodeBadSpec, Name: sp.Name, Source: sourceKind(sp.Source), Detail: msg})
		}
		if seen[sp.Name] {
			errs = append(errs, &Error{Code: CodeBadSpec, Name: sp.Name, Detail: "the name is used twice"})
		}
		seen[sp.Name] = true
	}
	if o.MaxValueBytes < 0 {
		errs = append(errs, &Error{Code: CodeBadSpec, Detail: "MaxValueBytes is negative"})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if o.MaxValueBytes == 0 {
		o.MaxValueBytes = DefaultMaxValueBytes
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.VaultPollInterval == 0 {
		o.VaultPollInterval = DefaultVaultPollInterval
	}
	if o.Getenv == nil {
		o.Getenv = os.LookupEnv
	}
	s := &Store{specs: slices.Clone(specs), opts: o, log: o.Logger,
		l: loader{vault: o.Vault, getenv: o.Getenv, maxBytes: o.MaxValueBytes}}
	slices.SortFunc(s.specs, func(a, b Spec) int { return strings.Compare(a.Name, b.Name) })
	for _, sp := range s.specs {
		s.names = append(s.names, sp.Name)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	mp := o.MeterProvider
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	s.initMetrics(mp.Meter("github.com/cardgate/cardgate/credentials"))
	return s, nil
}

func sourceKind(src Source) string {
	switch src.(type) {
	case File, Env, VaultKV:
		return src.Kind()
	}
	return ""
}

func (s *Store) initMetrics(m metric.Meter) {
	// A metric that cannot register is logged, not fatal.
	var err error
	if s.failures, err = m.Int64Counter("cardgate.credentials.reload_failures",
		metric.WithDescription("credential reloads refused; the last good set stays live")); err != nil {
		s.log.Warn("credentials: metric", "err", err)
		s.failures, _ = noop.NewMeterProvider().Meter("").Int64Counter("")
	}
	version, err := m.Int64ObservableGauge("cardgate.credentials.version",
		metric.WithDescription("the Vault KV version of each loaded credential; 0 for file and env sources"))
	if err != nil {
		s.log.Warn("credentials: metric", "err", err)
		return
	}
	if _, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		cur := s.cur.Load()
		if cur == nil {
			return nil
		}
		for _, name := range s.names {
			v := cur.vals[name]
			o.ObserveInt64(version, int64(v.version), metric.WithAttributes(
				attribute.String("credential", name), attribute.String("source", v.source)))
		}
		return nil
	}, version); err != nil {
		s.log.Warn("credentials: metric", "err", err)
	}
}

// Names returns the configured credential names, sorted. They are fixed
// by New, loaded or not, so an allowlist can be checked against them
// before the first load.
func (s *Store) Names() []string { return slices.Clone(s.names) }

// Has reports whether name is a configured credential.
func (s *Store) Has(name string) bool {
	_, ok := slices.BinarySearch(s.names, name)
	return ok
}

// Get returns the live value of the named credential: an *Error with
// CodeNotFound for a name that is not configured, CodeNotLoaded before the
// first successful load. It never returns a zero Secret with a nil error.
func (s *Store) Get(name string) (Secret, error) {
	if !s.Has(name) {
		e := &Error{Code: CodeNotFound, Name: name, Detail: "no credential of that name is configured"}
		if !ValidName(name) {
			// Not a name this package could have: say so without
			// echoing it, since it may have come from a caller.
			e.Name, e.Detail = "", "the name is not a credential name"
		}
		return Secret{}, e
	}
	cur := s.cur.Load()
	if cur == nil {
		return Secret{}, &Error{Code: CodeNotLoaded, Name: name, Detail: "the credentials have not loaded"}
	}
	return Secret{v: cur.vals[name]}, nil
}

// Reload reads every source and swaps in the new set only if every
// credential read and decoded; otherwise the live set stays, and every
// failure is returned, each an *Error naming the credential and its
// source kind, joined. ctx bounds the Vault reads.
func (s *Store) Reload(ctx context.Context) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	next, err := s.load(ctx)
	now := time.Now()
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	s.status.LastAttempt = now
	if err != nil {
		s.status.LastError, s.status.LastErrorAt = err.Error(), now
		s.status.Failures++
		s.failures.Add(ctx, 1)
		if s.cur.Load() == nil {
			s.log.Error("credentials: load refused; no credentials are loaded", "err", err)
		} else {
			s.log.Error("credentials: reload refused; keeping the last good credentials", "err", err)
		}
		return err
	}
	prev := s.cur.Swap(next)
	s.status.LastError, s.status.LastErrorAt = "", time.Time{}
	s.status.LoadedAt = now
	s.log.Info("credentials: loaded", "credentials", s.describe(next, prev))
	return nil
}

func (s *Store) load(ctx context.Context) (*set, error) {
	// Stat before reading: a change during the read then shows as a
	// difference at Watch's next tick, and is read again.
	next := &set{vals: make(map[string]*value, len(s.specs)), fp: s.fingerprint()}
	var errs []error
	for i := range s.specs {
		sp := &s.specs[i]
		v, err := s.loadOne(ctx, sp)
		if err != nil {
			err.Name, err.Source = sp.Name, sp.Source.Kind()
			errs = append(errs, err)
			continue
		}
		next.vals[sp.Name] = v
	}
	if len(errs) > 0 {
		// The values read so far are dropped here and wiped by their
		// cleanups.
		return nil, errors.Join(errs...)
	}
	return next, nil
}

func (s *Store) loadOne(ctx context.Context, sp *Spec) (*value, *Error) {
	raw, version, err := sp.Source.read(ctx, &s.l)
	defer clear(raw)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return nil, e
		}
		return nil, fail(CodeRead, err, "")
	}
	b, key, wipe, derr := decode(sp, raw)
	if derr != nil {
		if version > 0 {
			derr.Detail = "version " + strconv.Itoa(version) + ": " + derr.Detail
		}
		return nil, derr
	}
	kind := sp.Kind
	if kind == "" {
		kind = KindSecret
	}
	return newValue(sp.Name, kind, sp.Source.Kind(), version, b, key, wipe), nil
}

// credentialLog is one credential in the load log line.
type credentialLog struct {
	Name    string `json:"name"`
	Source  string `json:"source"`
	Version int    `json:"version,omitempty"`
	Changed bool   `json:"changed"` // differs from the value it replaced (compared in constant time)
}

func (s *Store) describe(next, prev *set) []credentialLog {
	out := make([]credentialLog, 0, len(s.names))
	for _, name := range s.names {
		v := next.vals[name]
		changed := true
		if prev != nil {
			if p := prev.vals[name]; p != nil {
				changed = subtle.ConstantTimeCompare(p.b, v.b) != 1
			}
		}
		out = append(out, credentialLog{Name: name, Source: v.source, Version: v.version, Changed: changed})
	}
	return out
}

// Status reports the live set and the last reload.
func (s *Store) Status() Status {
	s.statusMu.Lock()
	st := s.status
	s.statusMu.Unlock()
	cur := s.cur.Load()
	if cur == nil {
		return st
	}
	st.Ready = true
	for _, name := range s.names {
		v := cur.vals[name]
		st.Credentials = append(st.Credentials, CredentialStatus{Name: name, Source: v.source, Kind: v.kind, Version: v.version})
	}
	return st
}
