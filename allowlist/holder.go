package allowlist

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/cardgate/cardgate/internal/fileread"
)

// Holder defaults.
const (
	// DefaultWarnBefore is how long before expiry the Holder starts
	// warning when HolderOptions.WarnBefore is zero.
	DefaultWarnBefore = 7 * 24 * time.Hour
	// DefaultPollInterval is Watch's interval when HolderOptions.PollInterval is zero.
	DefaultPollInterval = 10 * time.Second
	// DefaultReadTimeout bounds one load's file reads when
	// HolderOptions.ReadTimeout is zero.
	DefaultReadTimeout = 10 * time.Second
)

// Holder keeps the last good allowlist and swaps in a new one only after it
// verifies fully and the rollback state accepts it. It is safe for
// concurrent use.
type Holder struct {
	opts   HolderOptions
	state  StateStore
	log    *slog.Logger
	loadMu sync.Mutex // serializes Load: verify, advance state, swap
	cur    atomic.Pointer[Allowlist]

	statusMu sync.Mutex
	status   Status

	failures metric.Int64Counter
}

// HolderOptions configures a Holder. Zero optional fields mean the
// documented defaults; none of them means "allow".
type HolderOptions struct {
	Path          string // the allowlist document
	SignaturesDir string // every *.sig file in it is one detached signature (at most MaxSignatures)
	Policy        Policy

	// State keeps the rollback high-water mark. nil keeps it in memory
	// only: rollback is then refused across reloads but NOT across
	// restarts. Production must set a FileStateStore (one node) or a
	// RedisStateStore (replicas); Status reports which is in use.
	State StateStore
	// Logger receives reload results and expiry warnings. nil discards.
	Logger *slog.Logger
	// MeterProvider receives cardgate.allowlist.* metrics. nil means none.
	MeterProvider metric.MeterProvider
	// WarnBefore is how long before expiry to warn; zero means DefaultWarnBefore.
	WarnBefore time.Duration
	// PollInterval is how often Watch looks for changed files; zero means
	// DefaultPollInterval.
	PollInterval time.Duration
	// ReadTimeout bounds reading the document and the signatures in one
	// load (and in one Watch poll); zero means DefaultReadTimeout. A load
	// whose reads do not finish in time fails like any other, so a
	// wedged file system cannot hold the load lock.
	ReadTimeout time.Duration
	// Check, when set, is asked about every document that verified, before
	// it goes live and before the rollback mark advances; an error refuses
	// the document (ErrUnsupported) like any other failed load, so the last
	// good allowlist stays. The gateway uses it to refuse entries that name
	// settings it was not configured with, such as a client certificate.
	Check func(*Document) error
	// OnLoad, when set, is told about every load attempt, accepted or
	// refused (loadevent.go), after the outcome is decided and before
	// LoadContext returns; loads are serialized, so it sees them in order.
	// The gateway writes each to the audit log.
	OnLoad func(context.Context, LoadEvent)
}

// Status is what /readyz reports about the allowlist.
type Status struct {
	Ready        bool      `json:"ready"` // a verified, unexpired allowlist is live
	Version      uint64    `json:"version,omitempty"`
	SHA256       string    `json:"sha256,omitempty"`
	Environment  string    `json:"environment,omitempty"`
	IssuedAt     time.Time `json:"issued_at,omitzero"`
	Expires      time.Time `json:"expires,omitzero"`
	ExpiringSoon bool      `json:"expiring_soon"` // within WarnBefore of expiry
	Signers      []string  `json:"signers,omitempty"`
	LoadedAt     time.Time `json:"loaded_at,omitzero"`
	LastAttempt  time.Time `json:"last_attempt,omitzero"`
	LastError    string    `json:"last_error,omitempty"` // the last reload failure; cleared by a success
	LastErrorAt  time.Time `json:"last_error_at,omitzero"`
	Failures     uint64    `json:"reload_failures"`
	StateStore   string    `json:"state_store"`
}

