package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrVerifyFailed is wrapped by Verify's error when the log has problems.
// The Report says which and where.
var ErrVerifyFailed = errors.New("audit log failed verification")

// ProblemKind classifies what Verify found.
type ProblemKind string

// Problem kinds.
const (
	// ProblemMalformed: the line or entry is not a valid record (not JSON,
	// an unknown or missing field, a value outside its format). Malformed
	// chain fields keep the record out of chain checks.
	ProblemMalformed ProblemKind = "malformed"
	// ProblemModified: the record's contents do not match its hash, or its
	// bytes are not the canonical encoding (the line was edited, even if
	// only in spacing). Changing only the hash is reported here too.
	ProblemModified ProblemKind = "modified"
	// ProblemBrokenLink: the record's prev is not the hash of the record
	// before it in the chain. Either the record before was edited and its
	// hash recomputed, or this record replaced the original one.
	ProblemBrokenLink ProblemKind = "broken_link"
	// ProblemDeleted: seqs are missing from a chain. Reported at the first
	// record after the hole.
	ProblemDeleted ProblemKind = "deleted"
	// ProblemInserted: a second record claims a seq of a chain, and the
	// chain does not continue through it.
	ProblemInserted ProblemKind = "inserted"
	// ProblemReordered: a chain's record is out of seq order in the input.
	ProblemReordered ProblemKind = "reordered"
	// ProblemAnchor: a hash given as an anchor is missing from the log, or
	// (Last anchors) is not its chain's last record: records were removed
	// from the end, or the chain was rewritten.
	ProblemAnchor ProblemKind = "anchor"
	// ProblemHeadMismatch (streams only): the chain's head key in Redis
	// names a different last record than the stream holds, e.g. entries
	// were removed from the end of the stream with XDEL.
	ProblemHeadMismatch ProblemKind = "head_mismatch"
)

// Problem is one finding. Detail never quotes record contents: a tampered
// log could hold anything, card numbers included.
type Problem struct {
	Kind ProblemKind
	// Line is the 1-based line in the file; 0 for streams or when the
	// problem has no single place (a missing anchor).
	Line int
	// StreamID is the stream entry id; empty for files.
	StreamID string
	// Chain and Seq are the record's, when it could be decoded.
	Chain  string
	Seq    uint64
	Detail string
}

// Where says where p is: "line 7", "stream id 1700000000000-0" or "log".
func (p Problem) Where() string {
	switch {
	case p.StreamID != "":
		return "stream id " + p.StreamID
	case p.Line > 0:
		return "line " + strconv.Itoa(p.Line)
	}
	return "log"
}

func (p Problem) String() string {
	s := p.Where() + ": " + string(p.Kind)
	if p.Chain != "" {
		s += fmt.Sprintf(": chain %s seq %d", p.Chain, p.Seq)
	}
	return s + ": " + p.Detail
}

// ChainReport summarizes one chain as reconstructed by Verify.
type ChainReport struct {
	Chain string
	// Records counts the chain's records, excluding inserted ones.
	Records  int
	FirstSeq uint64
	LastSeq  uint64
	// LastHash is the hash of the record with LastSeq. Publish it (or
	// compare it with a published one) to guard against truncation.
	LastHash string
}

// Report is the result of a verification.
type Report struct {
	// Records counts lines or stream entries read, valid or not.
	Records int
	// Chains are in order of first appearance.
	Chains []ChainReport
	// Problems are in input order; problems about the log as a whole
	// (missing anchors) come last. At most MaxProblems of each kind are
	// listed, the first found of each, plus the anchor problems.
	Problems []Problem
	// Omitted counts the problems found beyond MaxProblems of their kind
	// and not listed.
	Omitted int
	// OutcomeUnknown lists, in input order, the intents with no result
	// record for their forward (verify_intents.go). They are not
	// problems; UntrackedIntents counts intents past the bound, unchecked.
	OutcomeUnknown   []OpenIntent
	UntrackedIntents int
}

// MaxProblems bounds the problems of each kind that Report.Problems
// lists, so that verifying a log that is corrupt throughout (or not a log
// at all) does not hold a problem for every line. The bound is per kind so
// that a flood of one kind (garbage lines, say) cannot push a deleted or
// reordered record out of the list.
const MaxProblems = 10000

