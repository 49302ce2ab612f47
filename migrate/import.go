package migrate

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/vaultclient"
)

// Tokenizer stores a card under a token the caller derived:
// *vaultclient.Vault.
type Tokenizer interface {
	TokenizeAs(ctx context.Context, token string, in vaultclient.CardInput) (*vaultclient.TokenInfo, error)
}

// Auditor appends audit records: *audit.Log.
type Auditor interface {
	Append(ctx context.Context, rec audit.Record) (audit.Record, error)
}

// Defaults for ImportOptions.
const (
	// DefaultWorkers is how many cards are tokenized at once: key-backend
	// and store calls are round trips, and a handful in flight keeps an
	// HSM or Redis busy without queueing on it.
	DefaultWorkers = 8
	// DefaultBatch is how many lines are tokenized between two commits of
	// the mapping file: one fsync per batch, and at most one batch is
	// stored but not yet mapped when a run is cut off.
	DefaultBatch = 512
)

// ImportOptions configures Import. Vault, Audit, Mapping and TokenKey are
// required.
type ImportOptions struct {
	Vault Tokenizer
	// Audit receives one audit.KindImported record per card stored (or
	// found stored by an interrupted run), before its mapping is written.
	// A failed append stops the import.
	Audit Auditor
	// Mapping is the mapping file; a run resumes after its last line.
	Mapping *Mapping
	// TokenKey derives each line's token (see TokenKey): at least
	// vaultclient.MinTokenKeyLen bytes, secret, and the same for every run
	// over one input file.
	TokenKey []byte
	// RunID is the audit records' request_id; Caller their caller.
	RunID  string
	Caller string
	// Report receives one line per refused input line, "line N: refused:
	// CODE", never the line itself. nil discards.
	Report io.Writer
	// Progress receives a progress line, rewritten in place with "\r";
	// give it only a terminal. nil shows none.
	Progress io.Writer
	// Workers and Batch: 0 means DefaultWorkers and DefaultBatch.
	Workers int
	Batch   int
}

// Counts are an import run's outcomes. A line is counted once.
type Counts struct {
	Lines     int            // non-blank lines read
	Imported  int            // cards stored under a new token
	Recovered int            // cards an interrupted run stored but had not mapped
	Skipped   int            // lines an earlier run handled (at or before the mapping's last line)
	Refused   int            // lines refused; see RefusedBy
	RefusedBy map[string]int // refusals by code

	// DeletedBefore counts lines whose card an earlier run stored and
	// that was deleted or expired since: not stored again, not mapped.
	DeletedBefore int
}

// TokenKey derives the key that names an import's tokens from the
// identity the input was encrypted to (its secret encoding) and the
// sha256 of the encrypted input file. A resumed run over the same file
// derives the same tokens, so a card the interrupted run stored is found
// under its token, not stored twice; another file, or the same cards
// encrypted again, gets other tokens.
func TokenKey(identitySecret []byte, inputSHA256 [sha256.Size]byte) ([]byte, error) {
	k, err := hkdf.Key(sha256.New, identitySecret, inputSHA256[:], "cardgate import tokens v1", vaultclient.MinTokenKeyLen)
	if err != nil {
		return nil, fmt.Errorf("migrate: derive token key: %w", err)
	}
	return k, nil
}

// lineToken is the token of the card on input line n.
func lineToken(key []byte, n int) (string, error) {
	return vaultclient.DeriveToken(key, strconv.AppendInt([]byte("line "), int64(n), 10))
}

// validationCodes are vaultclient's refusals of a card: the line is
// refused and the import goes on. Any other error stops it.
var validationCodes = map[string]bool{
	vaultclient.CodeInvalidCardNumber: true,
	vaultclient.CodeInvalidExpiry:     true,
	vaultclient.CodeCardExpired:       true,
	vaultclient.CodeInvalidCVC:        true,
	vaultclient.CodeInvalidName:       true,
}

