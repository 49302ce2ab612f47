package vaultclient

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// getBatcher sends the GETs of concurrent callers to Redis as one
// pipeline: one write and one read for the group, on one connection,
// instead of one round trip each (issue 18: at 32 concurrent forwards the
// card reads' round trips cost more CPU, in the gateway and in Redis, than
// any other step but the HTTP server). It is a group commit, as the audit
// log's: a GET that finds no pipeline in flight is sent at once, alone,
// with its caller's own context, so a lone forward waits for nothing; GETs
// that arrive while one is in flight go out together as soon as it
// returns. Nothing is cached: every call reads Redis, after it was made.
type getBatcher struct {
	c redis.UniversalClient

	mu    sync.Mutex
	queue []*getCall
	busy  bool // a goroutine is sending what is queued
}

// getCall is one caller's GET. done receives once, after val and err are
// set; the caller may have stopped waiting (its context ended).
type getCall struct {
	ctx  context.Context
	key  string
	val  []byte
	err  error
	done chan struct{}
}

// get returns the value of key (redis.Nil when there is none). It returns
// when ctx ends, whatever the pipeline it is in does.
func (b *getBatcher) get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := &getCall{ctx: ctx, key: key, done: make(chan struct{}, 1)}
	b.mu.Lock()
	lead := !b.busy
	if !lead {
		b.queue = append(b.queue, c)
	}
	b.busy = true
	b.mu.Unlock()
	if lead {
		// Nothing was in flight, so nothing was queued: this caller sends
		// its own GET alone, under its own context, and so stops waiting
		// when that ends. It never takes others' reads into a pipeline it
		// would have to wait out (bounded by their later deadlines).
		b.exec([]*getCall{c})
		b.next()
	}
	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// send sends what is queued as one pipeline, on a goroutine of its own
// (see next), and answers it.
func (b *getBatcher) send() {
	b.mu.Lock()
	batch := b.queue
	b.queue = nil
	b.mu.Unlock()

	b.exec(batch)
	b.next()
}

// next ends a send: if more was queued meanwhile, it hands the sending to
// a new goroutine, so the caller that led goes back to its forward with its
// own answer and no caller is held to send other callers' reads (each
// waits for its own answer or its context, whichever comes first).
func (b *getBatcher) next() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) == 0 {
		b.busy = false
		return
	}
	go b.send() // busy stays set: the new goroutine sends
}

// exec runs batch's GETs and answers each call.
func (b *getBatcher) exec(batch []*getCall) {
	live := batch[:0]
	for _, c := range batch {
		if err := c.ctx.Err(); err != nil {
			c.answer(nil, err) // its caller has gone: nothing to read for it
			continue
		}
		live = append(live, c)
	}
	switch len(live) {
	case 0:
		return
	case 1:
		// Alone: exactly the plain GET, under its caller's context.
		c := live[0]
		c.answer(b.c.Get(c.ctx, c.key).Bytes())
		return
	}
	ctx, cancel := batchContext(live)
	defer cancel()
	cmds := make([]*redis.StringCmd, len(live))
	// Pipelined's own error is the first command's that failed (redis.Nil
	// included); each command carries its own, read below.
	_, _ = b.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range live {
			cmds[i] = p.Get(ctx, c.key)
		}
		return nil
	})
	for i, c := range live {
		c.answer(cmds[i].Bytes())
	}
}

func (c *getCall) answer(val []byte, err error) {
	c.val, c.err = val, err
	c.done <- struct{}{}
}

// batchContext bounds a pipeline shared by several callers: none of them
// may cancel it for the others (each stops waiting on its own), and it
// ends at the latest of their deadlines, or has none if one of them has
// none (the client's own read and write timeouts still apply).
func batchContext(calls []*getCall) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, c := range calls {
		d, ok := c.ctx.Deadline()
		if !ok {
			return context.WithCancel(context.WithoutCancel(calls[0].ctx))
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(context.WithoutCancel(calls[0].ctx), latest)
}