// OK reports whether no problem was found.
func (r *Report) OK() bool { return len(r.Problems) == 0 && r.Omitted == 0 }

// NumProblems counts the problems found, listed or not.
func (r *Report) NumProblems() int { return len(r.Problems) + r.Omitted }

// Anchor is a record hash obtained outside the log (published from
// Log.Head, or from an earlier verification). Without anchors, removing
// records from the end of a chain, or whole chains, cannot be detected: what
// remains is still a valid chain. An anchor must be the hash of a record on
// its chain; with Last set, it must also be the chain's last record.
type Anchor struct {
	Hash string
	Last bool
}

// Verify reads JSON-lines records from r (the format FileSink writes; files
// from several writers or rotations may be concatenated, in order) and
// checks every hash and link. It returns a Report and, if the report has
// problems, an error wrapping ErrVerifyFailed; a read error is returned as
// is, with no report.
//
// What it detects, per chain: a record whose contents or hash were changed
// (modified); a record missing (deleted); a record added with a seq already
// in use (inserted); a record out of order (reordered); a record whose
// predecessor was changed and re-hashed (broken_link). What it cannot
// detect without anchors: records removed from the end of a chain, a whole
// chain removed, and a chain rewritten from some record to its end (a hash
// chain has no secret; anyone who can write the log can recompute it).
// Appending a record or a new chain is likewise undetectable by hashes
// alone: compare the chains listed with the writers you ran.
//
// Verify reads r once. Per chain it holds the last record decided and the
// records not decided yet: one in a log in order; after a record moved,
// deleted, inserted or rewritten, those that follow until later records
// settle it, at most 1024 (the window). Memory grows with the number of
// chains, not of records (a log crafted with many chains, each holding a
// full window, still costs at most about min(records, chains × 1024));
// the problems listed are at most MaxProblems of each kind.
// The report is the one a verification holding the whole log would give
// for changes whose records lie within half a window (512 of the chain's
// records) of each other. Beyond that, a record moved further than the
// window is reported missing where it belongs (deleted) and out of place
// where it is (reordered); changes within a window of each other but not
// within half a window may be described differently; and a record that
// repeats a seq its chain passed more than one record earlier is reported
// inserted without naming the record the chain continues through.
func Verify(r io.Reader, anchors ...Anchor) (*Report, error) {
	return verifyReader(r, reorderWindow, anchors)
}

// verifyReader is Verify holding at most window records pending per chain.
func verifyReader(r io.Reader, window int, anchors []Anchor) (*Report, error) {
	v := newVerifier(window, anchors)
	br := bufio.NewReaderSize(r, 64<<10)
	for lineNo := 1; ; lineNo++ {
		line, complete, err := readLine(br)
		if err == io.EOF && len(line) == 0 && complete {
			break
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("audit: verify: read line %d: %w", lineNo, err)
		}
		loc := location{line: lineNo}
		switch {
		case !complete:
			v.problem(loc, ProblemMalformed, "line longer than 64 KiB")
		case err == io.EOF:
			// A last line without a newline: FileSink always writes one,
			// so the final write was cut short, or the file was edited.
			cs, e := v.check(loc, line)
			v.problem(loc, ProblemMalformed, "no newline at end of file: the last write may be incomplete")
			v.accept(cs, e)
		default:
			v.add(loc, line)
		}
		if err == io.EOF {
			break
		}
	}
	return v.finish(nil)
}

// readLine returns the next line without its newline. complete is false if
// the line exceeded the reader's buffer (the rest of it is skipped). err is
// io.EOF when the input ended, with or without a last unterminated line.
func readLine(br *bufio.Reader) (line []byte, complete bool, err error) {
	b, err := br.ReadSlice('\n')
	switch {
	case err == nil:
		return b[:len(b)-1], true, nil
	case errors.Is(err, bufio.ErrBufferFull):
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = br.ReadSlice('\n')
		}
		if err != nil && err != io.EOF {
			return nil, false, err
		}
		return nil, false, nil
	case err == io.EOF:
		return b, true, io.EOF
	}
	return nil, false, err
}

