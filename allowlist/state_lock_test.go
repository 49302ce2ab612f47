package allowlist

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// holdStateLock takes the state file's flock through a file descriptor of
// its own, as another gateway process on the host would, and returns the
// function that lets go of it (also run at cleanup).
func holdStateLock(t *testing.T, path string) (release func()) {
	t.Helper()
	lock, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	released := false
	release = func() {
		if !released {
			released = true
			lock.Close() // closing the last descriptor drops the flock
		}
	}
	t.Cleanup(release)
	return release
}

// promptly is how long a cancelled Advance may take to return. The wait
// polls every few milliseconds, so this only guards against a hang.
const promptly = 5 * time.Second

// advanceAsync runs Advance in a goroutine, so that a hang fails the test
// instead of stalling it.
func advanceAsync(ctx context.Context, s StateStore, v uint64) <-chan error {
	done := make(chan error, 1)
	go func() { done <- s.Advance(ctx, succ(v)) }()
	return done
}

// TestFileStateStoreAdvanceHonoursContext: while another descriptor holds
// the file lock, Advance returns its context's error as soon as the
// context ends (deadline or cancel), records nothing, and succeeds once
// the lock is free again.
func TestFileStateStoreAdvanceHonoursContext(t *testing.T) {
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}, context.DeadlineExceeded},
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
		{"already cancelled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			s := NewFileStateStore(path)
			release := holdStateLock(t, path)

			ctx, cancel := tt.ctx()
			defer cancel()
			select {
			case err := <-advanceAsync(ctx, s, 1):
				if !errors.Is(err, tt.want) {
					t.Errorf("Advance while the lock is held = %v, want %v", err, tt.want)
				}
			case <-time.After(promptly):
				release() // lets the stuck Advance finish
				t.Fatalf("Advance while the lock is held did not return within %v of its context ending", promptly)
			}
			if st, err := s.Load(context.Background()); err != nil || st.Version != 0 {
				t.Errorf("Load after the refused Advance = %v, %v; want version 0", st, err)
			}

			release()
			if err := s.Advance(context.Background(), succ(1)); err != nil {
				t.Fatalf("Advance once the lock is free = %v", err)
			}
			if st, err := s.Load(context.Background()); err != nil || st.Version != 1 {
				t.Errorf("Load = %v, %v; want version 1", st, err)
			}
		})
	}
}

// TestFileStateStoreWaitsInProcessHonourContext: an Advance stuck behind
// another process's lock holds this process's turn; a second Advance or
// a Load on the same store waiting for that turn gives up with its own
// context too.
func TestFileStateStoreWaitsInProcessHonourContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := NewFileStateStore(path)
	release := holdStateLock(t, path)

	first, cancelFirst := context.WithCancel(context.Background())
	defer cancelFirst()
	stuck := advanceAsync(first, s, 1)
	// Let the first Advance take the turn and start waiting on the lock.
	deadline := time.Now().Add(promptly)
	for len(s.turn) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first Advance never took its turn")
		}
		time.Sleep(time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	select {
	case err := <-advanceAsync(ctx, s, 2):
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("second Advance = %v, want %v", err, context.DeadlineExceeded)
		}
	case <-time.After(promptly):
		release()
		t.Fatalf("second Advance did not return within %v of its deadline", promptly)
	}
	lctx, lcancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer lcancel()
	if _, err := s.Load(lctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Load while an Advance holds the turn = %v, want %v", err, context.DeadlineExceeded)
	}

	// The first Advance gets the lock once it is free.
	release()
	select {
	case err := <-stuck:
		if err != nil {
			t.Errorf("first Advance after the lock was freed = %v", err)
		}
	case <-time.After(promptly):
		t.Fatal("first Advance never got the freed lock")
	}
}
