package audit

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestVerifyListsIntentsWithoutResults: an intent with no result record
// for its forward is listed as outcome unknown, in input order, and does
// not fail the verification (it is not tampering).
func TestVerifyListsIntentsWithoutResults(t *testing.T) {
	withID := func(r Record, id string) Record { r.ForwardID = id; return r }
	tests := []struct {
		name string
		recs []Record
		want []string // forward ids with outcome unknown
	}{
		{"every intent has its result", []Record{withID(intent(0), "fwd_a"), withID(result(0), "fwd_a")}, nil},
		{"the last result is missing", []Record{withID(intent(0), "fwd_a"), withID(result(0), "fwd_a"), withID(intent(1), "fwd_b")}, []string{"fwd_b"}},
		{"interleaved forwards", []Record{
			withID(intent(0), "fwd_a"), withID(intent(1), "fwd_b"), withID(intent(2), "fwd_c"),
			withID(result(1), "fwd_b"), withID(intent(3), "fwd_d"), withID(result(3), "fwd_d"),
		}, []string{"fwd_a", "fwd_c"}},
		{"a result without an intent is not listed", []Record{withID(result(0), "fwd_a")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &memSink{}
			l := newTestLog(t, sink)
			for _, r := range tt.recs {
				mustAppend(t, l, r)
			}
			rep, err := Verify(bytes.NewReader([]byte(sink.text())))
			if err != nil {
				t.Fatalf("Verify = %v, want no problem (%v)", err, rep.Problems)
			}
			var got []string
			for _, o := range rep.OutcomeUnknown {
				got = append(got, o.ForwardID)
				if o.Line == 0 || o.Chain == "" || o.Seq == 0 {
					t.Errorf("open intent %+v lacks its place in the log", o)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("OutcomeUnknown (-want +got):\n%s", diff)
			}
		})
	}
}

// TestVerifyOpenIntentsMemory: Verify's memory for pairing follows the
// forwards open at once, not the length of the log, and an open intent
// early in a long log is still found.
func TestVerifyOpenIntentsMemory(t *testing.T) {
	sink := &memSink{}
	l := newTestLog(t, sink)
	first := intent(0)
	first.ForwardID = "fwd_lost"
	mustAppend(t, l, first)
	for i := range 5000 {
		id := fmt.Sprintf("fwd_%d", i)
		in, res := intent(i), result(i)
		in.ForwardID, res.ForwardID = id, id
		mustAppend(t, l, in)
		mustAppend(t, l, res)
	}
	v := newVerifier(reorderWindow, nil)
	for i, line := range bytes.Split(bytes.TrimSuffix([]byte(sink.text()), []byte("\n")), []byte("\n")) {
		v.add(location{line: i + 1}, line)
	}
	if n := len(v.intents.order); n > 2*len(v.intents.open)+64 {
		t.Errorf("after 5,000 settled forwards the verifier keeps %d ids for %d open intents", n, len(v.intents.open))
	}
	rep, err := v.finish(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.OutcomeUnknown) != 1 || rep.OutcomeUnknown[0].ForwardID != "fwd_lost" || rep.OutcomeUnknown[0].Line != 1 {
		t.Errorf("OutcomeUnknown = %+v, want fwd_lost at line 1", rep.OutcomeUnknown)
	}
}