// reHead is the format of a head key's value, "seq:hash".
var reHead = regexp.MustCompile(`^[0-9]{1,16}:[0-9a-f]{64}$`)

// streamBatch is how many entries VerifyStream reads per XRANGE, and
// streamReadTimeout bounds each of those reads.
const (
	streamBatch       = 1000
	streamReadTimeout = 10 * time.Second
)

// VerifyStream is Verify for a Redis stream written by RedisStreamSink.
// Besides what Verify checks, it compares each chain's last record with the
// chain's head key (HeadKey), which catches entries removed from the end of
// the stream unless the head key was rewritten too.
func VerifyStream(ctx context.Context, c redis.UniversalClient, key string, anchors ...Anchor) (*Report, error) {
	v := newVerifier(reorderWindow, anchors)
	start := "-"
	for {
		rctx, cancel := context.WithTimeout(ctx, streamReadTimeout)
		msgs, err := c.XRangeN(rctx, key, start, "+", streamBatch).Result()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("audit: verify stream %s: xrange from %s: %w", key, start, err)
		}
		for _, m := range msgs {
			loc := location{streamID: m.ID}
			val, ok := m.Values[StreamField].(string)
			if !ok || len(m.Values) != 1 {
				v.problem(loc, ProblemMalformed, "entry must have exactly one field, "+StreamField)
				continue
			}
			v.add(loc, []byte(val))
		}
		if len(msgs) < streamBatch {
			break
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
	heads := make(map[string]string, len(v.order))
	for _, cs := range v.order {
		rctx, cancel := context.WithTimeout(ctx, streamReadTimeout)
		h, err := c.Get(rctx, HeadKey(key, cs.name)).Result()
		cancel()
		switch {
		case errors.Is(err, redis.Nil):
			// No head: written before head keys existed, or the key was
			// evicted. Nothing to compare.
		case err != nil:
			return nil, fmt.Errorf("audit: verify stream %s: head of chain %s: %w", key, cs.name, err)
		default:
			heads[cs.name] = h
		}
	}
	return v.finish(heads)
}

// location is where an input record was found.
type location struct {
	line     int
	streamID string
}

// entry is one decoded record with valid chain fields.
type entry struct {
	pos    int // input order among entries
	loc    location
	seq    uint64
	prev   string
	hash   string // as stored
	actual string // as recomputed
}

// reorderWindow bounds the records of one chain that the verifier holds
// undecided; see Verify.
const reorderWindow = 1024

// maxGaps bounds the missing seq ranges remembered per chain, to tell a
// late record that fills one (moved) from one that repeats a seq
// (inserted).
const maxGaps = 16

// seqRange is a range of seqs, both ends included.
type seqRange struct{ from, to uint64 }

// chainState is what the verifier holds for one chain: the chain's
// members so far are decided and summarized; the records after them wait
// in pending until later records (or the end) decide them.
type chainState struct {
	name    string
	idx     int      // order of first appearance
	last    *entry   // the last member decided; nil before the first
	hi      *entry   // the member in place that came last in the input
	first   uint64   // seq of the first member
	members int      // members decided
	pending []*entry // records with seqs after last's, in input order
	gaps    []seqRange
}

// expected is the seq of the member that follows last.
func (cs *chainState) expected() uint64 {
	if cs.last == nil {
		return 1
	}
	return cs.last.seq + 1
}

func (cs *chainState) inGap(seq uint64) bool {
	for _, g := range cs.gaps {
		if g.from <= seq && seq <= g.to {
			return true
		}
	}
	return false
}

// anchorHit is the member an anchor's hash was found at.
type anchorHit struct {
	chain *chainState
	seq   uint64
	loc   location
}

// verifier checks records one at a time. Its memory is per chain (see
// chainState) plus the problems found, at most MaxProblems of each kind.
type verifier struct {
	records  int
	chains   map[string]*chainState
	order    []*chainState // in order of first appearance
	problems []Problem
	listed   map[ProblemKind]int // problems listed, by kind
	omitted  int
	window   int // reorderWindow, or less in tests
	anchors  []Anchor
	// anchored maps each anchored hash to the member it was found at;
	// only anchored hashes are looked up, so that memory does not grow by
	// a map over the whole log.
	anchored map[string]*anchorHit
	// cands and next are scratch space for settle.
	cands, next []*entry
	intents     openIntents
}

func newVerifier(window int, anchors []Anchor) *verifier {
	v := &verifier{
		chains:   make(map[string]*chainState),
		listed:   make(map[ProblemKind]int),
		window:   window,
		anchors:  anchors,
		anchored: make(map[string]*anchorHit, len(anchors)),
	}
	for _, a := range anchors {
		v.anchored[a.Hash] = nil
	}
	return v
}

func (v *verifier) report(p Problem) {
	if v.listed[p.Kind] >= MaxProblems {
		v.omitted++
		return
	}
	v.listed[p.Kind]++
	v.problems = append(v.problems, p)
}

// problem records a finding about an input record that has no usable
// chain fields.
func (v *verifier) problem(loc location, kind ProblemKind, detail string) {
	v.report(Problem{Kind: kind, Line: loc.line, StreamID: loc.streamID, Detail: detail})
}

func (v *verifier) chainProblem(e *entry, chain string, kind ProblemKind, detail string) {
	v.report(Problem{
		Kind: kind, Line: e.loc.line, StreamID: e.loc.streamID,
		Chain: chain, Seq: e.seq, Detail: detail,
	})
}

// add checks one record and files it under its chain.
func (v *verifier) add(loc location, data []byte) {
	v.accept(v.check(loc, data))
}

// check checks one record on its own. It returns the record's chain and
// entry, or nil if its chain fields are unusable.
func (v *verifier) check(loc location, data []byte) (*chainState, *entry) {
	v.records++
	var rec Record
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		v.problem(loc, ProblemMalformed, decodeProblem(data, err))
		return nil, nil
	}
	if err := rec.validateChainFields(); err != nil {
		v.problem(loc, ProblemMalformed, trimPrefix(err))
		return nil, nil
	}
	if !reSHA256.MatchString(rec.Hash) {
		v.problem(loc, ProblemMalformed, "field hash: must be 64 lowercase hex digits")
		return nil, nil
	}
	v.intents.see(&rec, loc)
	cs := v.chains[rec.Chain]
	if cs == nil {
		cs = &chainState{name: rec.Chain, idx: len(v.order)}
		v.chains[rec.Chain] = cs
		v.order = append(v.order, cs)
	}
	e := &entry{pos: v.records, loc: loc, seq: rec.Seq, prev: rec.Prev, hash: rec.Hash}

	canon, actual, err := rec.seal()
	if err != nil {
		v.chainProblem(e, rec.Chain, ProblemMalformed, trimPrefix(err))
		return cs, e
	}
	e.actual = actual
	switch {
	case actual != rec.Hash:
		v.chainProblem(e, rec.Chain, ProblemModified, "hash does not match the record's contents")
	case !bytes.Equal(storedLine(canon, rec.Hash), data):
		// Same decoded values, different bytes: spacing, escapes, field
		// order or duplicate keys were edited. The hash of the canonical
		// form still matches, but the stored bytes are not what the
		// writer wrote.
		v.chainProblem(e, rec.Chain, ProblemModified, "not in canonical form: the line was edited")
	}
	if err := rec.validateContent(); err != nil {
		v.chainProblem(e, rec.Chain, ProblemMalformed, trimPrefix(err))
	}
	return cs, e
}

