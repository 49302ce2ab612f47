package allowlist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cardgate/cardgate/internal/fileread"
)

// State is the rollback high-water mark: the highest version ever
// accepted and the sha256 of its exact bytes. Version 0 means nothing has
// been accepted yet.
type State struct {
	Version uint64 `json:"version"`
	SHA256  string `json:"sha256"`
}

// Successor describes a verified document offered as the next state.
type Successor struct {
	Version    uint64
	SHA256     string
	PrevSHA256 string
}

func successorOf(a *Allowlist) Successor {
	return Successor{Version: a.Doc.Version, SHA256: a.SHA256, PrevSHA256: a.Doc.PrevSHA256}
}

// CheckSuccession applies the rollback rules to moving from cur to next:
//   - a lower version is refused (ErrRollback);
//   - an equal version is accepted only with identical bytes
//     (ErrVersionReused otherwise), so a reload of the same file is
//     idempotent;
//   - version cur+1 must carry prev_sha256 == cur's sha256 (ErrChainBroken);
//   - a jump of more than one version is accepted (a gateway may have been
//     down while a version was live); its chain is checked by auditors;
//   - with no state (Version 0) any version is accepted: trust on first use.
func CheckSuccession(cur State, next Successor) error {
	switch {
	case cur.Version == 0:
		return nil
	case next.Version < cur.Version:
		return refuse(ProblemRollback, nil, "version %d is lower than version %d already accepted", next.Version, cur.Version)
	case next.Version == cur.Version && next.SHA256 != cur.SHA256:
		return refuse(ProblemVersionReused, nil, "version %d was already accepted with different bytes (sha256 %s)", cur.Version, cur.SHA256)
	case next.Version == cur.Version+1 && next.PrevSHA256 != cur.SHA256:
		return refuse(ProblemChainBroken, nil, "version %d names prev_sha256 %q, but version %d has sha256 %s", next.Version, next.PrevSHA256, cur.Version, cur.SHA256)
	}
	return nil
}

// StateStore keeps the high-water mark outside the allowlist's directory,
// across restarts and, for shared stores, across replicas.
type StateStore interface {
	// Load returns the current high-water mark.
	Load(ctx context.Context) (State, error)
	// Advance atomically checks CheckSuccession(current, next) and, when
	// it passes, records next. Concurrent Advance calls, in this process
	// or another replica, can never lower the mark.
	Advance(ctx context.Context, next Successor) error
	// String names the store for status reports.
	String() string
}

// memoryStateStore is the nil-HolderOptions.State default: rollback is
// refused within the process lifetime only.
type memoryStateStore struct {
	mu sync.Mutex
	s  State
}

func (m *memoryStateStore) Load(context.Context) (State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.s, nil
}

func (m *memoryStateStore) Advance(_ context.Context, next Successor) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := CheckSuccession(m.s, next); err != nil {
		return err
	}
	m.s = State{Version: next.Version, SHA256: next.SHA256}
	return nil
}

func (m *memoryStateStore) String() string { return "memory (not persisted)" }

// FileStateStore keeps the high-water mark in a small JSON file, written
// atomically (temporary file, fsync, rename, fsync of the directory) under
// an flock so that processes on one host serialize. For a single node;
// replicas must share a RedisStateStore.
type FileStateStore struct {
	path string
	// turn lets one Load or Advance of this process run at a time. It is
	// a channel, not a mutex, so that waiting for it ends with the
	// caller's context.
	turn chan struct{}
}

// NewFileStateStore returns a store at path. The directory must exist and
// should not be the allowlist's own directory: whoever can replace the
// allowlist must not be able to reset the mark. A missing file means no
// state (trust on first use). Use this constructor: a zero FileStateStore
// has no turn to take.
func NewFileStateStore(path string) *FileStateStore {
	return &FileStateStore{path: path, turn: make(chan struct{}, 1)}
}

func (f *FileStateStore) String() string { return "file " + f.path }

// Load reads the file. It gives up when ctx is done before its turn.
func (f *FileStateStore) Load(ctx context.Context) (State, error) {
	if err := f.take(ctx); err != nil {
		return State{}, err
	}
	defer f.give()
	return f.read(ctx)
}

// take waits for this process's turn at the file, or for ctx.
func (f *FileStateStore) take(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("allowlist: state: %w", err)
	}
	select {
	case f.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("allowlist: state: %w", ctx.Err())
	}
}

func (f *FileStateStore) give() { <-f.turn }

// maxStateBytes caps the state file; it holds one small JSON object.
const maxStateBytes = 4 << 10

