package allowlist

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func succ(v uint64) Successor {
	s := Successor{Version: v, SHA256: fakeSHA(v)}
	if v > 1 {
		s.PrevSHA256 = fakeSHA(v - 1)
	}
	return s
}

func fakeSHA(v uint64) string { return SHA256Hex([]byte(fmt.Sprint(v))) }

func TestCheckSuccession(t *testing.T) {
	cur := State{Version: 5, SHA256: fakeSHA(5)}
	tests := []struct {
		name string
		cur  State
		next Successor
		want error
	}{
		{"first use", State{}, succ(7), nil},
		{"next", cur, succ(6), nil},
		{"same bytes", cur, succ(5), nil},
		{"jump", cur, succ(9), nil},
		{"lower", cur, succ(4), ErrRollback},
		{"same version other bytes", cur, Successor{Version: 5, SHA256: fakeSHA(50)}, ErrVersionReused},
		{"broken chain", cur, Successor{Version: 6, SHA256: fakeSHA(6), PrevSHA256: fakeSHA(4)}, ErrChainBroken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := CheckSuccession(tt.cur, tt.next); !errors.Is(err, tt.want) && !(err == nil && tt.want == nil) {
				t.Errorf("CheckSuccession(%v, %v) = %v, want %v", tt.cur, tt.next, err, tt.want)
			}
		})
	}
}

// storeContract runs the same checks against every StateStore.
func storeContract(t *testing.T, st StateStore) {
	ctx := context.Background()
	if s, err := st.Load(ctx); err != nil || s != (State{}) {
		t.Fatalf("%s: Load() on an empty store = %v, %v", st, s, err)
	}
	for _, v := range []uint64{1, 2, 2, 5} {
		if err := st.Advance(ctx, succ(v)); err != nil {
			t.Fatalf("%s: Advance(%d) = %v", st, v, err)
		}
	}
	if err := st.Advance(ctx, succ(3)); !errors.Is(err, ErrRollback) {
		t.Errorf("%s: Advance(3) after 5 = %v, want %v", st, err, ErrRollback)
	}
	if err := st.Advance(ctx, Successor{Version: 6, SHA256: fakeSHA(6), PrevSHA256: fakeSHA(1)}); !errors.Is(err, ErrChainBroken) {
		t.Errorf("%s: Advance(6, bad prev) = %v, want %v", st, err, ErrChainBroken)
	}
	if s, err := st.Load(ctx); err != nil || s != (State{Version: 5, SHA256: fakeSHA(5)}) {
		t.Errorf("%s: Load() = %v, %v, want version 5", st, s, err)
	}
}

// concurrentContract advances many versions in random order from many
// goroutines (as replicas would) and checks the mark ends at the highest
// and was never lowered.
func concurrentContract(t *testing.T, stores func() StateStore) {
	ctx := context.Background()
	const n = 40
	order := rand.Perm(n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, i := range order {
		wg.Add(1)
		go func(v uint64) {
			defer wg.Done()
			if err := stores().Advance(ctx, succ(v)); err != nil && !errors.Is(err, ErrRollback) {
				errs <- fmt.Errorf("Advance(%d) = %w", v, err)
			}
		}(uint64(i + 1))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s, err := stores().Load(ctx); err != nil || s.Version != n {
		t.Errorf("after concurrent advances Load() = %v, %v, want version %d", s, err, n)
	}
}

func TestFileStateStore(t *testing.T) {
	dir := t.TempDir()
	storeContract(t, NewFileStateStore(filepath.Join(dir, "state.json")))
	path := filepath.Join(t.TempDir(), "state.json")
	// Separate instances share the file through flock, like processes.
	concurrentContract(t, func() StateStore { return NewFileStateStore(path) })

	writeFile(t, path, []byte("{not json"))
	if _, err := NewFileStateStore(path).Load(context.Background()); err == nil {
		t.Error("Load(corrupt state) = nil error; a corrupt mark must not reset to trust-anything")
	}
}

// startRedis runs a real redis-server on a unix socket in a temp dir.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found (install redis-server): %v", err)
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "redis.sock")
	cmd := exec.Command(bin, "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; i < 200; i++ {
		if _, err := os.Stat(sock); err == nil {
			return sock
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("redis-server did not start")
	return ""
}

func TestRedisStateStore(t *testing.T) {
	sock := startRedis(t)
	newClient := func() redis.UniversalClient {
		c := redis.NewClient(&redis.Options{Network: "unix", Addr: sock})
		t.Cleanup(func() { c.Close() })
		return c
	}
	storeContract(t, NewRedisStateStore(newClient(), "cardgate:allowlist:state:test"))
	concurrentContract(t, func() StateStore { return NewRedisStateStore(newClient(), "cardgate:allowlist:state:race") })

	c := newClient()
	c.HSet(context.Background(), "broken", "version", "x", "sha256", "y")
	if _, err := NewRedisStateStore(c, "broken").Load(context.Background()); err == nil {
		t.Error("Load(corrupt redis state) = nil error")
	}
}