// accept files e under its chain and decides whatever e lets the verifier
// decide. cs and e are check's results; nil is ignored.
func (v *verifier) accept(cs *chainState, e *entry) {
	if e == nil {
		return
	}
	if cs.last != nil && e.seq <= cs.last.seq {
		v.late(cs, e)
		return
	}
	cs.pending = append(cs.pending, e)
	if len(cs.pending) > v.window {
		v.overflow(cs)
	}
	for v.settle(cs) {
	}
}

// overflow decides, with walk, the pending records of cs within half a
// window of seqs from the lowest: the chain has more than window records
// pending, because records are missing, out of place, or changed so that
// they do not link. Each seq decided has had half a window of the records
// after it to be decided by; what comes later and would have changed the
// decision is reported late. Records further ahead (moved or copied there
// from far behind) wait for their neighbours, unless they are more than
// window themselves.
func (v *verifier) overflow(cs *chainState) {
	lowest := cs.pending[0].seq
	for _, p := range cs.pending[1:] {
		lowest = min(lowest, p.seq)
	}
	v.flush(cs, lowest+uint64(max(v.window/2, 1)))
	if len(cs.pending) > v.window {
		v.flush(cs, math.MaxUint64)
	}
}

// dropPending removes the records decided from cs.pending.
func (cs *chainState) dropPending(decided func(*entry) bool) {
	kept := cs.pending[:0]
	for _, p := range cs.pending {
		if !decided(p) {
			kept = append(kept, p)
		}
	}
	clear(cs.pending[len(kept):])
	cs.pending = kept
}

