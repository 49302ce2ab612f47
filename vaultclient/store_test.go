package vaultclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardgate/cardgate/internal/redistest"
	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"
)

// testStore is the one suite every Store passes. newStore returns a fresh,
// empty store.
func testStore(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()
	// Store tests use syntactically valid tokens, as the Vault would.
	tok := func() string { return newToken() }
	full := Entry{Record: []byte(`{"record":1}`), CVC: []byte(`{"cvc":1}`)}

	t.Run("put then get", func(t *testing.T) {
		s := newStore(t)
		token := tok()
		if err := s.Put(ctx, token, full, time.Hour); err != nil {
			t.Fatalf("Put: %v", err)
		}
		got, err := s.Get(ctx, token)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if !bytes.Equal(got.Record, full.Record) || !bytes.Equal(got.CVC, full.CVC) {
			t.Errorf("Get = {%q, %q}, want {%q, %q}", got.Record, got.CVC, full.Record, full.CVC)
		}
	})

	t.Run("put without cvc", func(t *testing.T) {
		s := newStore(t)
		token := tok()
		if err := s.Put(ctx, token, Entry{Record: full.Record}, time.Hour); err != nil {
			t.Fatalf("Put: %v", err)
		}
		got, err := s.Get(ctx, token)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if got.CVC != nil {
			t.Errorf("Get CVC = %q, want nil", got.CVC)
		}
	})

	t.Run("get record", func(t *testing.T) {
		// The record alone, with or without a CVC beside it, and the CVC
		// left as it was.
		s := newStore(t)
		withCVC, without := tok(), tok()
		if err := s.Put(ctx, withCVC, full, time.Hour); err != nil {
			t.Fatalf("Put: %v", err)
		}
		if err := s.Put(ctx, without, Entry{Record: full.Record}, time.Hour); err != nil {
			t.Fatalf("Put: %v", err)
		}
		for _, token := range []string{withCVC, without, withCVC} {
			got, err := s.GetRecord(ctx, token)
			if err != nil {
				t.Fatalf("GetRecord: %v", err)
			}
			if !bytes.Equal(got, full.Record) {
				t.Errorf("GetRecord = %q, want %q", got, full.Record)
			}
		}
		got, err := s.Get(ctx, withCVC)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if !bytes.Equal(got.CVC, full.CVC) {
			t.Errorf("Get CVC after GetRecord = %q, want %q (untouched)", got.CVC, full.CVC)
		}
		if _, err := s.GetRecord(ctx, tok()); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetRecord(unknown) error = %v, want ErrNotFound", err)
		}
	})

	t.Run("get unknown", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Get(ctx, tok()); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(unknown) error = %v, want ErrNotFound", err)
		}
	})

	t.Run("empty record refused", func(t *testing.T) {
		s := newStore(t)
		token := tok()
		if err := s.Put(ctx, token, Entry{CVC: full.CVC}, time.Hour); err == nil {
			t.Fatal("Put(empty record) = nil, want an error")
		}
		if _, err := s.Get(ctx, token); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get after refused Put: error = %v, want ErrNotFound", err)
		}
	})

	t.Run("never overwrites", func(t *testing.T) {
		s := newStore(t)
		token := tok()
		if err := s.Put(ctx, token, Entry{Record: full.Record}, time.Hour); err != nil {
			t.Fatalf("Put: %v", err)
		}
		other := Entry{Record: []byte(`{"other":1}`), CVC: []byte(`{"othercvc":1}`)}
		if err := s.Put(ctx, token, other, time.Hour); !errors.Is(err, ErrExists) {
			t.Fatalf("second Put error = %v, want ErrExists", err)
		}
		got, err := s.Get(ctx, token)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		// Neither half of the refused Put may land: not the record, and not
		// a CVC next to the old record.
		if !bytes.Equal(got.Record, full.Record) || got.CVC != nil {
			t.Errorf("Get after refused Put = {%q, %q}, want {%q, nil}", got.Record, got.CVC, full.Record)
		}
	})

	t.Run("concurrent puts: exactly one wins", func(t *testing.T) {
		s := newStore(t)
		token := tok()
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				errs[i] = s.Put(ctx, token, Entry{Record: []byte{'r', byte('0' + i)}, CVC: []byte{'c', byte('0' + i)}}, time.Hour)
			})
		}
		wg.Wait()
		won := -1
		for i, err := range errs {
			switch {
			case err == nil && won >= 0:
				t.Fatalf("Put %d and Put %d both succeeded", won, i)
			case err == nil:
				won = i
			case !errors.Is(err, ErrExists):
				t.Fatalf("Put %d: %v, want nil or ErrExists", i, err)
			}
		}
		if won < 0 {
			t.Fatal("no Put succeeded")
		}
		got, err := s.Get(ctx, token)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		// The record and CVC must come from the same Put.
		if got.Record[1] != got.CVC[1] || int(got.Record[1]-'0') != won {
			t.Errorf("Get = {%q, %q}, want both from Put %d", got.Record, got.CVC, won)
		}
	})

	t.Run("delete cvc", func(t *testing.T) {
		s := newStore(t)
		token := tok()
		if err := s.Put(ctx, token, full, time.Hour); err != nil {
			t.Fatalf("Put: %v", err)
		}
		for i := range 2 { // the second delete finds nothing, and is not an error
			if err := s.DeleteCVC(ctx, token); err != nil {
				t.Fatalf("DeleteCVC #%d: %v", i+1, err)
			}
		}
		got, err := s.Get(ctx, token)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if got.CVC != nil || !bytes.Equal(got.Record, full.Record) {
			t.Errorf("Get after DeleteCVC = {%q, %q}, want {%q, nil}", got.Record, got.CVC, full.Record)
		}
		if err := s.DeleteCVC(ctx, tok()); err != nil {
			t.Errorf("DeleteCVC(unknown token) = %v, want nil", err)
		}
	})

	t.Run("get and delete cvc", func(t *testing.T) {
		s := newStore(t)
		token := tok()
		if err := s.Put(ctx, token, full, time.Hour); err != nil {
			t.Fatalf("Put: %v", err)
		}
		got, err := s.GetAndDeleteCVC(ctx, token)
		if err != nil {
			t.Fatalf("GetAndDeleteCVC: %v", err)
		}
		if !bytes.Equal(got.Record, full.Record) || !bytes.Equal(got.CVC, full.CVC) {
			t.Errorf("GetAndDeleteCVC = {%q, %q}, want {%q, %q}", got.Record, got.CVC, full.Record, full.CVC)
		}
		for _, get := range []func(context.Context, string) (Entry, error){s.GetAndDeleteCVC, s.Get} {
			got, err := get(ctx, token)
			if err != nil {
				t.Fatalf("read after GetAndDeleteCVC: %v", err)
			}
			if got.CVC != nil || !bytes.Equal(got.Record, full.Record) {
				t.Errorf("read after GetAndDeleteCVC = {%q, %q}, want {%q, nil}", got.Record, got.CVC, full.Record)
			}
		}
		if _, err := s.GetAndDeleteCVC(ctx, tok()); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetAndDeleteCVC(unknown) error = %v, want ErrNotFound", err)
		}
	})

	t.Run("get and delete cvc races", func(t *testing.T) {
		// Of many concurrent readers, exactly one gets the CVC.
		s := newStore(t)
		token := tok()
		if err := s.Put(ctx, token, full, time.Hour); err != nil {
			t.Fatalf("Put: %v", err)
		}
		const n = 16
		var wg sync.WaitGroup
		var got atomic.Int32
		for range n {
			wg.Go(func() {
				e, err := s.GetAndDeleteCVC(ctx, token)
				if err != nil {
					t.Errorf("GetAndDeleteCVC: %v", err)
					return
				}
				if e.CVC != nil {
					got.Add(1)
				}
			})
		}
		wg.Wait()
		if got.Load() != 1 {
			t.Errorf("%d of %d concurrent GetAndDeleteCVC calls got the CVC, want 1", got.Load(), n)
		}
	})

	t.Run("cvc expires", func(t *testing.T) {
		s := newStore(t)
		token := tok()
		if err := s.Put(ctx, token, full, 50*time.Millisecond); err != nil {
			t.Fatalf("Put: %v", err)
		}
		// Real time on purpose: Redis expires keys on its own clock.
		deadline := time.Now().Add(5 * time.Second)
		for {
			got, err := s.Get(ctx, token)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if !bytes.Equal(got.Record, full.Record) {
				t.Fatalf("Get record = %q, want %q: the record must outlive its CVC", got.Record, full.Record)
			}
			if got.CVC == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("CVC still held 5s after a 50ms TTL")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		s := newStore(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		token := tok()
		if err := s.Put(cctx, token, full, time.Hour); !errors.Is(err, context.Canceled) {
			t.Errorf("Put(cancelled) = %v, want context.Canceled", err)
		}
		if _, err := s.Get(cctx, token); !errors.Is(err, context.Canceled) || errors.Is(err, ErrNotFound) {
			t.Errorf("Get(cancelled) = %v, want context.Canceled and not ErrNotFound", err)
		}
		if _, err := s.GetRecord(cctx, token); !errors.Is(err, context.Canceled) || errors.Is(err, ErrNotFound) {
			t.Errorf("GetRecord(cancelled) = %v, want context.Canceled and not ErrNotFound", err)
		}
		if _, err := s.Get(ctx, token); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get after cancelled Put = %v, want ErrNotFound", err)
		}
	})

	t.Run("ping", func(t *testing.T) {
		if err := newStore(t).Ping(ctx); err != nil {
			t.Errorf("Ping = %v, want nil", err)
		}
	})
}

