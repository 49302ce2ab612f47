package killswitch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/internal/fileread"
)

// Codes of the errors Check returns. They are API.
const (
	CodeDisabled    = "destination_disabled"
	CodeUnavailable = "killswitch_unavailable"
)

// All is the id that names every destination at once.
const All = "*"

// Defaults for WatcherOptions.
const (
	DefaultPollInterval = 250 * time.Millisecond
	DefaultMaxStaleness = time.Second
)

// maxReasonBytes bounds the operator's free-text reason.
const maxReasonBytes = 200

// Switch is one disable: why, when, and by whom (free text the operator
// gives; it is shown by `cardgate destinations status` and in the log,
// never to callers).
type Switch struct {
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// State is every disable in force, by destination id (All for the global
// switch).
type State map[string]Switch

// Error is what Check returns when it refuses.
type Error struct {
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	s := "killswitch: " + e.Code + ": " + e.Message
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}
func (e *Error) Unwrap() error         { return e.Err }
func (e *Error) ErrorCode() string     { return e.Code }
func (e *Error) PublicMessage() string { return e.Message }

// ValidateID reports whether id names a destination (or All).
func ValidateID(id string) error {
	if id != All && !allowlist.ValidID(id) {
		return fmt.Errorf("killswitch: %q is not a destination id (lowercase letters, digits, '.', '-', '_') or %q", id, All)
	}
	return nil
}

// ValidateReason reports whether a reason can be stored: printable ASCII,
// at most 200 bytes.
func ValidateReason(r string) error {
	if len(r) > maxReasonBytes {
		return fmt.Errorf("killswitch: reason is longer than %d bytes", maxReasonBytes)
	}
	for i := 0; i < len(r); i++ {
		if r[i] < ' ' || r[i] > '~' {
			return errors.New("killswitch: reason must be printable ASCII")
		}
	}
	return nil
}

// Store holds the state. Load returns all of it; Disable and Enable
// change one id.
type Store interface {
	Load(ctx context.Context) (State, error)
	Disable(ctx context.Context, id string, s Switch) error
	Enable(ctx context.Context, id string) error
}

// RedisStore keeps the state in one Redis hash: field = destination id,
// value = the Switch as JSON.
type RedisStore struct {
	c   redis.UniversalClient
	key string
}

// NewRedisStore returns a store on key (e.g. "cardgate:killswitch:production").
func NewRedisStore(c redis.UniversalClient, key string) *RedisStore {
	return &RedisStore{c: c, key: key}
}

// Load reads the whole hash.
func (s *RedisStore) Load(ctx context.Context) (State, error) {
	m, err := s.c.HGetAll(ctx, s.key).Result()
	if err != nil {
		return nil, fmt.Errorf("killswitch: redis %s: %w", s.key, err)
	}
	st := make(State, len(m))
	for id, raw := range m {
		var sw Switch
		if err := json.Unmarshal([]byte(raw), &sw); err != nil {
			// An entry we cannot read still disables: it was written to.
			sw = Switch{Reason: "unreadable entry"}
		}
		st[id] = sw
	}
	return st, nil
}

// Disable sets id's entry.
func (s *RedisStore) Disable(ctx context.Context, id string, sw Switch) error {
	if err := checkDisable(id, sw); err != nil {
		return err
	}
	raw, _ := json.Marshal(sw)
	if err := s.c.HSet(ctx, s.key, id, raw).Err(); err != nil {
		return fmt.Errorf("killswitch: redis %s: disable %s: %w", s.key, id, err)
	}
	return nil
}

// Enable removes id's entry.
func (s *RedisStore) Enable(ctx context.Context, id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	if err := s.c.HDel(ctx, s.key, id).Err(); err != nil {
		return fmt.Errorf("killswitch: redis %s: enable %s: %w", s.key, id, err)
	}
	return nil
}

func checkDisable(id string, sw Switch) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	return ValidateReason(sw.Reason)
}

// FileStore keeps the state in a JSON file, for a single node. Changes are
// written to a temporary file, fsynced and renamed over the old one, under
// an exclusive lock on PATH.lock, so a reader sees the old or the new
// state, never half of one. A missing file is the empty state (nothing
// disabled); an unreadable or malformed one is an error.
type FileStore struct {
	path string
}

// NewFileStore returns a store on path.
func NewFileStore(path string) *FileStore { return &FileStore{path: path} }

// maxFileBytes bounds the state file.
const maxFileBytes = 1 << 20

// Load reads the file. A missing file is the empty state; anything but a
// regular file (a FIFO, a device, a directory; symlinks are followed) is
// refused before it is opened, and the read ends with ctx, so that a
// special file at the path can never block the watcher's polls for good.
func (s *FileStore) Load(ctx context.Context) (State, error) {
	raw, err := fileread.Read(ctx, s.path, maxFileBytes)
	if errors.Is(err, os.ErrNotExist) {
		return State{}, nil
	}
	if errors.Is(err, fileread.ErrTooLarge) {
		return nil, fmt.Errorf("killswitch: %s is larger than %d bytes", s.path, maxFileBytes)
	}
	if err != nil {
		return nil, fmt.Errorf("killswitch: %w", err)
	}
	st := State{}
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("killswitch: %s: %w", s.path, err)
	}
	return st, nil
}

// Disable sets id's entry.
func (s *FileStore) Disable(ctx context.Context, id string, sw Switch) error {
	if err := checkDisable(id, sw); err != nil {
		return err
	}
	return s.update(ctx, func(st State) { st[id] = sw })
}