// checkPlace reports m, about to become a member of cs, if it came before
// a member already decided (and in place). Only overflow lets that
// happen: otherwise every pending record came after every member.
func (v *verifier) checkPlace(cs *chainState, m *entry) {
	if cs.hi != nil && m.pos < cs.hi.pos {
		v.chainProblem(m, cs.name, ProblemReordered, comesBefore(cs.hi))
		return
	}
	cs.hi = m
}

func comesBefore(e *entry) string {
	return "comes before seq " + strconv.FormatUint(e.seq, 10) + " (" + e.loc.String() + ")"
}

// settle decides the member for the lowest pending seq of cs, if no record
// still to come can change that decision or the chain's order, and
// reports whether it did. That is the case when the seq follows the last
// member (no gap), and some record for it links to the last member, is
// pointed to by a record for the next seq, and came before every pending
// record of a later seq: a later record for the seq could at best tie,
// and ties go to the earlier record; and the member is in order. This is
// walk's decision, made early; in a log in order it keeps one record
// pending.
func (v *verifier) settle(cs *chainState) bool {
	if len(cs.pending) < 2 {
		return false // nothing for the next seq yet
	}
	seq := cs.expected()
	// Pending seqs are all after the last member's: if none is seq, the
	// chain has a gap, which only the missing records or walk resolve.
	cands, next := v.cands[:0], v.next[:0]
	later := -1 // the earliest position of a pending record of a later seq
	for _, p := range cs.pending {
		switch p.seq {
		case seq:
			cands = append(cands, p)
			continue
		case seq + 1:
			next = append(next, p)
		}
		if later < 0 || p.pos < later {
			later = p.pos
		}
	}
	keep := v.decidable(cs, cands, next, later)
	clear(cands)
	clear(next)
	v.cands, v.next = cands[:0], next[:0]
	if keep == nil {
		return false
	}
	v.checkPlace(cs, keep)
	v.member(cs, keep)
	cs.dropPending(func(p *entry) bool { return p.seq == seq })
	return true
}

// decidable returns the member among cands (records for the seq after
// cs's last member) if it is decided for good (see settle), else nil. It
// reports the other candidates as inserted.
func (v *verifier) decidable(cs *chainState, cands, next []*entry, later int) *entry {
	if len(cands) == 0 || len(next) == 0 {
		return nil
	}
	links := func(e *entry) bool {
		if cs.last == nil {
			return e.prev == zeroHash // seq 1; validated already
		}
		return e.prev == cs.last.hash || (cs.last.actual != "" && e.prev == cs.last.actual)
	}
	pointedTo := pointedBy(next)
	keep := pick(cands, links, pointedTo)
	if !links(keep) || !pointedTo(keep) || keep.pos > later {
		return nil
	}
	for _, c := range cands {
		if c != keep {
			v.chainProblem(c, cs.name, ProblemInserted, secondRecord(c, keep))
		}
	}
	return keep
}

// pointedBy returns whether any of next (records of the following seq)
// points to e, by its stored or its recomputed hash.
func pointedBy(next []*entry) func(*entry) bool {
	return func(e *entry) bool {
		for _, n := range next {
			if n.prev == e.hash || (e.actual != "" && n.prev == e.actual) {
				return true
			}
		}
		return false
	}
}

