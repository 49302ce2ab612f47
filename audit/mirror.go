package audit

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cardgate/cardgate/internal/fileread"
)

// Mirror is a second copy of the log, such as the Redis stream, that a Log
// keeps equal to its primary sink (the file). See Options.Mirror.
type Mirror interface {
	Sink
	// Head returns the seq and hash of chain's last record in the mirror,
	// or 0 and "" when it holds none of the chain.
	Head(ctx context.Context, chain string) (seq uint64, hash string, err error)
}

// ErrMirrorBehind is wrapped (with ErrUnavailable) by the errors of intent
// records refused because the mirror lacks records the primary holds.
var ErrMirrorBehind = errors.New("the audit mirror lacks records the audit file holds")

// lag is one chain whose records the mirror may lack: every record of the
// chain before file offset from is in the mirror. start is an offset at or
// before the chain's first record, where a replay begins if the mirror
// turns out to have lost records before from too (a Redis restarted
// without its data).
type lag struct {
	chain       string
	from, start int64
}

// markerPrefix names, next to the audit file, the marker of a chain the
// mirror lags on: FILE.mirror-lag.CHAIN holds "from start". The markers
// make a lag survive a restart: a new Log replays what the old one could
// not before it accepts an intent.
const markerPrefix = ".mirror-lag."

// maxMarkerBytes bounds a marker file: two decimal offsets and a space.
const maxMarkerBytes = 64

// replayBatch is how many records one mirror write of a replay carries.
const replayBatch = 256

// markBehind records that the mirror may lack chain's records from file
// offset from on. Called with l.mu held.
func (l *Log) markBehind(chain string, from, start int64, cause error) {
	if cause == nil {
		cause = ErrMirrorBehind
	}
	l.mirrorErr = cause
	if _, ok := l.lags[chain]; ok {
		return
	}
	lg := &lag{chain: chain, from: from, start: start}
	l.lags[chain] = lg
	l.log.Error("audit mirror is behind the audit file; intents (and so forwards) are refused until it catches up",
		slog.String("chain", chain), slog.Int64("from_offset", from), slog.String("error", cause.Error()))
	if err := writeMarker(l.primary.path, lg); err != nil {
		// The lag is still known to this process, which replays it; only a
		// restart before then would forget it.
		l.log.Error("audit mirror lag marker not written", slog.String("chain", chain), slog.String("error", err.Error()))
	}
}

// MirrorErr returns nil when the mirror holds every record of the primary
// (or there is no mirror), else why not: the forward path refuses intents
// until then, and a readiness check should fail.
func (l *Log) MirrorErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lags) == 0 {
		return nil
	}
	return fmt.Errorf("audit: %w (%d chains): %w", ErrMirrorBehind, len(l.lags), l.mirrorErr)
}

// Reconcile copies into the mirror every record of the primary it lacks,
// by chain and seq, and returns nil once the two agree (at once when they
// already do, or when there is no mirror). Call it periodically: until it
// succeeds, intents are refused. Each record copied is checked first
// (hash, canonical form, link to its predecessor), so a record edited in
// the file is never copied; a mirror whose chain forked from the file's
// cannot be reconciled, and stays reported.
//
// The replay reads the file and writes the mirror without holding up
// appends; results and other records that keep arriving meanwhile go to
// the file, and the next pass copies them.
func (l *Log) Reconcile(ctx context.Context) error {
	if l.mirror == nil {
		return nil
	}
	for pass := 0; ; pass++ {
		l.mu.Lock()
		if len(l.lags) == 0 {
			l.mu.Unlock()
			return nil
		}
		lags := make([]lag, 0, len(l.lags))
		for _, lg := range l.lags {
			lags = append(lags, *lg)
		}
		gen, end := l.primaryOnly, l.primary.offset()
		l.mu.Unlock()

		slices.SortFunc(lags, func(a, b lag) int { return cmp.Compare(a.from, b.from) })
		copied := 0
		var err error
		for _, lg := range lags {
			var n int
			if n, err = l.replay(ctx, lg); err != nil {
				break
			}
			copied += n
		}

		l.mu.Lock()
		if err != nil {
			l.mirrorErr = err
			l.mu.Unlock()
			return fmt.Errorf("audit: %w: %w", ErrMirrorBehind, err)
		}
		if l.primaryOnly == gen {
			// Nothing reached the file alone while the replay ran: the
			// mirror now holds everything the file holds.
			for _, lg := range lags {
				delete(l.lags, lg.chain)
				removeMarker(l.primary.path, lg.chain)
			}
			l.mirrorErr = nil
			l.mu.Unlock()
			l.log.Info("audit mirror caught up with the audit file", slog.Int("chains", len(lags)), slog.Int("records_copied", copied))
			return nil
		}
		// More records went to the file alone meanwhile; everything before
		// end is in the mirror now.
		for _, lg := range lags {
			if cur := l.lags[lg.chain]; cur != nil && cur.from < end {
				cur.from = end
			}
		}
		l.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("audit: %w: %w", ErrMirrorBehind, err)
		}
	}
}