// Enable removes id's entry.
func (s *FileStore) Enable(ctx context.Context, id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	return s.update(ctx, func(st State) { delete(st, id) })
}

func (s *FileStore) update(ctx context.Context, change func(State)) error {
	lock, err := os.OpenFile(s.path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("killswitch: lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("killswitch: lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	st, err := s.Load(ctx)
	if err != nil {
		return err
	}
	change(st)
	raw, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("killswitch: encode: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), filepath.Base(s.path)+".tmp*")
	if err != nil {
		return fmt.Errorf("killswitch: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(raw, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("killswitch: write: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("killswitch: fsync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("killswitch: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("killswitch: %w", err)
	}
	return nil
}

// WatcherOptions configures a Watcher.
type WatcherOptions struct {
	Store Store // required
	// PollInterval is how often the state is read; 0 means
	// DefaultPollInterval.
	PollInterval time.Duration
	// MaxStaleness is how old the last good read may be before Check
	// refuses everything; 0 means DefaultMaxStaleness. Each read is given
	// at most half of it.
	MaxStaleness time.Duration
	// Logger receives changes and read failures; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Watcher keeps a recent snapshot of the state. Check is safe for
// concurrent use and never does I/O.
type Watcher struct {
	store    Store
	interval time.Duration
	maxStale time.Duration
	log      *slog.Logger
	now      func() time.Time

	mu      sync.RWMutex
	state   State
	readAt  time.Time // when the read that produced state started
	lastErr error
}

// NewWatcher returns a Watcher. Until its first successful read, Check
// refuses everything.
func NewWatcher(o WatcherOptions) (*Watcher, error) {
	if o.Store == nil {
		return nil, errors.New("killswitch: watcher: no store")
	}
	if o.PollInterval < 0 || o.MaxStaleness < 0 {
		return nil, errors.New("killswitch: watcher: negative interval")
	}
	w := &Watcher{store: o.Store, interval: o.PollInterval, maxStale: o.MaxStaleness, log: o.Logger, now: o.Now}
	if w.interval == 0 {
		w.interval = DefaultPollInterval
	}
	if w.maxStale == 0 {
		w.maxStale = DefaultMaxStaleness
	}
	if w.interval >= w.maxStale {
		return nil, fmt.Errorf("killswitch: watcher: poll interval %v must be shorter than max staleness %v", w.interval, w.maxStale)
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if w.now == nil {
		w.now = time.Now
	}
	return w, nil
}

// Refresh reads the state once and, on success, makes it the snapshot.
func (w *Watcher) Refresh(ctx context.Context) error {
	start := w.now()
	ctx, cancel := context.WithTimeout(ctx, w.maxStale/2)
	defer cancel()
	st, err := w.store.Load(ctx)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		if w.lastErr == nil {
			w.log.Error("kill switch state unreadable; forwards will be refused once it is older than the staleness bound",
				slog.Duration("max_staleness", w.maxStale), slog.String("error", err.Error()))
		}
		w.lastErr = err
		return err
	}
	if w.lastErr != nil {
		w.log.Info("kill switch state readable again")
	}
	w.lastErr = nil
	switch {
	case w.state == nil:
		// The first read. Nothing disabled is the normal state and not
		// worth a warning at every start; something disabled is.
		if len(st) > 0 {
			w.log.Warn("kill switch: destinations disabled", slog.Any("disabled", disabledIDs(st)))
		}
	case !maps.EqualFunc(st, w.state, func(a, b Switch) bool { return a.Reason == b.Reason && a.At.Equal(b.At) }):
		w.log.Warn("kill switch state changed", slog.Any("disabled", disabledIDs(st)))
	}
	w.state = st
	w.readAt = start
	return nil
}

// disabledIDs lists st's ids in order; never nil, so that "nothing
// disabled" logs as [] rather than null.
func disabledIDs(st State) []string {
	ids := slices.Sorted(maps.Keys(st))
	if ids == nil {
		ids = []string{}
	}
	return ids
}

// Run refreshes every PollInterval until ctx is done.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		_ = w.Refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check returns nil if destination may be used, or an *Error:
// destination_disabled, or killswitch_unavailable when the snapshot is
// older than MaxStaleness (or there is none yet).
func (w *Watcher) Check(destination string) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.state == nil || w.now().Sub(w.readAt) > w.maxStale {
		return &Error{Code: CodeUnavailable, Message: "the kill switch state could not be read recently enough; forwards are refused until it can", Err: w.lastErr}
	}
	if _, ok := w.state[All]; ok {
		return &Error{Code: CodeDisabled, Message: "every destination is disabled by an operator"}
	}
	if _, ok := w.state[destination]; ok {
		return &Error{Code: CodeDisabled, Message: "this destination is disabled by an operator"}
	}
	return nil
}

// Status is the snapshot and its age, for readiness checks.
func (w *Watcher) Status() (State, time.Duration, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.state == nil {
		return nil, 0, &Error{Code: CodeUnavailable, Message: "kill switch state not read yet", Err: w.lastErr}
	}
	age := w.now().Sub(w.readAt)
	if age > w.maxStale {
		return maps.Clone(w.state), age, &Error{Code: CodeUnavailable, Message: "kill switch state is stale", Err: w.lastErr}
	}
	return maps.Clone(w.state), age, nil
}
