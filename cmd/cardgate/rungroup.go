package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// runGroup runs the gateway's background loops (allowlist and credentials
// watchers, kill switch and canary polls, the audit reconciler and head
// logger, the caller CRL poll) as named actors, in the manner of
// oklog/run: an actor that ends on its own is reported, so that the
// gateway stops rather than run without it, and Stop interrupts every
// actor and waits for each to return.
//
// It is written here rather than taken from github.com/oklog/run because
// the gateway's shutdown has an order oklog/run's Group does not express:
// the loops must outlive the HTTP drain (a forward still in flight needs a
// fresh kill switch and canary snapshot), the final audit head is logged
// between the drain and the loops' stop, and only then are the loops
// stopped and awaited, before the stores and the audit sink close. A
// Group interrupts every actor as soon as the first returns.
type runGroup struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ended  chan string // names of actors that returned before Stop, buffered

	mu      sync.Mutex
	running map[string]int // actors still running, by name
	stopped bool
	gaveUp  error // set when a Stop's wait ran out
}

// newRunGroup returns a group whose actors run until Stop. Their context
// is derived from parent without its cancellation: SIGTERM must not stop
// them before the drain is over.
func newRunGroup(parent context.Context) *runGroup {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	return &runGroup{ctx: ctx, cancel: cancel, ended: make(chan string, 16), running: map[string]int{}}
}

// Go starts actor. It must return once its context is done; every call it
// makes must be bounded by that context or by a timeout of its own. After
// Stop, Go starts nothing.
func (r *runGroup) Go(name string, actor func(ctx context.Context)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	r.running[name]++
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		actor(r.ctx)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.running[name]--; r.running[name] == 0 {
			delete(r.running, name)
		}
		if !r.stopped {
			select {
			case r.ended <- name:
			default: // one report is enough to stop the gateway
			}
		}
	}()
}

// Ended receives the name of an actor that returned before Stop: a loop
// the gateway needs has stopped, and the gateway should shut down.
func (r *runGroup) Ended() <-chan string { return r.ended }

// errLoopsStuck: some actors had not returned when Stop's wait ran out.
var errLoopsStuck = errors.New("background loops still running")

// Stop cancels every actor's context and waits for each to return, for at
// most timeout. It returns an error naming the actors still running after
// that; the caller then closes what they use regardless, since a shutdown
// must end. A nil group has nothing to stop; a second Stop waits again,
// unless the first gave up, and then it returns the same error at once.
func (r *runGroup) Stop(timeout time.Duration) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	r.stopped = true
	gaveUp := r.gaveUp
	r.mu.Unlock()
	if gaveUp != nil {
		return gaveUp
	}
	r.cancel()
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.running))
	for name := range r.running {
		names = append(names, name)
	}
	slices.Sort(names)
	r.gaveUp = fmt.Errorf("%w after %v: %s", errLoopsStuck, timeout, strings.Join(names, ", "))
	return r.gaveUp
}

// loopStopTimeout bounds the wait for the background loops at shutdown.
// Each loop's calls are bounded by their context or their own timeouts
// (the longest is the audit reconciliation's), so they return well within
// it; it exists so that a wedged call cannot hold the shutdown forever.
const loopStopTimeout = auditReconcileTimeout + 5*time.Second