// replay copies the records of lg.chain that the mirror lacks from the
// primary file into the mirror, and returns how many it copied.
func (l *Log) replay(ctx context.Context, lg lag) (int, error) {
	seq, hash, err := l.mirror.Head(ctx, lg.chain)
	if err != nil {
		return 0, err
	}
	n, first, err := l.copyFrom(ctx, lg.chain, lg.from, seq, hash)
	if err == nil && first > seq+1 && lg.from > lg.start {
		// The mirror lost records the scan did not reach back to: copy
		// the chain from its start.
		l.log.Warn("audit mirror lost records of a chain; replaying the chain from its start",
			slog.String("chain", lg.chain), slog.Uint64("mirror_seq", seq), slog.Uint64("file_seq", first))
		var m int
		m, first, err = l.copyFrom(ctx, lg.chain, lg.start, seq, hash)
		n += m
	}
	if err == nil && first > seq+1 {
		err = fmt.Errorf("chain %s: the mirror ends at seq %d and the file holds the chain only from seq %d", lg.chain, seq, first)
	}
	return n, err
}

// copyFrom reads the primary file from offset and copies chain's records
// after seq (whose hash is hash) to the mirror. first is the seq of the
// first record after seq the file holds (0: none; more than seq+1: a gap
// the scan cannot fill).
func (l *Log) copyFrom(ctx context.Context, chain string, offset int64, seq uint64, hash string) (n int, first uint64, err error) {
	f, err := os.Open(l.primary.path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0, 0, err
	}
	// A record may start mid-line at an offset that is a lower bound:
	// the first (partial) line is then skipped as not a record.
	br := bufio.NewReaderSize(f, 64<<10)
	prev := Record{Seq: seq, Hash: hash}
	var batch []Entry
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := l.mirror.Write(ctx, batch); err != nil {
			return err
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	chainField := []byte(`"chain":"` + chain + `"`)
	for {
		line, complete, rerr := readLine(br)
		if rerr != nil && rerr != io.EOF {
			return n, first, rerr
		}
		if complete && rerr == nil && bytes.Contains(line, chainField) {
			rec, ok := decodeStored(line)
			if ok && rec.Chain == chain && rec.Seq > prev.Seq {
				if first == 0 {
					first = rec.Seq
					if first > seq+1 {
						return n, first, nil // a gap: the caller decides
					}
				}
				if rec.Seq != prev.Seq+1 || (prev.Seq > 0 && rec.Prev != prev.Hash) {
					return n, first, fmt.Errorf("chain %s: the file's record seq %d does not follow seq %d; not copied", chain, rec.Seq, prev.Seq)
				}
				if err := rec.checkStored(line); err != nil {
					return n, first, fmt.Errorf("chain %s seq %d in the file: %w; not copied", chain, rec.Seq, err)
				}
				batch = append(batch, Entry{Rec: rec, Line: slices.Clone(line)})
				prev = *rec
				if len(batch) == replayBatch {
					if err := flush(); err != nil {
						return n, first, err
					}
				}
			}
		}
		if rerr == io.EOF {
			break
		}
	}
	return n, first, flush()
}

// decodeStored decodes a stored line's record, or reports false.
func decodeStored(line []byte) (*Record, bool) {
	var rec Record
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil || rec.validateChainFields() != nil {
		return nil, false
	}
	return &rec, true
}

// checkStored checks that line is exactly rec's stored form with a hash
// that matches its contents.
func (r *Record) checkStored(line []byte) error {
	canon, actual, err := r.seal()
	switch {
	case err != nil:
		return err
	case actual != r.Hash:
		return errors.New("hash does not match the record's contents")
	case !bytes.Equal(storedLine(canon, r.Hash), line):
		return errors.New("not in canonical form")
	}
	return nil
}

func markerPath(primary, chain string) string { return primary + markerPrefix + chain }

// writeMarker records lg next to the primary file, durably.
func writeMarker(primary string, lg *lag) error {
	p := markerPath(primary, lg.chain)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, werr := fmt.Fprintf(f, "%d %d\n", lg.from, lg.start)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(p))
	if err != nil {
		return err
	}
	defer d.Close()
	return syncDir(d)
}

// syncDir makes a new directory entry durable. A variable so that a test
// can see the call: a skipped directory fsync shows only after a power cut.
var syncDir = func(d *os.File) error { return d.Sync() }

func removeMarker(primary, chain string) {
	_ = os.Remove(markerPath(primary, chain))
}

// readMarkers returns the lags recorded next to the primary file by
// earlier Logs (a restart while the mirror lagged).
func readMarkers(primary string) ([]*lag, error) {
	paths, err := filepath.Glob(globEscape(primary) + markerPrefix + "*")
	if err != nil {
		return nil, err
	}
	var out []*lag
	for _, p := range paths {
		chain := strings.TrimPrefix(p, primary+markerPrefix)
		if !reChain.MatchString(chain) {
			continue
		}
		// Through fileread: a FIFO or device planted at a marker's name
		// would otherwise hang the start; a marker is a few dozen bytes.
		raw, err := fileread.Read(context.Background(), p, maxMarkerBytes)
		if err != nil {
			return nil, err
		}
		fromText, startText, ok := strings.Cut(strings.TrimSpace(string(raw)), " ")
		from, err1 := strconv.ParseInt(fromText, 10, 64)
		start, err2 := strconv.ParseInt(startText, 10, 64)
		if !ok || err1 != nil || err2 != nil || from < 0 || start < 0 || start > from {
			// Unreadable: replay the chain from the file's start, which
			// is slow but complete.
			from, start = 0, 0
		}
		out = append(out, &lag{chain: chain, from: from, start: start})
	}
	return out, nil
}

// globEscape escapes the glob metacharacters of a literal path.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