// secondRecord describes c, a record for the seq of the member keep.
func secondRecord(c, keep *entry) string {
	if c.hash == keep.hash {
		return "a copy of " + keep.loc.String()
	}
	return "a second record for this seq; the chain continues through " + keep.loc.String()
}

// late reports e, whose seq is at or before the chain's last member.
func (v *verifier) late(cs *chainState, e *entry) {
	last := cs.last
	switch {
	case e.seq == last.seq:
		v.chainProblem(e, cs.name, ProblemInserted, secondRecord(e, last))
	case cs.inGap(e.seq):
		// Only a chain with more than window records pending
		// decides with a gap and can see the missing record later.
		v.chainProblem(e, cs.name, ProblemReordered, "comes after seq "+strconv.FormatUint(last.seq, 10)+
			" ("+last.loc.String()+"), too far from its place to be put back: its seq was reported missing")
	default:
		v.chainProblem(e, cs.name, ProblemInserted, "a second record for this seq, after the chain had passed it; the chain is at seq "+
			strconv.FormatUint(last.seq, 10)+" ("+last.loc.String()+")")
	}
}

// member records m as the next member of cs.
func (v *verifier) member(cs *chainState, m *entry) {
	if cs.last == nil {
		cs.first = m.seq
	}
	cs.members++
	cs.last = m
	if hit, ok := v.anchored[m.hash]; ok && (hit == nil || cs.idx < hit.chain.idx) {
		// The first member with the hash, by chain then seq.
		v.anchored[m.hash] = &anchorHit{chain: cs, seq: m.seq, loc: m.loc}
	}
}

// flush decides the pending records of cs with seqs before upto.
func (v *verifier) flush(cs *chainState, upto uint64) {
	if len(cs.pending) == 0 {
		return
	}
	v.walk(cs, cs.pending, upto)
	cs.dropPending(func(p *entry) bool { return p.seq < upto })
}

// decodeProblem describes a JSON decoding error of data without quoting
// it. The two shapes a crash leaves are named as such, so that an auditor
// can tell them from an edit: a record cut short (the write, or the fsync
// behind AppendWritten, did not finish; the next start ends the line), and
// NUL bytes (the file's size reached disk before its data: blocks the
// file system allocated but never wrote).
func decodeProblem(data []byte, err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case bytes.IndexByte(data, 0) >= 0:
		return "NUL bytes in the line: data never written, as a machine crash before an fsync leaves"
	case errors.Is(err, io.ErrUnexpectedEOF) && len(data) > 0 && data[0] == '{':
		return "an incomplete record: a write cut short, as a crash before its fsync leaves"
	case errors.As(err, &syn), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "not a JSON object"
	case errors.As(err, &typ):
		// Field is the struct path (one of our own field names), not input.
		return "field " + typ.Field + " has the wrong type"
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		// The message quotes the field name, which is input; leave it out.
		return "unknown field"
	}
	return "not a record"
}

func trimPrefix(err error) string {
	s := strings.TrimPrefix(err.Error(), "audit: ")
	return strings.TrimSuffix(s, ": "+ErrInvalid.Error())
}

