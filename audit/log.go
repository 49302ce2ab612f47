package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Sink stores records. Write receives a batch of complete records
// (read-only), consecutive in one chain and in chain order, each with its
// stored form: a JSON object without a trailing newline, which is what the
// sink must store, byte for byte. Write returns nil only once every record
// of the batch is durable in the sink's terms (see each sink's
// documentation); on an error the Log treats the whole batch as possibly
// partly written. Write must not keep batch after it returns (the Log
// reuses it); the records and lines it points to are never reused.
type Sink interface {
	Write(ctx context.Context, batch []Entry) error
}

// Entry is one sealed record and its stored line.
type Entry struct {
	Rec  *Record
	Line []byte
}

// ErrUnavailable is wrapped by Append's errors when a record could not be
// made durable in every sink. The forward must be refused.
var ErrUnavailable = errors.New("audit log unavailable")

// Options configures a Log.
type Options struct {
	// Sinks receive every record, in the order listed. At least one is
	// required. Append succeeds only if every sink stored the record.
	Sinks []Sink
	// Now is the clock for Record.Time; nil means time.Now.
	Now func() time.Time
	// Logger receives chain starts and ends (chain id, seq, hash: never
	// record contents); nil discards.
	Logger *slog.Logger
	// Mirror, when set, is a second copy of the log (the Redis stream)
	// that the Log keeps equal to its primary sink. Sinks must then hold
	// exactly one sink, a *FileSink: the primary. A group is written to
	// the file first and to the mirror only once the file holds it, so the
	// mirror never holds a record the file lacks.
	//
	// When a mirror write fails, the file's chain goes on and the mirror
	// is behind. Until Reconcile has copied every record it lacks, intent
	// records are refused without being written (ErrUnavailable and
	// ErrMirrorBehind): a card leaves only with its intent in both copies.
	// Records of what already happened (results, denials, canary uses) are
	// accepted once the file holds them, and Reconcile copies them to the
	// mirror, so that both end with the same records. A lag survives a
	// restart: it is kept in a marker file next to the primary
	// (FILE.mirror-lag.CHAIN) until reconciled.
	Mirror Mirror
	// SyncDelay bounds how long a record appended with AppendWritten may
	// stay written but not yet fsynced, when no other group's fsync covers
	// it sooner. 0 means DefaultSyncDelay.
	SyncDelay time.Duration
}

// DefaultSyncDelay is Options.SyncDelay's default: long enough that, under
// a steady stream of forwards, the next intent's fsync nearly always
// covers a result written before it (one fsync per forward instead of
// two), short enough that the window in which a machine crash can take
// back an answered forward's result record stays a few milliseconds.
const DefaultSyncDelay = 5 * time.Millisecond

// Log appends records to a hash chain and writes each to every sink. It is
// safe for concurrent use; appends are serialized so that the chain is a
// single line.
//
// Appends that arrive while a write is in flight are committed together
// in the next write (group commit): one write and one fsync per file, one
// script call per Redis stream, for the whole group. Each Append still
// returns only once its own record is durable, so the durability promise is
// the same as one write per record; throughput grows with concurrency
// instead of stopping at one fsync per record.
//
// A Log writes one chain at a time. The first chain starts at New; after
// any failed write the chain is closed and the next Append starts a new
// one (new id, seq 1). That way no sink ever holds a chain with a hole or
// a duplicate made by the writer itself: a sink that missed the last
// record of a closed chain simply holds a shorter chain, and a sink that
// may or may not have stored it (a timeout) is never asked twice.
type Log struct {
	sinks []Sink
	now   func() time.Time
	log   *slog.Logger

	// syncDelay is Options.SyncDelay; syncArmed (under syncMu) is set
	// while a timer is due to fsync what AppendWritten left unsynced.
	syncDelay time.Duration
	syncMu    sync.Mutex
	syncArmed bool

	// qmu guards the queue of appends waiting for the next group write;
	// busy, which is true while some Append leads the writing; and spare,
	// an empty queue the leader hands back for reuse.
	qmu   sync.Mutex
	queue []*waiter
	spare []*waiter
	busy  bool

	mu    sync.Mutex
	chain string  // empty: start a new chain on the next Append
	seq   uint64  // seq of the last record appended to chain
	last  string  // hash of that record; zeroHash before the first
	batch []Entry // the group being written, reused between groups
	ends  []int   // where each line of the group ends in its buffer

	// With a mirror (see Options.Mirror), also under mu.
	primary     *FileSink
	mirror      Mirror
	lags        map[string]*lag // chains whose records the mirror may lack
	mirrorErr   error           // why the mirror fell behind, or failed to catch up
	primaryOnly uint64          // groups written to the file and not the mirror
	chainStart  int64           // file offset at or before the chain's first record; -1 before it
}