// Import reads cards in the migration format from in (plaintext from an
// age reader; nothing here writes it anywhere), tokenizes each through
// o.Vault under its line's derived token, audits it, and appends its
// mapping. It resumes after the mapping file's last line. Refused lines
// are reported by number and code and the import goes on; an error from
// the store, the key backend, the audit log or the input stops it after
// committing the mappings of the lines before the failure, and a later run
// resumes from there. Counts are returned with any error.
func Import(ctx context.Context, in io.Reader, o ImportOptions) (Counts, error) {
	c := Counts{RefusedBy: map[string]int{}}
	if o.Vault == nil || o.Audit == nil || o.Mapping == nil || len(o.TokenKey) < vaultclient.MinTokenKeyLen {
		return c, errors.New("migrate: import: vault, audit, mapping and a token key are required")
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.Report == nil {
		o.Report = io.Discard
	}
	im := &importer{o: o, c: &c, seen: newIDSet(), prog: newProgress(o.Progress)}
	resumeAfter, lastToken := o.Mapping.Last()
	if resumeAfter > 0 {
		want, err := lineToken(o.TokenKey, resumeAfter)
		if err != nil {
			return c, err
		}
		if want != lastToken {
			return c, errors.New("migrate: import: the mapping file was written for another input file or identity; give a new mapping file")
		}
	}
	err := im.run(ctx, NewReader(in), resumeAfter)
	im.prog.done(&c)
	return c, err
}

type importer struct {
	o    ImportOptions
	c    *Counts
	seen *idSet
	prog *progress
}

// job is a line to tokenize; its result is filled in by a worker.
type job struct {
	line      int
	id        string
	card      Card
	token     string
	recovered bool
	deleted   bool   // the card was stored once and deleted since
	refused   string // a validation code
	err       error  // stops the import
}

func (im *importer) run(ctx context.Context, r *Reader, resumeAfter int) error {
	batch := make([]job, 0, im.o.Batch)
	for {
		var card Card
		err := r.Next(&card)
		if errors.Is(err, io.EOF) {
			return im.flush(ctx, batch)
		}
		var le *LineError
		if err != nil && !errors.As(err, &le) {
			if ferr := im.flush(ctx, batch); ferr != nil {
				return ferr
			}
			return fmt.Errorf("migrate: read input after line %d: %w", r.Line(), err)
		}
		im.c.Lines++
		line := r.Line()
		if line <= resumeAfter {
			// Handled by an earlier run: only its id is remembered, so
			// that a later line repeating it is still refused.
			if le == nil {
				im.seen.add(card.ID)
			}
			card = Card{}
			im.c.Skipped++
			continue
		}
		switch {
		case le != nil:
			im.refuse(le.Line, le.Code)
		case !im.seen.add(card.ID):
			im.refuse(line, CodeDuplicateID)
		default:
			batch = append(batch, job{line: line, id: card.ID, card: card})
		}
		card = Card{}
		if len(batch) == im.o.Batch {
			if err := im.flush(ctx, batch); err != nil {
				return err
			}
			clear(batch) // drop the cards
			batch = batch[:0]
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("migrate: import stopped after line %d: %w", line, err)
		}
	}
}

func (im *importer) refuse(line int, code string) {
	im.c.Refused++
	im.c.RefusedBy[code]++
	im.prog.clearLine()
	fmt.Fprintf(im.o.Report, "line %d: refused: %s\n", line, code)
}

// flush tokenizes a batch, then records the outcomes in line order and
// commits the mapping file. The first line that failed stops it: the lines
// before it are committed, those after it (which may have been stored)
// are left for the next run, which finds them under their tokens.
func (im *importer) flush(ctx context.Context, batch []job) error {
	if len(batch) == 0 {
		return nil
	}
	im.tokenize(ctx, batch)
	var stop error
	for i := range batch {
		j := &batch[i]
		if j.err != nil {
			stop = fmt.Errorf("migrate: line %d: %w", j.line, j.err)
			break
		}
		if j.refused != "" {
			im.refuse(j.line, j.refused)
			continue
		}
		if j.deleted {
			im.c.DeletedBefore++
			continue
		}
		if err := im.o.Mapping.Add(MappingLine{Line: j.line, ID: j.id, Token: j.token}); err != nil {
			stop = err
			break
		}
		if j.recovered {
			im.c.Recovered++
		} else {
			im.c.Imported++
		}
	}
	if err := im.o.Mapping.Commit(); err != nil {
		return errors.Join(stop, err)
	}
	im.prog.update(im.c)
	return stop
}

// tokenize runs the batch on o.Workers goroutines. Each card is stored,
// then audited; a card an interrupted run stored is audited again (at
// least once, never not at all).
func (im *importer) tokenize(ctx context.Context, batch []job) {
	next := make(chan *job)
	var wg sync.WaitGroup
	for range min(im.o.Workers, len(batch)) {
		wg.Go(func() {
			for j := range next {
				im.one(ctx, j)
			}
		})
	}
	for i := range batch {
		next <- &batch[i]
	}
	close(next)
	wg.Wait()
}

func (im *importer) one(ctx context.Context, j *job) {
	defer func() { j.card = Card{} }()
	token, err := lineToken(im.o.TokenKey, j.line)
	if err != nil {
		j.err = err
		return
	}
	_, err = im.o.Vault.TokenizeAs(ctx, token, j.card.Input())
	var ve *vaultclient.Error
	switch {
	case errors.Is(err, vaultclient.ErrExists):
		j.recovered = true
	case errors.Is(err, vaultclient.ErrDeleted):
		// Deleted through the API or expired by retention since an
		// earlier run stored it: an erasure stays an erasure.
		j.deleted = true
		return
	case errors.As(err, &ve) && validationCodes[ve.Code]:
		j.refused = ve.Code
		return
	case err != nil:
		j.err = err
		return
	}
	j.token = token
	if _, err := im.o.Audit.Append(ctx, audit.Record{Kind: audit.KindImported, RequestID: im.o.RunID, Caller: im.o.Caller, Token: token}); err != nil {
		j.err = fmt.Errorf("audit: %w", err)
	}
}

// idSet remembers the ids seen, as 64-bit keyed hashes: 8 bytes and the
// map's overhead per card, not the ids, so a million-card file needs
// tens of megabytes at most. Two distinct ids share a hash with odds of
// about 3 in 10^8 over a million ids; the later line is then refused as a
// duplicate, and is imported by a new file with that line alone.
type idSet struct {
	seed maphash.Seed
	m    map[uint64]struct{}
}

func newIDSet() *idSet { return &idSet{seed: maphash.MakeSeed(), m: map[uint64]struct{}{}} }

// add reports whether id was new.
func (s *idSet) add(id string) bool {
	h := maphash.String(s.seed, id)
	if _, ok := s.m[h]; ok {
		return false
	}
	s.m[h] = struct{}{}
	return true
}

// progress writes a one-line status to a terminal, at most every
// progressEvery.
type progress struct {
	w     io.Writer
	start time.Time
	last  time.Time
	shown bool
}

const progressEvery = 250 * time.Millisecond

func newProgress(w io.Writer) *progress { return &progress{w: w, start: time.Now()} }

func (p *progress) update(c *Counts) {
	if p.w == nil || time.Since(p.last) < progressEvery {
		return
	}
	p.last = time.Now()
	p.print(c)
}

func (p *progress) print(c *Counts) {
	rate := float64(c.Imported+c.Recovered) / max(time.Since(p.start).Seconds(), 1e-3)
	fmt.Fprintf(p.w, "\r\x1b[K%d lines: %d imported, %d recovered, %d skipped, %d refused, %d deleted before (%.0f cards/s)",
		c.Lines, c.Imported, c.Recovered, c.Skipped, c.Refused, c.DeletedBefore, rate)
	p.shown = true
}

// clearLine blanks the progress line before another line is written.
func (p *progress) clearLine() {
	if p.w != nil && p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.shown = false
	}
}

func (p *progress) done(c *Counts) {
	if p.w != nil {
		p.print(c)
		fmt.Fprintln(p.w)
	}
}
