package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	// (missing anchors) come last.
	Problems []Problem
}

// OK reports whether no problem was found.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

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
// Memory grows with the log: a few hundred bytes a record are kept until
// the end, to reconstruct chains whose records were moved.
func Verify(r io.Reader, anchors ...Anchor) (*Report, error) {
	v := newVerifier()
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
			v.add(loc, line)
			v.problem(loc, ProblemMalformed, "no newline at end of file: the last write may be incomplete")
		default:
			v.add(loc, line)
		}
		if err == io.EOF {
			break
		}
	}
	return v.finish(anchors, nil)
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
	v := newVerifier()
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
	for _, chain := range v.order {
		rctx, cancel := context.WithTimeout(ctx, streamReadTimeout)
		h, err := c.Get(rctx, HeadKey(key, chain)).Result()
		cancel()
		switch {
		case errors.Is(err, redis.Nil):
			// No head: written before head keys existed, or the key was
			// evicted. Nothing to compare.
		case err != nil:
			return nil, fmt.Errorf("audit: verify stream %s: head of chain %s: %w", key, chain, err)
		default:
			heads[chain] = h
		}
	}
	return v.finish(anchors, heads)
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

type verifier struct {
	records  int
	chains   map[string][]*entry
	order    []string // chains in order of first appearance
	problems []Problem
}

func newVerifier() *verifier {
	return &verifier{chains: make(map[string][]*entry)}
}

// problem records a finding about an input record that has no usable
// chain fields.
func (v *verifier) problem(loc location, kind ProblemKind, detail string) {
	v.problems = append(v.problems, Problem{Kind: kind, Line: loc.line, StreamID: loc.streamID, Detail: detail})
}

func (v *verifier) chainProblem(e *entry, chain string, kind ProblemKind, detail string) {
	v.problems = append(v.problems, Problem{
		Kind: kind, Line: e.loc.line, StreamID: e.loc.streamID,
		Chain: chain, Seq: e.seq, Detail: detail,
	})
}

// add checks one record on its own and files it under its chain.
func (v *verifier) add(loc location, data []byte) {
	v.records++
	var rec Record
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		v.problem(loc, ProblemMalformed, decodeProblem(err))
		return
	}
	if err := rec.validateChainFields(); err != nil {
		v.problem(loc, ProblemMalformed, trimPrefix(err))
		return
	}
	if !reSHA256.MatchString(rec.Hash) {
		v.problem(loc, ProblemMalformed, "field hash: must be 64 lowercase hex digits")
		return
	}
	e := &entry{loc: loc, seq: rec.Seq, prev: rec.Prev, hash: rec.Hash}
	if _, ok := v.chains[rec.Chain]; !ok {
		v.order = append(v.order, rec.Chain)
	}
	e.pos = v.records
	v.chains[rec.Chain] = append(v.chains[rec.Chain], e)

	canon, actual, err := rec.seal()
	if err != nil {
		v.chainProblem(e, rec.Chain, ProblemMalformed, trimPrefix(err))
		return
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
}

// decodeProblem describes a JSON decoding error without quoting the input.
func decodeProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
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

