package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// twoChains returns a log of two writers, A and B, appending alternately
// into one sink: A seq k is on line 2k-1, B seq k on line 2k, 12 lines.
func twoChains(t *testing.T) (lines []string, a, b []Record) {
	t.Helper()
	sink := &memSink{}
	la, lb := newTestLog(t, sink), newTestLog(t, sink)
	for i := range 6 {
		a = append(a, mustAppend(t, la, intent(i)))
		b = append(b, mustAppend(t, lb, result(i)))
	}
	return sink.lines, a, b
}

// forge returns the stored form of r after edit, with its hash
// recomputed: what someone who can write the log can produce.
func forge(t *testing.T, r Record, edit func(*Record)) string {
	t.Helper()
	edit(&r)
	canon, hash, err := r.seal()
	if err != nil {
		t.Fatal(err)
	}
	return string(storedLine(canon, hash))
}

func del(lines []string, i int) []string {
	return append(append([]string(nil), lines[:i]...), lines[i+1:]...)
}

func insert(lines []string, i int, l string) []string {
	out := append([]string(nil), lines[:i]...)
	out = append(out, l)
	return append(out, lines[i:]...)
}

func TestVerifyTampering(t *testing.T) {
	lines, a, b := twoChains(t)
	A := a[0].Chain
	// Line numbers are 1-based; slice indexes 0-based: A seq 3 is line 5,
	// index 4.

	tests := []struct {
		name    string
		tamper  func([]string) []string
		anchors []Anchor
		noEOL   bool // leave out the final newline
		want    []Problem
	}{
		{
			name:   "untouched",
			tamper: func(l []string) []string { return l },
		},
		{
			name: "modify a field",
			tamper: func(l []string) []string {
				l[4] = strings.Replace(l[4], `"caller":"billing"`, `"caller":"payouts"`, 1)
				return l
			},
			want: []Problem{{Kind: ProblemModified, Line: 5, Chain: A, Seq: 3}},
		},
		{
			name: "modify only spacing",
			tamper: func(l []string) []string {
				l[4] = strings.Replace(l[4], `"caller":"billing"`, `"caller": "billing"`, 1)
				return l
			},
			want: []Problem{{Kind: ProblemModified, Line: 5, Chain: A, Seq: 3}},
		},
		{
			name:   "delete a line",
			tamper: func(l []string) []string { return del(l, 4) },
			// A seq 4, first record after the hole, moved up to line 6.
			want: []Problem{{Kind: ProblemDeleted, Line: 6, Chain: A, Seq: 4}},
		},
		{
			name:   "delete the first line",
			tamper: func(l []string) []string { return del(l, 0) },
			want:   []Problem{{Kind: ProblemDeleted, Line: 2, Chain: A, Seq: 2}},
		},
		{
			name: "insert a forged line with a recomputed hash",
			tamper: func(l []string) []string {
				// A second seq 4 for chain A, linked to seq 3, after line 5.
				f := forge(t, a[3], func(r *Record) { r.Destination = "evil-processor"; r.Hash = "" })
				return insert(l, 5, f)
			},
			want: []Problem{{Kind: ProblemInserted, Line: 6, Chain: A, Seq: 4}},
		},
		{
			name: "insert a forged line with a broken link",
			tamper: func(l []string) []string {
				f := forge(t, a[3], func(r *Record) { r.Prev = testSHA; r.Hash = "" })
				return insert(l, 9, f)
			},
			want: []Problem{{Kind: ProblemInserted, Line: 10, Chain: A, Seq: 4}},
		},
		{
			name:   "insert a copy of a line",
			tamper: func(l []string) []string { return insert(l, 6, l[4]) },
			want:   []Problem{{Kind: ProblemInserted, Line: 7, Chain: A, Seq: 3}},
		},
		{
			name: "swap two lines of a chain",
			tamper: func(l []string) []string {
				l[4], l[6] = l[6], l[4] // A seq 3 and A seq 4
				return l
			},
			// A seq 3 is now on line 7, after seq 4.
			want: []Problem{{Kind: ProblemReordered, Line: 7, Chain: A, Seq: 3}},
		},
		{
			name: "swap lines of different chains",
			tamper: func(l []string) []string {
				l[4], l[5] = l[5], l[4]
				return l
			},
			// Chains interleave freely; only order within a chain counts.
		},
		{
			name: "move one line to the end",
			tamper: func(l []string) []string {
				m := l[2] // A seq 2
				return append(del(l, 2), m)
			},
			want: []Problem{{Kind: ProblemReordered, Line: 12, Chain: A, Seq: 2}},
		},
		{
			name: "change a hash",
			tamper: func(l []string) []string {
				l[4] = strings.Replace(l[4], a[2].Hash, testSHA, 1)
				return l
			},
			// Reported once: seq 4 still points at the true hash of seq 3.
			want: []Problem{{Kind: ProblemModified, Line: 5, Chain: A, Seq: 3}},
		},
		{
			name: "rewrite a record and recompute its hash",
			tamper: func(l []string) []string {
				l[4] = forge(t, a[2], func(r *Record) { r.Destination = "evil-processor"; r.Hash = "" })
				return l
			},
			want: []Problem{{Kind: ProblemBrokenLink, Line: 7, Chain: A, Seq: 4}},
		},
		{
			name:   "truncate the tail",
			tamper: func(l []string) []string { return l[:9] },
			// Undetectable without an anchor: what remains is valid.
		},
		{
			name:    "truncate the tail, with the last hash as anchor",
			tamper:  func(l []string) []string { return l[:9] },
			anchors: []Anchor{{Hash: a[5].Hash, Last: true}, {Hash: b[5].Hash, Last: true}},
			want: []Problem{
				{Kind: ProblemAnchor},
				{Kind: ProblemAnchor},
			},
		},
		{
			name:    "truncate the tail, an earlier anchor still present",
			tamper:  func(l []string) []string { return l[:9] },
			anchors: []Anchor{{Hash: a[3].Hash}},
		},
		{
			name:    "log grew past a last anchor",
			tamper:  func(l []string) []string { return l },
			anchors: []Anchor{{Hash: a[3].Hash, Last: true}},
			want:    []Problem{{Kind: ProblemAnchor, Line: 7, Chain: A, Seq: 4}},
		},
		{
			name: "append a forged record at the end",
			tamper: func(l []string) []string {
				f := forge(t, a[5], func(r *Record) { r.Seq, r.Prev, r.Hash = 7, a[5].Hash, "" })
				return append(l, f)
			},
			// Undetectable by hashes alone (documented); a Last anchor
			// catches it.
			anchors: []Anchor{{Hash: a[5].Hash, Last: true}},
			want:    []Problem{{Kind: ProblemAnchor, Line: 11, Chain: A, Seq: 6}},
		},
		{
			name: "replace a line with garbage",
			tamper: func(l []string) []string {
				l[4] = "not json"
				return l
			},
			want: []Problem{
				{Kind: ProblemMalformed, Line: 5},
				{Kind: ProblemDeleted, Line: 7, Chain: A, Seq: 4},
			},
		},
		{
			name: "add an unknown field",
			tamper: func(l []string) []string {
				l[4] = strings.Replace(l[4], `{"chain"`, `{"note":"x","chain"`, 1)
				return l
			},
			want: []Problem{
				{Kind: ProblemMalformed, Line: 5},
				{Kind: ProblemDeleted, Line: 7, Chain: A, Seq: 4},
			},
		},
		{
			name: "card number in a forged record",
			tamper: func(l []string) []string {
				l[4] = forge(t, a[2], func(r *Record) { r.Caller = "4242424242424242"; r.Hash = "" })
				return l
			},
			want: []Problem{
				{Kind: ProblemMalformed, Line: 5, Chain: A, Seq: 3},
				{Kind: ProblemBrokenLink, Line: 7, Chain: A, Seq: 4},
			},
		},
		{
			name:   "empty line",
			tamper: func(l []string) []string { return insert(l, 3, "") },
			want:   []Problem{{Kind: ProblemMalformed, Line: 4}},
		},
		{
			name:   "no newline at the end",
			tamper: func(l []string) []string { return l },
			noEOL:  true,
			want:   []Problem{{Kind: ProblemMalformed, Line: 12}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := strings.Join(tt.tamper(append([]string(nil), lines...)), "\n")
			if !tt.noEOL {
				text += "\n"
			}
			rep, err := Verify(strings.NewReader(text), tt.anchors...)
			if rep == nil {
				t.Fatalf("Verify returned no report: %v", err)
			}
			if got, want := err != nil, len(tt.want) > 0; got != want || (got && !errors.Is(err, ErrVerifyFailed)) {
				t.Errorf("Verify error = %v, want failure %v", err, want)
			}
			ignore := cmpopts.IgnoreFields(Problem{}, "Detail")
			if diff := cmp.Diff(tt.want, rep.Problems, ignore, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Verify problems (-want +got):\n%s\nall: %v", diff, rep.Problems)
			}
			for _, p := range rep.Problems {
				t.Log(p)
				if strings.Contains(p.String(), "4242") || strings.Contains(p.String(), "evil") || strings.Contains(p.String(), "note") {
					t.Errorf("problem quotes record contents: %s", p)
				}
			}
		})
	}
}