// waiter is one Append waiting for its record to be written. The Append
// that owns it arms done (Add(1)) before each wait; whoever answers sets
// rec, err or lead and then calls done.Done, and touches the waiter no
// more. It is answered once per wait: with a result, or with lead (no
// result yet: this Append now leads the writing, and waits again for its
// own result).
type waiter struct {
	ctx     context.Context
	rec     Record
	written bool // AppendWritten: answered once written, before the fsync
	err     error
	lead    bool
	done    sync.WaitGroup
}

// New returns a Log writing to o.Sinks. It starts the first chain.
func New(o Options) (*Log, error) {
	if len(o.Sinks) == 0 {
		return nil, errors.New("audit: new log: no sinks")
	}
	for i, s := range o.Sinks {
		if s == nil {
			return nil, fmt.Errorf("audit: new log: sink %d is nil", i)
		}
	}
	l := &Log{
		sinks:     append([]Sink(nil), o.Sinks...),
		now:       o.Now,
		log:       o.Logger,
		syncDelay: o.SyncDelay,
	}
	if l.syncDelay <= 0 {
		l.syncDelay = DefaultSyncDelay
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	for i, s := range o.Sinks {
		if fs, ok := s.(*FileSink); ok && fs.torn {
			// Said once per start, where the operator looks: the line
			// stays in the file, and verify reports it as malformed.
			l.log.Warn("audit file's last line was incomplete (a crash during a write or before its fsync); it was ended with a newline and is kept: `cardgate audit verify` reports it as malformed, and a new chain starts",
				slog.Int("sink", i), slog.String("file", fs.path))
		}
	}
	if o.Mirror != nil {
		fs, ok := o.Sinks[0].(*FileSink)
		if len(o.Sinks) != 1 || !ok {
			return nil, errors.New("audit: new log: a mirror needs exactly one other sink, a file sink")
		}
		l.primary, l.mirror, l.lags = fs, o.Mirror, map[string]*lag{}
		lags, err := readMarkers(fs.path)
		if err != nil {
			return nil, fmt.Errorf("audit: new log: mirror lag markers: %w", err)
		}
		for _, lg := range lags {
			l.lags[lg.chain] = lg
			l.log.Warn("audit mirror lag left by an earlier run; intents are refused until it is reconciled",
				slog.String("chain", lg.chain), slog.Int64("from_offset", lg.from))
		}
		if len(lags) > 0 {
			l.mirrorErr = errors.New("a lag left by an earlier run is not reconciled yet")
		}
	}
	l.startChain()
	return l, nil
}

// startChain begins a fresh chain. Called with mu held (or before l is
// shared).
func (l *Log) startChain() {
	// 96 random bits: replicas sharing a stream pick ids independently, and
	// at this size a collision is not a practical concern. crypto/rand.Read
	// never returns an error (it crashes the program instead).
	var b [12]byte
	_, _ = rand.Read(b[:])
	l.chain = hex.EncodeToString(b[:])
	l.seq = 0
	l.last = zeroHash
	l.chainStart = -1
	l.log.Info("audit chain started", slog.String("chain", l.chain))
}

// Append validates rec, links it into the chain, writes it to every sink
// and returns it with Chain, Seq, Prev, Time and Hash filled in. It returns
// only after every sink has stored the record durably; on any error the
// record must be treated as not written (ErrInvalid: it was written
// nowhere; ErrUnavailable: it may be in some sinks) and the forward
// refused.
//
// If ctx is already done when Append is called, nothing is written. An
// intent whose ctx ends while it waits behind an earlier group is not
// written either (its card will not be sent); any other record, once
// queued, is written, since it tells what already happened. The sinks
// bound each write with their own deadlines. Write a result record (the
// card was sent) with a context the caller's disconnect cannot cancel,
// such as context.WithoutCancel(ctx) plus a deadline. The chain fields of
// rec must be zero: they belong to the Log. Without a mirror the sinks are
// written concurrently; with one, the file first (see Options.Mirror).
func (l *Log) Append(ctx context.Context, rec Record) (Record, error) {
	return l.append(ctx, rec, false)
}

// AppendWritten is Append for a record of what already happened (a
// forward's result, a refusal): it returns once the record is sealed into
// the chain and written to every sink, and a file sink's fsync follows
// behind the answer, by group commit: with the next group that syncs (the
// next intent's, usually), or SyncDelay after the write at the latest. A
// crash of the process after AppendWritten returned keeps the record (it
// is in the kernel's page cache); a crash of the machine within that
// window may lose it, and with it only the record of an outcome, never of
// a card leaving: the intent was durable before the send. An intent is
// refused (ErrInvalid): it must be durable before its card is sent.
//
// If the deferred fsync fails, the file sink stops (as after any failed
// fsync) and the chain is closed, so every later Append fails and forwards
// are refused; the failure is logged at error level, naming the first
// answered record (chain and seq) it may have lost. So is a later group's
// failed fsync; after a later group's failed write the sink still fsyncs
// the answered records before stopping.
//
// Groups that go to a mirror, and file sinks that keep a Merkle tree, are
// synced before AppendWritten returns, as with Append.
func (l *Log) AppendWritten(ctx context.Context, rec Record) (Record, error) {
	if rec.Kind == KindIntent {
		return Record{}, fmt.Errorf("audit: an intent must be durable before its send; use Append: %w", ErrInvalid)
	}
	return l.append(ctx, rec, true)
}

// append is Append, or AppendWritten when written is set.
func (l *Log) append(ctx context.Context, rec Record, written bool) (Record, error) {
	if rec.Chain != "" || rec.Seq != 0 || rec.Prev != "" || !rec.Time.IsZero() || rec.Hash != "" {
		return Record{}, fmt.Errorf("audit: chain, seq, prev, time and hash are set by Append: %w", ErrInvalid)
	}
	if err := rec.validateContent(); err != nil {
		return Record{}, err
	}
	if err := ctx.Err(); err != nil {
		return Record{}, fmt.Errorf("audit: append: %w", err)
	}

	w := &waiter{ctx: ctx, rec: rec, written: written}
	w.done.Add(1)
	l.qmu.Lock()
	l.queue = append(l.queue, w)
	lead := !l.busy
	l.busy = true
	l.qmu.Unlock()
	if !lead {
		w.done.Wait()
		if !w.lead {
			return w.result()
		}
		// Nobody answers w again before this Append writes its group.
		w.lead = false
		w.done.Add(1)
	}
	l.lead()
	w.done.Wait()
	return w.result()
}

// result is what Append returns once w was answered.
func (w *waiter) result() (Record, error) {
	if w.err != nil {
		return Record{}, w.err
	}
	return w.rec, nil
}

// answer gives w its result and wakes its Append. The caller must not touch
// w afterwards.
func (w *waiter) answer(err error) {
	w.err = err
	w.done.Done()
}

// lead writes every queued append as one group, then hands the lead to the
// first append that queued meanwhile, so no caller keeps writing other
// callers' groups for long after its own record is durable.
func (l *Log) lead() {
	l.qmu.Lock()
	group := l.queue
	l.queue, l.spare = l.spare[:0], nil
	l.qmu.Unlock()

	l.writeGroup(group)
	clear(group) // every waiter was answered: drop them

	l.qmu.Lock()
	// Only the leader takes or returns spare, and there is one leader.
	l.spare = group[:0]
	if len(l.queue) == 0 {
		l.busy = false
		l.qmu.Unlock()
		return
	}
	next := l.queue[0]
	l.qmu.Unlock()
	next.lead = true
	next.done.Done()
}

// writeGroup seals the group's records into the chain, writes them to every
// sink and answers each waiter.
func (l *Log) writeGroup(group []*waiter) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// The group's lines share one buffer, allocated per group and never
	// reused: a sink may still hold lines after its Write returned (the
	// Redis sink after a timeout).
	size := 0
	for _, w := range group {
		size += w.rec.storedLenBound()
	}
	buf := make([]byte, 0, size)
	ends := l.ends[:0]
	live := group[:0] // filtered in place
	seq, last := l.seq, l.last
	behind := l.mirror != nil && len(l.lags) > 0
	for _, w := range group {
		if behind && w.rec.Kind == KindIntent {
			// Refused before it is sealed or written: the mirror must
			// first hold everything the file holds.
			w.answer(fmt.Errorf("audit: append: %w: %w: %w", ErrUnavailable, ErrMirrorBehind, l.mirrorErr))
			continue
		}
		// An intent whose caller is gone (or whose deadline passed while
		// it waited behind a slow group) is not written: its card will not
		// be sent. Any other record tells what already happened (a result
		// after the card was sent, a refusal), and is written even if its
		// deadline passed in the queue, or it would be lost; the sinks
		// bound the write with their own deadlines. A context already done
		// when Append is called writes nothing (see Append).
		if err := w.ctx.Err(); err != nil && w.rec.Kind == KindIntent {
			w.answer(fmt.Errorf("audit: append: %w", err))
			continue
		}
		if l.chain == "" {
			l.startChain()
			seq, last = l.seq, l.last
		}
		rec := w.rec
		rec.Chain = l.chain
		rec.Seq = seq + 1
		rec.Prev = last
		// UTC, and Round(0) drops the monotonic reading, so the value
		// encodes and compares exactly as it will after being read back.
		rec.Time = l.now().UTC().Round(0)
		var hash [64]byte
		var err error
		buf, hash, err = rec.appendSealed(buf)
		if err != nil {
			w.answer(err)
			continue
		}
		rec.Hash = string(hash[:])
		w.rec = rec
		seq, last = rec.Seq, rec.Hash
		live = append(live, w)
		ends = append(ends, len(buf))
	}
	l.ends = ends
	if len(live) == 0 {
		return
	}
	batch := l.batch[:0]
	start := 0
	for i, w := range live {
		batch = append(batch, Entry{Rec: &w.rec, Line: buf[start:ends[i]:ends[i]]})
		start = ends[i]
	}
	l.batch = batch
	defer clear(batch) // keep neither records nor lines alive
	// The group's callers share one write: none of them may cancel it for
	// the others. The sinks bound it with their own deadlines.
	ctx := context.WithoutCancel(live[0].ctx)
	if l.mirror != nil {
		l.writeMirrored(ctx, live, batch, behind, seq, last)
		return
	}
	// The fsync waits only if every record of the group may wait: one
	// intent in the group, and the group is synced before anyone is
	// answered.
	deferSync := true
	for _, w := range live {
		deferSync = deferSync && w.written
	}
	deferred, err := l.writeAll(ctx, batch, deferSync)
	if err != nil {
		// Close the chain: the records may be in some sinks and not in
		// others. Continuing the chain would leave a hole in the sinks
		// that missed them; a new chain leaves each sink with a complete
		// prefix of this one.
		l.closeChain(live, err)
		return
	}
	l.seq, l.last = seq, last
	if deferred {
		l.armSync()
	}
	for _, w := range live {
		w.answer(nil)
	}
}

