package canary

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cardgate/cardgate/vaultclient"
)

// DefaultTimeout bounds one Redis call when the Set's timeout is zero.
const DefaultTimeout = 2 * time.Second

// Set is the canary set in Redis.
type Set struct {
	c       redis.UniversalClient
	key     string
	timeout time.Duration
}

// NewSet returns the set stored at key (e.g. "cardgate:canary:production").
func NewSet(c redis.UniversalClient, key string, timeout time.Duration) (*Set, error) {
	if c == nil || key == "" {
		return nil, errors.New("canary: a client and a key are required")
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Set{c: c, key: key, timeout: timeout}, nil
}

// IsCanary reports whether token is in the set.
func (s *Set) IsCanary(ctx context.Context, token string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	ok, err := s.c.SIsMember(ctx, s.key, token).Result()
	if err != nil {
		return false, fmt.Errorf("canary: redis %s: %w", s.key, err)
	}
	return ok, nil
}

// Add marks token as a canary.
func (s *Set) Add(ctx context.Context, token string) error {
	if !vaultclient.ValidToken(token) {
		return errors.New("canary: not a token (tok_ and 32 characters of a-z, 2-7)")
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.c.SAdd(ctx, s.key, token).Err(); err != nil {
		return fmt.Errorf("canary: redis %s: add: %w", s.key, err)
	}
	return nil
}

// Remove unmarks token.
func (s *Set) Remove(ctx context.Context, token string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.c.SRem(ctx, s.key, token).Err(); err != nil {
		return fmt.Errorf("canary: redis %s: remove: %w", s.key, err)
	}
	return nil
}

// List returns every canary token, sorted.
func (s *Set) List(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	m, err := s.c.SMembers(ctx, s.key).Result()
	if err != nil {
		return nil, fmt.Errorf("canary: redis %s: list: %w", s.key, err)
	}
	slices.Sort(m)
	return m, nil
}