func TestVerifyReport(t *testing.T) {
	lines, a, b := twoChains(t)
	rep, err := Verify(strings.NewReader(strings.Join(lines, "\n") + "\n"))
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	want := &Report{
		Records: 12,
		Chains: []ChainReport{
			{Chain: a[0].Chain, Records: 6, FirstSeq: 1, LastSeq: 6, LastHash: a[5].Hash},
			{Chain: b[0].Chain, Records: 6, FirstSeq: 1, LastSeq: 6, LastHash: b[5].Hash},
		},
	}
	if diff := cmp.Diff(want, rep, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Verify report (-want +got):\n%s", diff)
	}
}

// TestVerifyRoundTrip checks that every record Append returns is read back
// as equal, so Verify checks exactly what was written.
func TestVerifyRoundTrip(t *testing.T) {
	sink := &memSink{}
	l := newTestLog(t, sink)
	want := mustAppend(t, l, result(3))
	var got Record
	if err := json.Unmarshal([]byte(sink.lines[0]), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("record read back (-want +got):\n%s", diff)
	}
}

func TestVerifyEmpty(t *testing.T) {
	rep, err := Verify(strings.NewReader(""))
	if err != nil || rep.Records != 0 || len(rep.Chains) != 0 {
		t.Errorf("Verify(empty) = %+v, %v; want an empty report", rep, err)
	}
	rep, err = Verify(strings.NewReader(""), Anchor{Hash: testSHA})
	if !errors.Is(err, ErrVerifyFailed) || len(rep.Problems) != 1 {
		t.Errorf("Verify(empty, anchor) = %+v, %v; want the anchor reported missing", rep, err)
	}
}