// unsyncedWriter is a sink that can write a group now and fsync it later
// (*FileSink): see AppendWritten.
type unsyncedWriter interface {
	writeUnsynced(batch []Entry) (deferred bool, err error)
	// syncPending fsyncs what writeUnsynced left unsynced once the oldest
	// of it was written maxAge ago; before that it returns how long is
	// left, and an fsync of a later group may make it unneeded.
	syncPending(maxAge time.Duration) (wait time.Duration, err error)
}

// armSync makes sure a timer will fsync what a deferred group left
// unsynced, SyncDelay from now at the latest.
func (l *Log) armSync() { l.armSyncAfter(l.syncDelay, false) }

// armSyncAfter starts a timer that runs syncDeferred after d, unless one
// is armed already and always is false.
func (l *Log) armSyncAfter(d time.Duration, always bool) {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.syncArmed && !always {
		return
	}
	l.syncArmed = true
	time.AfterFunc(d, l.syncDeferred)
}

// syncDeferred fsyncs every sink whose oldest unsynced record was written
// SyncDelay ago. A sink whose unsynced records are younger (an intent's
// fsync covered the older ones meanwhile, as it does under steady load)
// is looked at again when its oldest is due, so a record waits at most
// SyncDelay for its fsync without a timer's fsync every SyncDelay. A
// failure stops the sink (its later writes fail) and closes the chain:
// records already answered may not be durable, and no forward goes on
// until the log is reopened.
func (l *Log) syncDeferred() {
	l.syncMu.Lock()
	l.syncArmed = false
	l.syncMu.Unlock()
	var next time.Duration
	for i, s := range l.sinks {
		u, ok := s.(unsyncedWriter)
		if !ok {
			continue
		}
		wait, err := u.syncPending(l.syncDelay)
		if err != nil {
			l.mu.Lock()
			l.log.Error("audit records written but not made durable: a deferred fsync failed; the chain is closed and every later append fails",
				slog.String("chain", l.chain), slog.Uint64("last_seq", l.seq), slog.Int("sink", i),
				slog.String("error", err.Error()))
			l.chain = ""
			l.mu.Unlock()
			continue
		}
		if wait > 0 && (next == 0 || wait < next) {
			next = wait
		}
	}
	if next > 0 {
		// Armed even if a write armed a timer meanwhile: that one may
		// fire later than the oldest record is due.
		l.armSyncAfter(next, true)
	}
}