func TestBoltStore(t *testing.T) {
	testStore(t, func(t *testing.T) Store { return newTestBolt(t) })
}

func TestRedisStore(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	n := 0
	testStore(t, func(t *testing.T) Store {
		// One server, a fresh prefix per subtest, so subtests do not see
		// each other's keys.
		n++
		return NewRedisStore(c, "test"+string(rune('a'+n))+":")
	})
}

func TestRedisStoreKeyLayout(t *testing.T) {
	ctx := context.Background()
	s, srv := newTestRedis(t)
	c := srv.Client()
	token := newToken()
	if err := s.Put(ctx, token, Entry{Record: []byte("r"), CVC: []byte("c")}, time.Minute); err != nil {
		t.Fatalf("Put: %v", err)
	}
	cardKey, cvcKey := "cardgate:{"+token+"}:card", "cardgate:{"+token+"}:cvc"
	if ttl, err := c.PTTL(ctx, cardKey).Result(); err != nil || ttl != -1 {
		t.Errorf("PTTL %s = %v, %v; want -1 (no expiry)", cardKey, ttl, err)
	}
	if ttl, err := c.PTTL(ctx, cvcKey).Result(); err != nil || ttl <= 0 || ttl > time.Minute {
		t.Errorf("PTTL %s = %v, %v; want (0, 1m]", cvcKey, ttl, err)
	}
	// A standalone Redis 7.0 refuses CLUSTER KEYSLOT, so compare the hash
	// tags here; topology_test.go checks the real slots on a cluster.
	if a, b := tagOf(cardKey), tagOf(cvcKey); a == "" || a != b {
		t.Errorf("hash tags of %s and %s = %q, %q; want one non-empty tag", cardKey, cvcKey, a, b)
	}
}