// NewHolder returns a Holder with nothing loaded; call Load.
func NewHolder(o HolderOptions) *Holder {
	h := &Holder{opts: o, state: o.State, log: o.Logger}
	if h.state == nil {
		h.state = &memoryStateStore{}
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.opts.WarnBefore <= 0 {
		h.opts.WarnBefore = DefaultWarnBefore
	}
	if h.opts.PollInterval <= 0 {
		h.opts.PollInterval = DefaultPollInterval
	}
	if h.opts.ReadTimeout <= 0 {
		h.opts.ReadTimeout = DefaultReadTimeout
	}
	h.status.StateStore = h.state.String()
	if o.State == nil {
		h.log.Warn("allowlist: no state store configured; rollback is refused only until the process restarts")
	}
	// An unreadable file is refused by Load; here only the warning.
	if as, err := ParseAllowedSigners(o.Policy.AllowedSigners); err == nil {
		for _, d := range as.DuplicateKeys() {
			h.log.Warn("allowlist: allowed_signers lists one key on several lines; it counts as one signer, but ssh-keygen -Y find-principals names only its first line's principals",
				"fingerprint", d.Fingerprint, "lines", d.Lines, "principals", d.Principals)
		}
	}
	mp := o.MeterProvider
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	h.initMetrics(mp.Meter("github.com/cardgate/cardgate/allowlist"))
	return h
}

func (h *Holder) initMetrics(m metric.Meter) {
	// Metric registration errors only mean a metric is missing; they must
	// not stop the gateway, so they are logged.
	var err error
	if h.failures, err = m.Int64Counter("cardgate.allowlist.reload_failures",
		metric.WithDescription("allowlist loads refused; the last good allowlist stays live")); err != nil {
		h.log.Warn("allowlist: metric", "err", err)
		h.failures, _ = noop.NewMeterProvider().Meter("").Int64Counter("")
	}
	version, err1 := m.Int64ObservableGauge("cardgate.allowlist.version",
		metric.WithDescription("version of the live allowlist; 0 when none"))
	expiry, err2 := m.Float64ObservableGauge("cardgate.allowlist.expiry_seconds", metric.WithUnit("s"),
		metric.WithDescription("seconds until the live allowlist expires and every forward is denied"))
	if err := errors.Join(err1, err2); err != nil {
		h.log.Warn("allowlist: metric", "err", err)
		return
	}
	if _, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		a := h.cur.Load()
		if a == nil {
			o.ObserveInt64(version, 0)
			o.ObserveFloat64(expiry, 0)
			return nil
		}
		o.ObserveInt64(version, int64(a.Doc.Version))
		o.ObserveFloat64(expiry, a.Doc.Expires.Sub(h.now()).Seconds())
		return nil
	}, version, expiry); err != nil {
		h.log.Warn("allowlist: metric", "err", err)
	}
}

func (h *Holder) now() time.Time { return h.opts.Policy.now()() }

// Load reads, verifies and swaps in the files. On failure the last good
// allowlist stays in place and the error is returned. It is LoadContext
// with a background context, for callers at the top of a call chain
// (start-up, SIGHUP).
func (h *Holder) Load() error { return h.LoadContext(context.Background()) }

// LoadContext is Load with a context bounding the state store calls.
func (h *Holder) LoadContext(ctx context.Context) error {
	h.loadMu.Lock()
	defer h.loadMu.Unlock()
	a, sum, err := h.load(ctx)
	if h.opts.OnLoad != nil {
		defer func() { h.opts.OnLoad(ctx, newLoadEvent(a, sum, err, h.now())) }()
	}
	h.statusMu.Lock()
	defer h.statusMu.Unlock()
	h.status.LastAttempt = h.now()
	if err != nil {
		h.status.LastError, h.status.LastErrorAt = err.Error(), h.status.LastAttempt
		h.status.Failures++
		h.failures.Add(ctx, 1)
		if live := h.cur.Load(); live != nil {
			h.log.Error("allowlist: load refused; keeping the last good allowlist", "err", err, "live_version", live.Doc.Version)
		} else {
			// At start, or after every load so far failed: there is no
			// last good allowlist to keep.
			h.log.Error("allowlist: load refused; no allowlist is live, so every forward is refused", "err", err)
		}
		return err
	}
	h.cur.Store(a)
	h.status.LastError, h.status.LastErrorAt = "", time.Time{}
	h.status.LoadedAt = h.status.LastAttempt
	h.log.Info("allowlist: loaded", "version", a.Doc.Version, "sha256", a.SHA256,
		"expires", a.Doc.Expires, "signers", countedPrincipals(a), "state_store", h.state.String())
	for _, r := range a.Signatures {
		if r.Status != StatusValid {
			// Accepted anyway (the threshold was met), but an unknown or
			// invalid signature next to good ones deserves a look.
			h.log.Warn("allowlist: signature not counted", "file", r.File, "status", r.Status,
				"principal", r.Principal, "fingerprint", r.Fingerprint, "detail", r.Detail)
		}
	}
	h.warnIfExpiring(a)
	return nil
}

