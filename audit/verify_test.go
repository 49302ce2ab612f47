package audit

import (
	"encoding/json"
	"errors"
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