// TestRedisStoreGetRecordLeavesCVCKey: GetRecord sends Redis no command
// that names the CVC key, so a plain Detokenize never fetches a CVC.
func TestRedisStoreGetRecordLeavesCVCKey(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	c := srv.Client()
	s := NewRedisStore(c, "cardgate:")
	token := newToken()
	if err := s.Put(ctx, token, Entry{Record: []byte("r"), CVC: []byte("c")}, time.Minute); err != nil {
		t.Fatalf("Put: %v", err)
	}
	h := &cmdLog{}
	c.AddHook(h)
	if rec, err := s.GetRecord(ctx, token); err != nil || string(rec) != "r" {
		t.Fatalf("GetRecord = %q, %v; want %q", rec, err, "r")
	}
	cardKey, cvcKey := "cardgate:{"+token+"}:card", "cardgate:{"+token+"}:cvc"
	if diff := cmp.Diff([][]string{{"get", cardKey}}, h.take()); diff != "" {
		t.Errorf("GetRecord commands (-want +got):\n%s", diff)
	}
	if n, err := c.Exists(ctx, cvcKey).Result(); err != nil || n != 1 {
		t.Errorf("EXISTS %s after GetRecord = %d, %v; want 1", cvcKey, n, err)
	}
}

// cmdLog is a go-redis hook that records the arguments of every command.
type cmdLog struct {
	mu   sync.Mutex
	cmds [][]string
}

func (h *cmdLog) add(cmd redis.Cmder) {
	args := make([]string, len(cmd.Args()))
	for i, a := range cmd.Args() {
		args[i] = fmt.Sprint(a)
	}
	h.mu.Lock()
	h.cmds = append(h.cmds, args)
	h.mu.Unlock()
}

func (h *cmdLog) take() [][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.cmds
	h.cmds = nil
	return c
}

func (h *cmdLog) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *cmdLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.add(cmd)
		return next(ctx, cmd)
	}
}

func (h *cmdLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			h.add(cmd)
		}
		return next(ctx, cmds)
	}
}

// TestRedisStoreOutOfMemoryWritesNothing drives a real write failure: at
// maxmemory Redis must refuse the whole put script, not run half of it.
func TestRedisStoreOutOfMemoryWritesNothing(t *testing.T) {
	ctx := context.Background()
	srv := redistest.StartWith(t, redistest.Options{Args: []string{"--maxmemory-policy", "noeviction"}})
	c := srv.Client()
	s := NewRedisStore(c, "cardgate:")
	if err := c.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatalf("CONFIG SET maxmemory: %v", err)
	}
	token := newToken()
	err := s.Put(ctx, token, Entry{Record: []byte("r"), CVC: []byte("c")}, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "OOM") {
		t.Fatalf("Put at maxmemory = %v, want an OOM error", err)
	}
	if err := c.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatalf("CONFIG SET maxmemory: %v", err)
	}
	if n, err := c.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Errorf("DBSIZE after refused Put = %d, %v; want 0; dump:\n%s", n, err, srv.Dump())
	}
}

