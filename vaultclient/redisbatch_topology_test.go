package vaultclient

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/cardgate/cardgate/internal/redistest"
)

// TestGetRecordPipelineAcrossSlotsAndErrors: one pipeline whose GETs fall
// in different hash slots (on a Cluster, on different nodes), one of
// which has no record and one of which Redis answers with an error (a key
// of the wrong type): every caller gets its own answer, the failing one
// its own error, and no caller another's record.
func TestGetRecordPipelineAcrossSlotsAndErrors(t *testing.T) {
	tests := []struct {
		name   string
		client func(t *testing.T) (redis.UniversalClient, redis.UniversalClient)
	}{
		{"single node", func(t *testing.T) (redis.UniversalClient, redis.UniversalClient) {
			srv := redistest.Start(t)
			return srv.Client(), srv.Client()
		}},
		{"cluster", func(t *testing.T) (redis.UniversalClient, redis.UniversalClient) {
			cl := redistest.StartCluster(t)
			return cl.Client(), cl.Client()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setup, c := tt.client(t)
			hook := newGateHook()
			c.AddHook(hook)
			s := NewRedisStore(c, "cardgate:")
			ctx := context.Background()

			const n = 24 // enough tokens that every node of a Cluster holds some
			want := map[string]string{"tok_first": "record first"}
			if err := setup.Set(ctx, s.cardKey("tok_first"), "record first", 0).Err(); err != nil {
				t.Fatal(err)
			}
			for i := range n {
				tok := fmt.Sprintf("tok_%d", i)
				switch i {
				case 5:
					want[tok] = "not found"
				case 11:
					want[tok] = "wrong type"
					if err := setup.HSet(ctx, s.cardKey(tok), "f", "v").Err(); err != nil {
						t.Fatal(err)
					}
				default:
					want[tok] = "record " + tok
					if err := setup.Set(ctx, s.cardKey(tok), want[tok], 0).Err(); err != nil {
						t.Fatal(err)
					}
				}
			}
			var mu sync.Mutex
			got := map[string]string{}
			read := func(tok string) {
				rec, err := s.GetRecord(ctx, tok)
				v := string(rec)
				switch {
				case errors.Is(err, ErrNotFound):
					v = "not found"
				case err != nil && strings.Contains(err.Error(), "WRONGTYPE"):
					v = "wrong type"
				case err != nil:
					v = "error: " + err.Error()
				}
				mu.Lock()
				got[tok] = v
				mu.Unlock()
			}
			var wg sync.WaitGroup
			wg.Go(func() { read("tok_first") })
			<-hook.entered
			for i := range n {
				wg.Go(func() { read(fmt.Sprintf("tok_%d", i)) })
			}
			waitFor(t, "every other read queued behind the first", func() bool { return s.gets.queued() == n })
			close(hook.release)
			wg.Wait()
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("records read (-want +got):\n%s", diff)
			}
			if _, pipelines := hook.counts(); !cmp.Equal(pipelines, []int{n}) {
				t.Errorf("pipelines %v, want [%d]", pipelines, n)
			}
		})
	}
}