// finish decides what is pending and checks the anchors and heads.
func (v *verifier) finish(heads map[string]string) (*Report, error) {
	rep := &Report{Records: v.records}
	for _, cs := range v.order {
		v.flush(cs, math.MaxUint64)
	}
	for _, cs := range v.order {
		last := cs.last
		rep.Chains = append(rep.Chains, ChainReport{
			Chain:    cs.name,
			Records:  cs.members,
			FirstSeq: cs.first,
			LastSeq:  last.seq,
			LastHash: last.hash,
		})
		if h, ok := heads[cs.name]; ok {
			if want := strconv.FormatUint(last.seq, 10) + ":" + last.hash; h != want {
				// The head key is input too; quote it only in its format.
				says := "a malformed value"
				if reHead.MatchString(h) {
					says = "seq:hash " + h
				}
				v.chainProblem(last, cs.name, ProblemHeadMismatch,
					"the chain's head key says "+says+", but this is the chain's last record in the stream: records were removed from the end, or added without the writer")
			}
		}
	}
	sort.SliceStable(v.problems, func(i, j int) bool { return v.problems[i].less(v.problems[j]) })
	rep.Problems = v.problems
	rep.Omitted = v.omitted
	rep.OutcomeUnknown, rep.UntrackedIntents = v.intents.list(), v.intents.untracked
	for _, a := range v.anchors {
		f := v.anchored[a.Hash]
		switch {
		case f == nil:
			rep.Problems = append(rep.Problems, Problem{Kind: ProblemAnchor,
				Detail: "anchor " + a.Hash + " is not the hash of any chain's record: records were removed from the end, or the chain was rewritten"})
		case a.Last && f.seq != f.chain.last.seq:
			rep.Problems = append(rep.Problems, Problem{Kind: ProblemAnchor,
				Line: f.loc.line, StreamID: f.loc.streamID, Chain: f.chain.name, Seq: f.seq,
				Detail: "expected the chain's last record, but the chain continues after it"})
		}
	}
	if !rep.OK() {
		return rep, fmt.Errorf("audit: verify: %d problems: %w", rep.NumProblems(), ErrVerifyFailed)
	}
	return rep, nil
}

// less orders problems by input position: stream ids compare as
// (milliseconds, sequence) numbers.
func (p Problem) less(q Problem) bool {
	if p.StreamID != "" || q.StreamID != "" {
		pm, ps := splitStreamID(p.StreamID)
		qm, qs := splitStreamID(q.StreamID)
		if pm != qm {
			return pm < qm
		}
		return ps < qs
	}
	return p.Line < q.Line
}

func splitStreamID(id string) (ms, seq uint64) {
	a, b, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(a, 10, 64)
	seq, _ = strconv.ParseUint(b, 10, 64)
	return ms, seq
}

// walk continues cs through the records of es (records after its last
// member, in input order) with seqs before upto, and reports deleted,
// inserted, broken-link and reordered records. Unless overflow decided
// members before, every record of es came after the chain's members so
// far, and order is checked among es alone.
//
// The chain is followed by seq. For each seq the record kept is the one
// whose prev is the hash of the record kept for the seq before (as stored,
// or as recomputed, so that a record whose hash alone was changed is
// reported once, as modified, and not again at its successor); among
// several, the one the next seq's records point to; then the first in
// input order. Records not kept for their seq are inserted.
func (v *verifier) walk(cs *chainState, es []*entry, upto uint64) {
	bySeq := append([]*entry(nil), es...)
	sort.SliceStable(bySeq, func(i, j int) bool { return bySeq[i].seq < bySeq[j].seq })

	hi := cs.hi
	var members []*entry
	i := 0
	for i < len(bySeq) && bySeq[i].seq < upto {
		j := i
		for j < len(bySeq) && bySeq[j].seq == bySeq[i].seq {
			j++
		}
		cands := bySeq[i:j] // one seq, in input order (stable sort)
		var next []*entry   // candidates for the following seq
		if k := j; k < len(bySeq) && bySeq[k].seq == bySeq[i].seq+1 {
			m := k
			for m < len(bySeq) && bySeq[m].seq == bySeq[k].seq {
				m++
			}
			next = bySeq[k:m]
		}
		keep := v.decide(cs, cs.last, cs.expected(), cands, next)
		v.member(cs, keep)
		members = append(members, keep)
		i = j
	}

	// In the input, a chain's records must come in seq order. The records
	// out of place are those outside a longest run that is in order; that
	// names the one record moved, not its innocent neighbours. The run
	// takes in the records left pending, so that a record moved across
	// upto is the one named.
	run := append(members, bySeq[i:]...)
	inOrder := longestIncreasing(run)
	for i, e := range members {
		var detail string
		switch {
		case inOrder[i] && (hi == nil || e.pos > hi.pos):
			cs.hi = e
			continue
		case inOrder[i]:
			detail = comesBefore(hi)
		case i > 0 && run[i-1].pos > e.pos:
			detail = comesBefore(run[i-1])
		case i+1 < len(run):
			detail = "comes after seq " + strconv.FormatUint(run[i+1].seq, 10) + " (" + run[i+1].loc.String() + ")"
		default:
			detail = "out of order"
		}
		v.chainProblem(e, cs.name, ProblemReordered, detail)
	}
}