func TestRedisStoreDown(t *testing.T) {
	ctx := context.Background()
	s, srv := newTestRedis(t)
	srv.Stop()
	token := newToken()
	if _, err := s.Get(ctx, token); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("Get with Redis down = %v, want an outage error, not ErrNotFound", err)
	}
	if _, err := s.GetRecord(ctx, token); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("GetRecord with Redis down = %v, want an outage error, not ErrNotFound", err)
	}
	if err := s.Put(ctx, token, Entry{Record: []byte("r")}, time.Minute); err == nil || errors.Is(err, ErrExists) {
		t.Errorf("Put with Redis down = %v, want an outage error", err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping with Redis down = nil, want an error")
	}
	srv.Restart()
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping after restart = %v, want nil", err)
	}
}

// TestBoltStoreSecondWriteFails makes bbolt refuse the third write of a
// Put (the CVC expiry index key, 8 bytes longer than the token, exceeds
// bbolt's key size limit) after the CVC itself was written: the
// transaction must roll back whole.
func TestBoltStoreSecondWriteFails(t *testing.T) {
	ctx := context.Background()
	s := newTestBolt(t)
	token := strings.Repeat("t", bolt.MaxKeySize-4)
	err := s.Put(ctx, token, Entry{Record: []byte("r"), CVC: []byte("c")}, time.Minute)
	if err == nil {
		t.Fatal("Put with an oversized index key = nil, want an error")
	}
	if _, err := s.Get(ctx, token); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after failed Put = %v, want ErrNotFound", err)
	}
	s.db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket([]byte(bucketCVCs)).Stats().KeyN; n != 0 {
			t.Errorf("cvcs bucket holds %d keys after failed Put, want 0", n)
		}
		return nil
	})
}

func TestBoltStoreSweepsOnOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cards.db")
	s, err := OpenBoltStore(path)
	if err != nil {
		t.Fatalf("OpenBoltStore: %v", err)
	}
	now := time.Now()
	s.now = fixedClock(now)
	live, dead := newToken(), newToken()
	if err := s.Put(ctx, dead, Entry{Record: []byte("r1"), CVC: []byte("c1")}, time.Second); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := s.Put(ctx, live, Entry{Record: []byte("r2"), CVC: []byte("c2")}, time.Hour); err != nil {
		t.Fatalf("Put: %v", err)
	}
	s.Close()
	// Reopen an hour later by the real clock's standards: open sweeps with
	// time.Now, and dead expired a second after it was written.
	time.Sleep(1100 * time.Millisecond)
	s, err = OpenBoltStore(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket([]byte(bucketCVCs)).Get([]byte(dead)); v != nil {
			t.Error("expired CVC still in the file after reopen")
		}
		if v := tx.Bucket([]byte(bucketCVCs)).Get([]byte(live)); v == nil {
			t.Error("live CVC swept on reopen")
		}
		if n := tx.Bucket([]byte(bucketCVCExpiry)).Stats().KeyN; n != 1 {
			t.Errorf("expiry index holds %d entries, want 1", n)
		}
		return nil
	})
}

func TestBoltStoreFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cards.db")
	s, err := OpenBoltStore(path)
	if err != nil {
		t.Fatalf("OpenBoltStore: %v", err)
	}
	defer s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("store file mode = %04o, want 0600", perm)
	}
	// A second opener of a locked file fails after the timeout rather than
	// hanging.
	if _, err := OpenBoltStore(path); err == nil {
		t.Error("second OpenBoltStore on a locked file = nil error, want a timeout")
	}
}

func TestBoltStoreRefusesOtherFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cards.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucket([]byte(bucketMeta))
		return b.Put([]byte(keyFormat), []byte("cardgate-bolt/v99"))
	})
	db.Close()
	if _, err := OpenBoltStore(path); err == nil || !strings.Contains(err.Error(), "format") {
		t.Errorf("OpenBoltStore(v99 file) = %v, want a format error", err)
	}
}

// tagOf returns a key's Redis Cluster hash tag, or "" when it has none.
func tagOf(key string) string {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return ""
	}
	j := strings.IndexByte(key[i+1:], '}')
	if j <= 0 {
		return ""
	}
	return key[i+1 : i+1+j]
}
