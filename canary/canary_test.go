package canary

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cardgate/cardgate/internal/redistest"
)

const tok = "tok_canaryaaaaaaaaaaaaaaaaaaaaaaaaaa"

func TestSet(t *testing.T) {
	srv := redistest.Start(t)
	s, err := NewSet(srv.Client(), "test:canary", 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Add(ctx, "4242424242424242"); err == nil {
		t.Error("Add accepted a card number")
	}
	if err := s.Add(ctx, tok); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		token string
		want  bool
	}{{tok, true}, {"tok_otheraaaaaaaaaaaaaaaaaaaaaaaaaaa", false}}
	for _, tt := range tests {
		if got, err := s.IsCanary(ctx, tt.token); err != nil || got != tt.want {
			t.Errorf("IsCanary(%q) = %v, %v; want %v", tt.token, got, err, tt.want)
		}
	}
	if l, err := s.List(ctx); err != nil || !slices.Equal(l, []string{tok}) {
		t.Errorf("List = %v, %v", l, err)
	}
	if err := s.Remove(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.IsCanary(ctx, tok); got {
		t.Error("IsCanary after Remove = true")
	}
}

func TestRedisDownIsAnError(t *testing.T) {
	srv := redistest.Start(t)
	s, _ := NewSet(srv.Client(), "k", 300*time.Millisecond)
	srv.Stop()
	if _, err := s.IsCanary(context.Background(), tok); err == nil {
		t.Error("IsCanary with Redis down returned no error: it must never answer \"not a canary\" without looking")
	}
}