// closeChain ends the chain after a failed write of live's records, which
// fail. Called with mu held.
func (l *Log) closeChain(live []*waiter, err error) {
	first, lastRec := live[0].rec, live[len(live)-1].rec
	l.log.Error("audit chain closed after a failed write",
		slog.String("chain", l.chain),
		slog.Uint64("last_seq", l.seq),
		slog.String("last_hash", l.last),
		slog.Uint64("failed_from_seq", first.Seq), // may be in some sinks
		slog.Uint64("failed_to_seq", lastRec.Seq),
		slog.String("error", err.Error()))
	l.chain = ""
	for _, w := range live {
		w.answer(fmt.Errorf("audit: append seq %d of chain %s: %w: %w", w.rec.Seq, w.rec.Chain, ErrUnavailable, err))
	}
}

// writeMirrored writes a group to the primary file, then (unless it is
// behind) to the mirror, and answers live. Called with mu held.
func (l *Log) writeMirrored(ctx context.Context, live []*waiter, batch []Entry, behind bool, seq uint64, last string) {
	from := l.primary.offset()
	if l.chainStart < 0 {
		l.chainStart = from
	}
	if _, err := writeSink(ctx, 0, l.primary, batch, false); err != nil {
		// The mirror was not written: it holds a prefix of the chain.
		l.closeChain(live, err)
		return
	}
	l.seq, l.last = seq, last
	cause := l.mirrorErr
	if !behind {
		if _, cause = writeSink(ctx, 1, l.mirror, batch, false); cause == nil {
			for _, w := range live {
				w.answer(nil)
			}
			return
		}
	}
	// The file holds the group and the mirror may not (a timed-out write
	// may still land: Reconcile reads the mirror's head before copying).
	l.primaryOnly++
	l.markBehind(l.chain, from, l.chainStart, cause)
	for _, w := range live {
		if w.rec.Kind == KindIntent {
			w.answer(fmt.Errorf("audit: append seq %d of chain %s: %w: %w: %w", w.rec.Seq, w.rec.Chain, ErrUnavailable, ErrMirrorBehind, cause))
			continue
		}
		// Durable in the file, and copied to the mirror by Reconcile.
		w.answer(nil)
	}
}