// load also returns the sha256 (lowercase hex) of the bytes it read, if
// it read any, for OnLoad.
func (h *Holder) load(ctx context.Context) (*Allowlist, string, error) {
	a, raw, err := h.loadRaw(ctx)
	return a, sumHex(raw), err
}

func (h *Holder) loadRaw(ctx context.Context) (*Allowlist, []byte, error) {
	if h.opts.Path == "" || h.opts.SignaturesDir == "" {
		return nil, nil, refuse(ProblemBadPolicy, nil, "allowlist path and signatures directory must both be set")
	}
	rctx, cancel := context.WithTimeout(ctx, h.opts.ReadTimeout)
	defer cancel()
	raw, err := ReadDocument(rctx, h.opts.Path)
	if err != nil {
		return nil, nil, refuse(ProblemRead, err, "allowlist %s", h.opts.Path)
	}
	sigs, err := ReadSignatures(rctx, h.opts.SignaturesDir)
	if err != nil {
		return nil, raw, refuse(ProblemRead, err, "signatures %s", h.opts.SignaturesDir)
	}
	a, err := Verify(raw, sigs, h.opts.Policy)
	if err != nil {
		return nil, raw, err
	}
	if h.opts.Check != nil {
		// Before Advance: a document this gateway cannot serve must not
		// raise the rollback mark above the one it keeps serving.
		if err := h.opts.Check(&a.Doc); err != nil {
			return nil, raw, refuse(ProblemUnsupported, err, "version %d", a.Doc.Version)
		}
	}
	if err := h.state.Advance(ctx, successorOf(a)); err != nil {
		var ve *VerifyError
		if errors.As(err, &ve) {
			return nil, raw, err
		}
		return nil, raw, refuse(ProblemState, err, "%s", h.state.String())
	}
	return a, raw, nil
}

func countedPrincipals(a *Allowlist) []string {
	var p []string
	for _, s := range a.Signatures {
		if s.Status == StatusValid {
			p = append(p, s.Principal)
		}
	}
	return p
}

func (h *Holder) warnIfExpiring(a *Allowlist) {
	left := a.Doc.Expires.Sub(h.now())
	if left <= h.opts.WarnBefore {
		h.log.Warn("allowlist: expires soon; every forward will be denied after expiry",
			"version", a.Doc.Version, "expires", a.Doc.Expires, "left", left.Round(time.Minute))
	}
}

// MaxAllowedSignersBytes caps the allowed_signers file.
const MaxAllowedSignersBytes = 1 << 20

// maxSignatureDirEntries caps the entries of a signatures directory, of
// any name: MaxSignatures *.sig files, a Kubernetes ConfigMap's ..data
// links and whatever else a deployment keeps next to them.
const maxSignatureDirEntries = 1024

// ReadDocument reads an allowlist document as the gateway does: a regular
// file (symlinks followed) of at most MaxDocumentBytes, refused before it
// is opened if it is a FIFO, device or directory, and given up when ctx
// ends (see package fileread). The auditor commands read with it too, so
// that they judge the bytes the gateway would.
func ReadDocument(ctx context.Context, path string) ([]byte, error) {
	return fileread.Read(ctx, path, MaxDocumentBytes)
}

// ReadAllowedSigners reads an allowed_signers file as ReadDocument reads a
// document, at most MaxAllowedSignersBytes.
func ReadAllowedSigners(ctx context.Context, path string) ([]byte, error) {
	return fileread.Read(ctx, path, MaxAllowedSignersBytes)
}

