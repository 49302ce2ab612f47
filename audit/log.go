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

// Sink stores records. Write receives a complete record (read-only) and its
// stored form, line: a JSON object without a trailing newline, which is
// what the sink must store, byte for byte. Write returns nil only once the
// record is durable in the sink's terms (see each sink's documentation).
// The Log calls Write for one record at a time, in chain order.
type Sink interface {
	Write(ctx context.Context, rec *Record, line []byte) error
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
}

// Log appends records to a hash chain and writes each to every sink. It is
// safe for concurrent use; appends are serialized so that the chain is a
// single line.
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

	mu    sync.Mutex
	chain string // empty: start a new chain on the next Append
	seq   uint64 // seq of the last record appended to chain
	last  string // hash of that record; zeroHash before the first
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
		sinks: append([]Sink(nil), o.Sinks...),
		now:   o.Now,
		log:   o.Logger,
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
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
	l.log.Info("audit chain started", slog.String("chain", l.chain))
}

// Append validates rec, links it into the chain, writes it to every sink
// and returns it with Chain, Seq, Prev, Time and Hash filled in. It returns
// only after every sink has stored the record durably; on any error the
// record must be treated as not written (ErrInvalid: it was written
// nowhere; ErrUnavailable: it may be in some sinks) and the forward
// refused.
//
// ctx bounds the sink writes; sinks add their own deadlines too. If ctx is
// already done, nothing is written. Write a result record (the card was
// sent) with a context the caller's disconnect cannot cancel, such as
// context.WithoutCancel(ctx) plus a deadline. The chain fields of rec must
// be zero: they belong to the Log. Sinks are written concurrently.
func (l *Log) Append(ctx context.Context, rec Record) (Record, error) {
	if rec.Chain != "" || rec.Seq != 0 || rec.Prev != "" || !rec.Time.IsZero() || rec.Hash != "" {
		return Record{}, fmt.Errorf("audit: chain, seq, prev, time and hash are set by Append: %w", ErrInvalid)
	}
	if err := rec.validateContent(); err != nil {
		return Record{}, err
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	// A caller that is gone (checked after waiting for the lock) gets
	// nothing written: starting a write only to have the Redis sink
	// abandon it would close the chain for no reason. A record that must
	// be written whatever the caller does (a result after the card was
	// sent) needs a context that the caller cannot cancel.
	if err := ctx.Err(); err != nil {
		return Record{}, fmt.Errorf("audit: append: %w", err)
	}
	if l.chain == "" {
		l.startChain()
	}
	rec.Chain = l.chain
	rec.Seq = l.seq + 1
	rec.Prev = l.last
	// UTC, and Round(0) drops the monotonic reading, so the value encodes
	// and compares exactly as it will after being read back.
	rec.Time = l.now().UTC().Round(0)
	canon, hash, err := rec.seal()
	if err != nil {
		return Record{}, err
	}
	rec.Hash = hash
	line := storedLine(canon, hash)

	if err := l.writeAll(ctx, &rec, line); err != nil {
		// Close the chain: the record may be in some sinks and not in
		// others. Continuing the chain would leave a hole in the sinks
		// that missed it; a new chain leaves each sink with a complete
		// prefix of this one.
		l.log.Error("audit chain closed after a failed write",
			slog.String("chain", l.chain),
			slog.Uint64("last_seq", l.seq),
			slog.String("last_hash", l.last),
			slog.Uint64("failed_seq", rec.Seq), // may be in some sinks
			slog.String("error", err.Error()))
		l.chain = ""
		return Record{}, fmt.Errorf("audit: append seq %d of chain %s: %w: %w", rec.Seq, rec.Chain, ErrUnavailable, err)
	}
	l.seq = rec.Seq
	l.last = rec.Hash
	return rec, nil
}

// writeAll writes to every sink at once, so that an append costs the
// slowest sink's latency rather than the sum, and returns when all have
// answered. The errors of all failed sinks are joined.
func (l *Log) writeAll(ctx context.Context, rec *Record, line []byte) error {
	if len(l.sinks) == 1 {
		return sinkError(0, l.sinks[0].Write(ctx, rec, line))
	}
	errs := make([]error, len(l.sinks))
	var wg sync.WaitGroup
	for i, s := range l.sinks {
		wg.Go(func() { errs[i] = sinkError(i, s.Write(ctx, rec, line)) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func sinkError(i int, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("sink %d: %w", i, err)
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