// writeAll writes to every sink at once, so that an append costs the
// slowest sink's latency rather than the sum, and returns when all have
// answered. The errors of all failed sinks are joined. With deferSync, a
// sink that can leaves the fsync for later; deferred reports whether one
// did.
func (l *Log) writeAll(ctx context.Context, batch []Entry, deferSync bool) (deferred bool, err error) {
	if len(l.sinks) == 1 {
		return writeSink(ctx, 0, l.sinks[0], batch, deferSync)
	}
	errs := make([]error, len(l.sinks))
	defs := make([]bool, len(l.sinks))
	var wg sync.WaitGroup
	for i, s := range l.sinks {
		wg.Go(func() { defs[i], errs[i] = writeSink(ctx, i, s, batch, deferSync) })
	}
	wg.Wait()
	for _, d := range defs {
		deferred = deferred || d
	}
	return deferred, errors.Join(errs...)
}

// writeSink writes batch to sink i. A panicking sink is a failed write: it
// closes the chain and fails the group's appends (so their forwards are
// refused), instead of leaving the log busy forever or taking the process
// down from a sink goroutine.
//
// With deferSync, a sink that can (unsyncedWriter) writes without the
// fsync, and deferred reports whether it did.
func writeSink(ctx context.Context, i int, s Sink, batch []Entry, deferSync bool) (deferred bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			deferred, err = false, fmt.Errorf("sink %d: panic: %v", i, p)
		}
	}()
	if u, ok := s.(unsyncedWriter); ok && deferSync {
		deferred, err = u.writeUnsynced(batch)
	} else {
		err = s.Write(ctx, batch)
	}
	if err != nil {
		return false, fmt.Errorf("sink %d: %w", i, err)
	}
	return deferred, nil
}

// Head returns the current chain, and the seq and hash of its last record
// (0 and 64 zeros before the first). Publishing it somewhere the writer
// cannot edit afterwards gives Verify an anchor against truncation. All
// three are empty between a failed write and the next Append.
func (l *Log) Head() (chain string, seq uint64, hash string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.chain == "" {
		return "", 0, ""
	}
	return l.chain, l.seq, l.last
}