// ReadSignatures reads every *.sig file in dir as the gateway does: sorted
// by name, dotfiles skipped, at most MaxSignatures files of at most
// MaxSignatureBytes each, each read like ReadDocument. A *.sig that is not
// a regular file (a FIFO, say) fails the read rather than being skipped:
// someone put it there.
func ReadSignatures(ctx context.Context, dir string) ([]Signature, error) {
	entries, err := fileread.ReadDir(ctx, dir, maxSignatureDirEntries)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sig") && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	if len(names) > MaxSignatures {
		return nil, fmt.Errorf("%d signature files, more than %d", len(names), MaxSignatures)
	}
	sort.Strings(names)
	sigs := make([]Signature, 0, len(names))
	for _, n := range names {
		b, err := fileread.Read(ctx, filepath.Join(dir, n), MaxSignatureBytes)
		if err != nil {
			return nil, err
		}
		sigs = append(sigs, Signature{Name: n, Armor: b})
	}
	return sigs, nil
}

// Current returns the live allowlist, or a *DenyError when there is none or
// it has expired. It never returns a nil allowlist with a nil error.
func (h *Holder) Current() (*Allowlist, error) {
	a := h.cur.Load()
	if a == nil {
		return nil, &DenyError{Reason: ReasonAllowlistUnavailable, Detail: "no verified allowlist is loaded"}
	}
	if !h.now().Before(a.Doc.Expires) {
		return nil, deny(ReasonAllowlistExpired, "allowlist version %d expired at %s", a.Doc.Version, a.Doc.Expires.Format(time.RFC3339))
	}
	return a, nil
}

// Status reports the live allowlist and the last reload for /readyz.
func (h *Holder) Status() Status {
	h.statusMu.Lock()
	s := h.status
	h.statusMu.Unlock()
	a := h.cur.Load()
	if a == nil {
		return s
	}
	now := h.now()
	s.Version, s.SHA256, s.Environment = a.Doc.Version, a.SHA256, a.Doc.Environment
	s.IssuedAt, s.Expires = a.Doc.IssuedAt, a.Doc.Expires
	s.Signers = countedPrincipals(a)
	s.Ready = now.Before(a.Doc.Expires)
	s.ExpiringSoon = a.Doc.Expires.Sub(now) <= h.opts.WarnBefore
	return s
}

// Watch polls the document and signature directory every PollInterval and
// calls LoadContext when anything changed (name, size, mtime or content
// hash). It also repeats the expiry warning once a day. It returns when ctx
// is done. Load errors are recorded in Status and logged, not returned.
func (h *Holder) Watch(ctx context.Context) error {
	t := time.NewTicker(h.opts.PollInterval)
	defer t.Stop()
	// Start from no fingerprint so the first tick loads whatever is on
	// disk: a change made between Load and Watch is not missed, and
	// reloading identical bytes is idempotent.
	var last [sha256.Size]byte
	lastWarn := h.now()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if fp := h.fingerprint(ctx); fp != last {
			last = fp
			_ = h.LoadContext(ctx) // recorded in Status and the log
		}
		if a := h.cur.Load(); a != nil && h.now().Sub(lastWarn) >= 24*time.Hour {
			lastWarn = h.now()
			h.warnIfExpiring(a)
		}
	}
}

// fingerprint hashes the files' metadata and contents so that a change of
// any kind, including an edit that keeps size and mtime, triggers a load.
// Its reads are bounded like a load's: a file that cannot be read (a FIFO,
// a wedged mount) hashes as its error, and the next poll tries again.
func (h *Holder) fingerprint(ctx context.Context) [sha256.Size]byte {
	ctx, cancel := context.WithTimeout(ctx, h.opts.ReadTimeout)
	defer cancel()
	hash := sha256.New()
	add := func(path string) {
		b, err := fileread.Read(ctx, path, MaxDocumentBytes)
		fmt.Fprintf(hash, "%s\x00%d\x00%v\x00", path, len(b), err)
		hash.Write(b)
	}
	add(h.opts.Path)
	entries, err := fileread.ReadDir(ctx, h.opts.SignaturesDir, maxSignatureDirEntries)
	fmt.Fprintf(hash, "dir\x00%v\x00", err)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sig") {
			add(filepath.Join(h.opts.SignaturesDir, e.Name()))
		}
	}
	var out [sha256.Size]byte
	copy(out[:], hash.Sum(nil))
	return out
}