func (f *FileStateStore) read(ctx context.Context) (State, error) {
	b, err := fileread.Read(ctx, f.path, maxStateBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("allowlist: read state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		// A corrupt mark must not silently reset to "trust anything".
		return State{}, fmt.Errorf("allowlist: state file %s is corrupt: %w", f.path, err)
	}
	if s.Version == 0 || !reSHA256.MatchString(s.SHA256) {
		return State{}, fmt.Errorf("allowlist: state file %s is incomplete", f.path)
	}
	return s, nil
}

// Advance checks and records next. Waiting for another process's lock on
// the file ends when ctx does, with ctx's error.
func (f *FileStateStore) Advance(ctx context.Context, next Successor) error {
	if err := f.take(ctx); err != nil {
		return err
	}
	defer f.give()
	lock, err := os.OpenFile(f.path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("allowlist: state lock: %w", err)
	}
	defer lock.Close()
	if err := flockContext(ctx, int(lock.Fd())); err != nil {
		return fmt.Errorf("allowlist: state lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing the file releases it anyway

	cur, err := f.read(ctx)
	if err != nil {
		return err
	}
	if err := CheckSuccession(cur, next); err != nil {
		return err
	}
	if cur.Version == next.Version {
		return nil
	}
	b, err := json.Marshal(State{Version: next.Version, SHA256: next.SHA256})
	if err != nil {
		return fmt.Errorf("allowlist: encode state: %w", err)
	}
	return writeFileAtomic(f.path, append(b, '\n'))
}

// The wait for a file lock polls, starting at flockPollMin and doubling
// up to flockPollMax: a cancelled context is noticed within flockPollMax.
const (
	flockPollMin = time.Millisecond
	flockPollMax = 20 * time.Millisecond
)

// flockContext takes an exclusive flock on fd, trying without blocking
// until it is granted or ctx is done. A blocking flock in a goroutine
// abandoned on cancel could be granted after Advance gave up and hold the
// lock with nobody to release it; a poll cannot.
func flockContext(ctx context.Context, fd int) error {
	wait := flockPollMin
	for {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, flockPollMax)
	}
}

func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("allowlist: write state: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("allowlist: write state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("allowlist: write state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("allowlist: write state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("allowlist: write state: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("allowlist: write state: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("allowlist: write state: %w", err)
	}
	return nil
}

// RedisStateStore keeps the high-water mark in a Redis hash (fields
// version and sha256) shared by every replica. Advance runs under WATCH,
// so a replica that read an older mark cannot overwrite a newer one.
type RedisStateStore struct {
	client redis.UniversalClient
	key    string
}

// NewRedisStateStore returns a store at key. Use one key per environment,
// e.g. "cardgate:allowlist:state:prod".
func NewRedisStateStore(client redis.UniversalClient, key string) *RedisStateStore {
	return &RedisStateStore{client: client, key: key}
}

func (r *RedisStateStore) String() string { return "redis " + r.key }

// redisAdvanceAttempts bounds retries when another replica raced us.
const redisAdvanceAttempts = 8

// Load reads the hash.
func (r *RedisStateStore) Load(ctx context.Context) (State, error) {
	return readRedisState(ctx, r.client, r.key)
}

type hashGetter interface {
	HMGet(ctx context.Context, key string, fields ...string) *redis.SliceCmd
}

func readRedisState(ctx context.Context, c hashGetter, key string) (State, error) {
	vals, err := c.HMGet(ctx, key, "version", "sha256").Result()
	if err != nil {
		return State{}, fmt.Errorf("allowlist: read state from redis: %w", err)
	}
	if vals[0] == nil && vals[1] == nil {
		return State{}, nil
	}
	vs, _ := vals[0].(string)
	sha, _ := vals[1].(string)
	v, err := strconv.ParseUint(vs, 10, 64)
	if err != nil || v == 0 || !reSHA256.MatchString(sha) {
		return State{}, fmt.Errorf("allowlist: redis state %s is corrupt", key)
	}
	return State{Version: v, SHA256: sha}, nil
}

// Advance checks and records next under WATCH.
func (r *RedisStateStore) Advance(ctx context.Context, next Successor) error {
	for range redisAdvanceAttempts {
		err := r.client.Watch(ctx, func(tx *redis.Tx) error {
			cur, err := readRedisState(ctx, tx, r.key)
			if err != nil {
				return err
			}
			if err := CheckSuccession(cur, next); err != nil {
				return err
			}
			if cur.Version == next.Version {
				return nil
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.HSet(ctx, r.key, "version", strconv.FormatUint(next.Version, 10), "sha256", next.SHA256)
				return nil
			})
			return err
		}, r.key)
		if errors.Is(err, redis.TxFailedErr) {
			continue // another replica moved the mark; re-read and re-check
		}
		if err != nil {
			var ve *VerifyError
			if errors.As(err, &ve) {
				return err
			}
			return fmt.Errorf("allowlist: advance redis state: %w", err)
		}
		return nil
	}
	return fmt.Errorf("allowlist: advance redis state: gave up after %d conflicting updates", redisAdvanceAttempts)
}