// finish reconstructs every chain and checks the anchors and heads.
func (v *verifier) finish(anchors []Anchor, heads map[string]string) (*Report, error) {
	rep := &Report{Records: v.records}
	// Only anchored hashes are looked up, so that memory does not grow by
	// a map over the whole log.
	type found struct {
		e     *entry
		chain string
		last  bool
	}
	anchored := make(map[string]*found, len(anchors))
	for _, a := range anchors {
		anchored[a.Hash] = nil
	}
	for _, chain := range v.order {
		members := v.walk(chain, v.chains[chain])
		last := members[len(members)-1]
		rep.Chains = append(rep.Chains, ChainReport{
			Chain:    chain,
			Records:  len(members),
			FirstSeq: members[0].seq,
			LastSeq:  last.seq,
			LastHash: last.hash,
		})
		for _, e := range members {
			if f, ok := anchored[e.hash]; ok && f == nil {
				anchored[e.hash] = &found{e: e, chain: chain, last: e == last}
			}
		}
		if h, ok := heads[chain]; ok {
			if want := strconv.FormatUint(last.seq, 10) + ":" + last.hash; h != want {
				// The head key is input too; quote it only in its format.
				says := "a malformed value"
				if reHead.MatchString(h) {
					says = "seq:hash " + h
				}
				v.chainProblem(last, chain, ProblemHeadMismatch,
					"the chain's head key says "+says+", but this is the chain's last record in the stream: records were removed from the end, or added without the writer")
			}
		}
	}
	sort.SliceStable(v.problems, func(i, j int) bool { return v.problems[i].less(v.problems[j]) })
	rep.Problems = v.problems
	for _, a := range anchors {
		f := anchored[a.Hash]
		switch {
		case f == nil:
			rep.Problems = append(rep.Problems, Problem{Kind: ProblemAnchor,
				Detail: "anchor " + a.Hash + " is not the hash of any chain's record: records were removed from the end, or the chain was rewritten"})
		case a.Last && !f.last:
			rep.Problems = append(rep.Problems, Problem{Kind: ProblemAnchor,
				Line: f.e.loc.line, StreamID: f.e.loc.streamID, Chain: f.chain, Seq: f.e.seq,
				Detail: "expected the chain's last record, but the chain continues after it"})
		}
	}
	if !rep.OK() {
		return rep, fmt.Errorf("audit: verify: %d problems: %w", len(rep.Problems), ErrVerifyFailed)
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

// walk reconstructs chain from its entries (in input order) and reports
// deleted, inserted, broken-link and reordered records. It returns the
// chain's members in seq order; there is at least one.
//
// The chain is followed by seq. For each seq the record kept is the one
// whose prev is the hash of the record kept for the seq before (as stored,
// or as recomputed, so that a record whose hash alone was changed is
// reported once, as modified, and not again at its successor); among
// several, the one the next seq's records point to; then the first in
// input order. Records not kept for their seq are inserted.
func (v *verifier) walk(chain string, es []*entry) []*entry {
	bySeq := append([]*entry(nil), es...)
	sort.SliceStable(bySeq, func(i, j int) bool { return bySeq[i].seq < bySeq[j].seq })

	var members []*entry
	var prev *entry
	expected := uint64(1)
	for i := 0; i < len(bySeq); {
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
		seq := cands[0].seq
		first := earliest(cands)

		gap := seq > expected
		if gap {
			detail := missing(expected, seq-1)
			if prev == nil {
				detail += ": the start of the chain is gone"
			} else {
				detail += ": the chain jumps from seq " + strconv.FormatUint(prev.seq, 10) +
					" (" + prev.loc.String() + ") to this record"
			}
			v.chainProblem(first, chain, ProblemDeleted, detail)
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
		pointedTo := func(e *entry) bool {
			for _, n := range next {
				if n.prev == e.hash || (e.actual != "" && n.prev == e.actual) {
					return true
				}
			}
			return false
		}
		keep := pick(cands, links, pointedTo)
		if !links(keep) {
			v.chainProblem(keep, chain, ProblemBrokenLink,
				"prev is not the hash of seq "+strconv.FormatUint(prev.seq, 10)+" ("+prev.loc.String()+
					"): that record was rewritten and re-hashed, or this one replaced the original")
		}
		for _, c := range cands {
			if c != keep {
				detail := "a second record for this seq; the chain continues through " + keep.loc.String()
				if c.hash == keep.hash {
					detail = "a copy of " + keep.loc.String()
				}
				v.chainProblem(c, chain, ProblemInserted, detail)
			}
		}
		members = append(members, keep)
		prev = keep
		expected = seq + 1
		i = j
	}

	// In the input, a chain's records must come in seq order. The records
	// out of place are those outside a longest run that is in order; that
	// names the one record moved, not its innocent neighbours.
	inOrder := longestIncreasing(members)
	for i, e := range members {
		if inOrder[i] {
			continue
		}
		var detail string
		if i > 0 && members[i-1].pos > e.pos {
			detail = "comes before seq " + strconv.FormatUint(members[i-1].seq, 10) + " (" + members[i-1].loc.String() + ")"
		} else if i+1 < len(members) {
			detail = "comes after seq " + strconv.FormatUint(members[i+1].seq, 10) + " (" + members[i+1].loc.String() + ")"
		} else {
			detail = "out of order"
		}
		v.chainProblem(e, chain, ProblemReordered, detail)
	}
	return members
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
