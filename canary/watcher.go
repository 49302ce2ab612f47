package canary

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Watcher defaults.
const (
	DefaultPollInterval = 250 * time.Millisecond
	DefaultMaxStaleness = time.Second
)

// Watcher answers IsCanary from a snapshot of the set that it refreshes
// every PollInterval, so a forward costs no Redis round trip for the
// canary check. A canary added with `cardgate canary add` takes effect
// within one interval on every replica. When the snapshot is older than
// MaxStaleness (Redis unreachable), IsCanary fails and the forward is
// refused: a canary must never slip through unseen.
type Watcher struct {
	set      *Set
	interval time.Duration
	maxStale time.Duration
	now      func() time.Time
	log      *slog.Logger

	mu     sync.RWMutex
	tokens map[string]struct{}
	readAt time.Time // when tokens was read; zero before the first read
	err    error     // the last refresh's error
}

// WatcherOptions configures a Watcher. Set is required.
type WatcherOptions struct {
	Set          *Set
	PollInterval time.Duration // zero means DefaultPollInterval
	MaxStaleness time.Duration // zero means DefaultMaxStaleness
	Now          func() time.Time
	Logger       *slog.Logger
}

// NewWatcher returns a Watcher with no snapshot yet; call Refresh, then Run.
func NewWatcher(o WatcherOptions) (*Watcher, error) {
	if o.Set == nil {
		return nil, errors.New("canary: watcher needs a set")
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.MaxStaleness <= 0 {
		o.MaxStaleness = DefaultMaxStaleness
	}
	if o.MaxStaleness < o.PollInterval {
		return nil, fmt.Errorf("canary: max staleness %v is shorter than the poll interval %v", o.MaxStaleness, o.PollInterval)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Watcher{set: o.Set, interval: o.PollInterval, maxStale: o.MaxStaleness, now: o.Now, log: o.Logger}, nil
}

// Refresh reads the set once. The snapshot's age counts from when the read
// started (a slow read is no fresher than its start), and the read is
// bounded by half the staleness allowed, as the kill switch's is.
func (w *Watcher) Refresh(ctx context.Context) error {
	start := w.now()
	ctx, cancel := context.WithTimeout(ctx, w.maxStale/2)
	defer cancel()
	members, err := w.set.List(ctx)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.err = err
	if err != nil {
		return err
	}
	tokens := make(map[string]struct{}, len(members))
	for _, m := range members {
		tokens[m] = struct{}{}
	}
	w.tokens, w.readAt = tokens, start
	return nil
}

// Run refreshes the snapshot until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := w.Refresh(ctx)
		switch {
		case err != nil && !failing:
			w.log.Error("canary set unreadable; forwards are refused once the snapshot is stale", slog.String("error", err.Error()))
		case err == nil && failing:
			w.log.Info("canary set readable again")
		}
		failing = err != nil
	}
}

// Status reports the snapshot's size and age, or why it cannot be used.
func (w *Watcher) Status() (count int, age time.Duration, err error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.readAt.IsZero() {
		return 0, 0, fmt.Errorf("canary: never read (last error: %v)", w.err)
	}
	age = w.now().Sub(w.readAt)
	if age > w.maxStale {
		return len(w.tokens), age, fmt.Errorf("canary: snapshot older than %v (last error: %v)", w.maxStale, w.err)
	}
	return len(w.tokens), age, nil
}

// IsCanary reports whether token is in the snapshot, or fails when the
// snapshot is missing or stale.
func (w *Watcher) IsCanary(_ context.Context, token string) (bool, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.readAt.IsZero() || w.now().Sub(w.readAt) > w.maxStale {
		return false, fmt.Errorf("canary: snapshot older than %v (last error: %v)", w.maxStale, w.err)
	}
	_, ok := w.tokens[token]
	return ok, nil
}