// oneChain returns a log of one writer with n records.
func oneChain(t *testing.T, n int) (lines []string, recs []Record) {
	t.Helper()
	sink := &memSink{}
	l := newTestLog(t, sink)
	for i := range n {
		recs = append(recs, mustAppend(t, l, intent(i)))
	}
	return sink.lines, recs
}

// TestVerifyWindow checks the verdicts of a verifier that holds few
// records per chain: on changes that later records do not take back
// (everything but a record moved far), they are those of one that holds
// them all, however long the log after the change.
func TestVerifyWindow(t *testing.T) {
	lines, recs := oneChain(t, 40)
	A := recs[0].Chain
	const window = 4
	tests := []struct {
		name   string
		tamper func([]string) []string
		// want is the problems with the small window; nil: the same as
		// with the whole log held.
		want []Problem
	}{
		{name: "untouched", tamper: func(l []string) []string { return l }},
		{name: "delete a line", tamper: func(l []string) []string { return del(l, 9) }},
		{name: "delete lines", tamper: func(l []string) []string { return del(del(l, 9), 9) }},
		{name: "insert a copy", tamper: func(l []string) []string { return insert(l, 12, l[9]) }},
		{name: "insert a copy far after", tamper: func(l []string) []string { return insert(l, 30, l[9]) }},
		{name: "insert a copy before the original", tamper: func(l []string) []string { return insert(l, 3, l[9]) }},
		{name: "swap neighbours", tamper: func(l []string) []string {
			l[9], l[10] = l[10], l[9]
			return l
		}},
		{name: "move a line within the window", tamper: func(l []string) []string {
			m := l[9]
			return insert(del(l, 9), 12, m)
		}},
		{name: "rewrite a record and recompute its hash", tamper: func(l []string) []string {
			l[9] = forge(t, recs[9], func(r *Record) { r.Destination = "evil-processor"; r.Hash = "" })
			return l
		}},
		{name: "insert a forged record", tamper: func(l []string) []string {
			return insert(l, 10, forge(t, recs[9], func(r *Record) { r.Destination = "evil-processor"; r.Hash = "" }))
		}},
		{name: "replace a line with garbage", tamper: func(l []string) []string {
			l[9] = "not json"
			return l
		}},
		{
			name: "move a line farther than the window",
			tamper: func(l []string) []string {
				m := l[9] // seq 10
				return insert(del(l, 9), 30, m)
			},
			// Its seq is decided missing before it comes; when it does,
			// it is out of place.
			want: []Problem{
				{Kind: ProblemDeleted, Line: 10, Chain: A, Seq: 11},
				{Kind: ProblemReordered, Line: 31, Chain: A, Seq: 10},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := strings.Join(tt.tamper(append([]string(nil), lines...)), "\n") + "\n"
			all, _ := Verify(strings.NewReader(text))
			got, err := verifyReader(strings.NewReader(text), window, nil)
			if (err != nil) != !got.OK() {
				t.Errorf("verifyReader error = %v with problems %v", err, got.Problems)
			}
			want := tt.want
			opts := []cmp.Option{cmpopts.EquateEmpty()}
			if want == nil {
				want = all.Problems
				if diff := cmp.Diff(all.Chains, got.Chains); diff != "" {
					t.Errorf("verifyReader chains (-all +window):\n%s", diff)
				}
			} else {
				opts = append(opts, cmpopts.IgnoreFields(Problem{}, "Detail"))
			}
			if diff := cmp.Diff(want, got.Problems, opts...); diff != "" {
				t.Errorf("verifyReader problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestVerifyLateCopy: a record that repeats a seq the chain passed long
// before is inserted, though the record kept for the seq is no longer
// known.
func TestVerifyLateCopy(t *testing.T) {
	lines, recs := oneChain(t, 10)
	text := strings.Join(append(lines, lines[2]), "\n") + "\n"
	rep, err := Verify(strings.NewReader(text))
	if !errors.Is(err, ErrVerifyFailed) {
		t.Fatalf("Verify = %v, want failure", err)
	}
	want := []Problem{{Kind: ProblemInserted, Line: 11, Chain: recs[0].Chain, Seq: 3,
		Detail: "a second record for this seq, after the chain had passed it; the chain is at seq 9 (line 9)"}}
	if diff := cmp.Diff(want, rep.Problems); diff != "" {
		t.Errorf("Verify problems (-want +got):\n%s", diff)
	}
}

// TestVerifyProblemsBound: a file that is not a log at all is not kept
// as one problem per line.
func TestVerifyProblemsBound(t *testing.T) {
	const extra = 3
	text := strings.Repeat("not json\n", MaxProblems+extra)
	rep, err := Verify(strings.NewReader(text), Anchor{Hash: testSHA})
	if !errors.Is(err, ErrVerifyFailed) {
		t.Fatalf("Verify = %v, want failure", err)
	}
	if got, want := len(rep.Problems), MaxProblems+1; got != want {
		t.Errorf("Verify lists %d problems, want %d (and the anchor)", got, want)
	}
	if rep.Omitted != extra || rep.NumProblems() != MaxProblems+extra+1 {
		t.Errorf("Verify Omitted = %d, NumProblems = %d, want %d, %d", rep.Omitted, rep.NumProblems(), extra, MaxProblems+extra+1)
	}
	if last := rep.Problems[len(rep.Problems)-1]; last.Kind != ProblemAnchor {
		t.Errorf("last problem listed = %v, want the anchor's", last)
	}
	if want := fmt.Sprintf("%d problems", MaxProblems+extra+1); !strings.Contains(err.Error(), want) {
		t.Errorf("Verify error = %q, want it to count %s", err, want)
	}
}

// TestVerifyGarbageCannotBuryTampering: a deletion stays listed however
// many garbage lines surround it, since the bound on problems is per kind.
func TestVerifyGarbageCannotBuryTampering(t *testing.T) {
	sink := &memSink{}
	l := newTestLog(t, sink)
	for i := range 50 {
		mustAppend(t, l, intent(i))
	}
	lines := strings.SplitAfter(sink.text(), "\n")
	garbage := strings.Repeat("not json\n", MaxProblems+1)
	// Line 5 deleted; garbage before and after the log.
	text := garbage + strings.Join(lines[:4], "") + strings.Join(lines[5:], "") + garbage
	rep, err := Verify(strings.NewReader(text))
	if !errors.Is(err, ErrVerifyFailed) {
		t.Fatalf("Verify = %v, want failure", err)
	}
	var deleted int
	for _, p := range rep.Problems {
		if p.Kind == ProblemDeleted {
			deleted++
		}
	}
	if deleted != 1 {
		t.Errorf("Verify lists %d deletions among %d problems (%d omitted), want the one", deleted, len(rep.Problems), rep.Omitted)
	}
}