// decide chooses the member of cs for one seq among cands (its records, in
// input order), given the member before it (prev, nil at the start), the
// seq expected after prev, and next, the records of the following seq. It
// reports a gap before the seq (deleted), a member that does not link to
// prev (broken_link) and the records not chosen (inserted).
func (v *verifier) decide(cs *chainState, prev *entry, expected uint64, cands, next []*entry) *entry {
	seq := cands[0].seq
	gap := seq > expected
	if gap {
		detail := missing(expected, seq-1)
		if prev == nil {
			detail += ": the start of the chain is gone"
		} else {
			detail += ": the chain jumps from seq " + strconv.FormatUint(prev.seq, 10) +
				" (" + prev.loc.String() + ") to this record"
		}
		v.chainProblem(earliest(cands), cs.name, ProblemDeleted, detail)
		if len(cs.gaps) == maxGaps {
			cs.gaps = append(cs.gaps[:0], cs.gaps[1:]...)
		}
		cs.gaps = append(cs.gaps, seqRange{expected, seq - 1})
	}
	links := func(e *entry) bool {
		if gap {
			return true // nothing to check against; the gap is reported
		}
		if prev == nil {
			return e.prev == zeroHash // seq 1; validated already
		}
		return e.prev == prev.hash || (prev.actual != "" && e.prev == prev.actual)
	}
	keep := pick(cands, links, pointedBy(next))
	if !links(keep) {
		v.chainProblem(keep, cs.name, ProblemBrokenLink,
			"prev is not the hash of seq "+strconv.FormatUint(prev.seq, 10)+" ("+prev.loc.String()+
				"): that record was rewritten and re-hashed, or this one replaced the original")
	}
	for _, c := range cands {
		if c != keep {
			v.chainProblem(c, cs.name, ProblemInserted, secondRecord(c, keep))
		}
	}
	return keep
}

// pick chooses the record to keep among records with one seq.
func pick(cands []*entry, links, pointedTo func(*entry) bool) *entry {
	best, bestScore := cands[0], -1
	for _, c := range cands {
		score := 0
		if links(c) {
			score += 2
		}
		if pointedTo(c) {
			score++
		}
		if score > bestScore || (score == bestScore && c.pos < best.pos) {
			best, bestScore = c, score
		}
	}
	return best
}

func earliest(es []*entry) *entry {
	e := es[0]
	for _, c := range es[1:] {
		if c.pos < e.pos {
			e = c
		}
	}
	return e
}

func missing(from, to uint64) string {
	if from == to {
		return "seq " + strconv.FormatUint(from, 10) + " is missing"
	}
	return "seqs " + strconv.FormatUint(from, 10) + "–" + strconv.FormatUint(to, 10) + " are missing"
}

func (l location) String() string {
	if l.streamID != "" {
		return "stream id " + l.streamID
	}
	return "line " + strconv.Itoa(l.line)
}

// longestIncreasing marks a longest subsequence of es with increasing pos
// (patience sorting, O(n log n)). Of two swapped neighbours, the one with
// the lower seq (which now comes second) is the one left out, and reported.
func longestIncreasing(es []*entry) []bool {
	n := len(es)
	tails := make([]int, 0, n) // tails[k]: index in es ending a run of length k+1
	parent := make([]int, n)
	for i, e := range es {
		k := sort.Search(len(tails), func(k int) bool { return es[tails[k]].pos >= e.pos })
		if k > 0 {
			parent[i] = tails[k-1]
		} else {
			parent[i] = -1
		}
		if k == len(tails) {
			tails = append(tails, i)
		} else {
			tails[k] = i
		}
	}
	in := make([]bool, n)
	if len(tails) > 0 {
		for i := tails[len(tails)-1]; i >= 0; i = parent[i] {
			in[i] = true
		}
	}
	return in
}
