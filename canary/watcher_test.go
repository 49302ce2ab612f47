package canary

import (
	"context"
	"testing"
	"time"

	"github.com/cardgate/cardgate/internal/redistest"
)

func TestWatcher(t *testing.T) {
	srv := redistest.Start(t)
	s, err := NewSet(srv.Client(), "test:canary", 0)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	w, err := NewWatcher(WatcherOptions{Set: s, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := w.IsCanary(ctx, tok); err == nil {
		t.Error("IsCanary before the first read = nil error, want a refusal")
	}
	if err := s.Add(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := w.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		token string
		want  bool
	}{{tok, true}, {"tok_otheraaaaaaaaaaaaaaaaaaaaaaaaaaa", false}}
	for _, tt := range tests {
		if got, err := w.IsCanary(ctx, tt.token); got != tt.want || err != nil {
			t.Errorf("IsCanary(%q) = %v, %v; want %v", tt.token, got, err, tt.want)
		}
	}

	// Redis goes away: the snapshot serves until it is stale, then every
	// check fails closed.
	srv.Stop()
	if err := w.Refresh(ctx); err == nil {
		t.Fatal("Refresh with Redis stopped = nil error")
	}
	now = now.Add(DefaultMaxStaleness / 2)
	if got, err := w.IsCanary(ctx, tok); !got || err != nil {
		t.Errorf("IsCanary on a fresh snapshot = %v, %v; want true", got, err)
	}
	now = now.Add(DefaultMaxStaleness)
	if _, err := w.IsCanary(ctx, "tok_otheraaaaaaaaaaaaaaaaaaaaaaaaaaa"); err == nil {
		t.Error("IsCanary on a stale snapshot = nil error, want a refusal")
	}
}

func TestNewWatcherRefuses(t *testing.T) {
	if _, err := NewWatcher(WatcherOptions{}); err == nil {
		t.Error("NewWatcher without a set = nil error")
	}
	s := &Set{}
	if _, err := NewWatcher(WatcherOptions{Set: s, PollInterval: time.Second, MaxStaleness: time.Millisecond}); err == nil {
		t.Error("NewWatcher with staleness below the interval = nil error")
	}
}
