package audit

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestNewRefuses(t *testing.T) {
	tests := []struct {
		name string
		o    Options
	}{
		{"no sinks", Options{}},
		{"nil sink", Options{Sinks: []Sink{&memSink{}, nil}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.o); err == nil {
				t.Errorf("New(%s) = nil error, want one", tt.name)
			}
		})
	}
}

func TestAppendLinks(t *testing.T) {
	s1, s2 := &memSink{}, &memSink{}
	l := newTestLog(t, s1, s2)
	var recs []Record
	for i := range 5 {
		recs = append(recs, mustAppend(t, l, intent(i)))
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Errorf("record %d: seq = %d, want %d", i, r.Seq, i+1)
		}
		if r.Chain != recs[0].Chain {
			t.Errorf("record %d: chain = %s, want %s", i, r.Chain, recs[0].Chain)
		}
		wantPrev := zeroHash
		if i > 0 {
			wantPrev = recs[i-1].Hash
		}
		if r.Prev != wantPrev {
			t.Errorf("record %d: prev = %s, want %s", i, r.Prev, wantPrev)
		}
		if r.Time.Location() != time.UTC {
			t.Errorf("record %d: time %v not in UTC", i, r.Time)
		}
	}
	if s1.text() != s2.text() {
		t.Errorf("sinks differ:\n%s\n%s", s1.text(), s2.text())
	}
	chain, seq, hash := l.Head()
	if chain != recs[0].Chain || seq != 5 || hash != recs[4].Hash {
		t.Errorf("Head() = %s, %d, %s; want %s, 5, %s", chain, seq, hash, recs[0].Chain, recs[4].Hash)
	}
}

// TestAppendSinkFailure checks fail-closed behaviour: a failed sink makes
// Append fail, and the chain restarts so that no sink holds a hole.
func TestAppendSinkFailure(t *testing.T) {
	good, flaky := &memSink{}, &memSink{}
	l := newTestLog(t, good, flaky)
	first := mustAppend(t, l, intent(1))

	cause := errors.New("disk on fire")
	flaky.setErr(cause)
	_, err := l.Append(context.Background(), intent(2))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, cause) {
		t.Fatalf("Append with a failing sink = %v, want ErrUnavailable wrapping the cause", err)
	}
	if chain, _, _ := l.Head(); chain != "" {
		t.Errorf("Head() chain = %s after a failure, want none", chain)
	}

	flaky.setErr(nil)
	next := mustAppend(t, l, intent(3))
	if next.Chain == first.Chain || next.Seq != 1 || next.Prev != zeroHash {
		t.Errorf("after a failure: chain %s seq %d prev %s; want a new chain at seq 1", next.Chain, next.Seq, next.Prev)
	}
	// Each sink verifies clean: the good sink holds seq 2 of the old
	// chain, the flaky one ends at seq 1.
	for name, s := range map[string]*memSink{"good": good, "flaky": flaky} {
		if rep, err := Verify(strings.NewReader(s.text())); err != nil {
			t.Errorf("Verify(%s sink) = %v, problems %v", name, err, rep.Problems)
		}
	}
}

// TestAppendConcurrent checks that concurrent appends make one linear
// chain.
func TestAppendConcurrent(t *testing.T) {
	sink := &memSink{}
	l := newTestLog(t, sink)
	const workers, each = 8, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if _, err := l.Append(context.Background(), intent(w*each+i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	rep, err := Verify(strings.NewReader(sink.text()))
	if err != nil {
		t.Fatalf("Verify = %v, problems %v", err, rep.Problems)
	}
	if len(rep.Chains) != 1 || rep.Chains[0].Records != workers*each {
		t.Errorf("Verify chains = %+v, want one chain of %d", rep.Chains, workers*each)
	}
}

// TestAppendCanceled: a caller that is gone gets nothing written, and the
// chain goes on undisturbed.
func TestAppendCanceled(t *testing.T) {
	sink := &memSink{}
	l := newTestLog(t, sink)
	first := mustAppend(t, l, intent(1))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Append(ctx, intent(2)); !errors.Is(err, context.Canceled) {
		t.Errorf("Append with a canceled context = %v, want context.Canceled", err)
	}
	next := mustAppend(t, l, intent(3))
	if len(sink.lines) != 2 || next.Chain != first.Chain || next.Seq != 2 {
		t.Errorf("after a canceled append: %d lines, seq %d; want 2 lines and seq 2 of the same chain", len(sink.lines), next.Seq)
	}
}

// slowSink records the size of each group it is handed, taking a while
// per write like an fsync does, so that concurrent appends queue up.
type slowSink struct {
	memSink
	delay  time.Duration
	groups []int
	fail   bool
}

func (s *slowSink) Write(ctx context.Context, batch []Entry) error {
	time.Sleep(s.delay)
	s.mu.Lock()
	s.groups = append(s.groups, len(batch))
	fail := s.fail
	s.mu.Unlock()
	if fail {
		return errors.New("disk full")
	}
	return s.memSink.Write(ctx, batch)
}

func TestGroupCommit(t *testing.T) {
	sink := &slowSink{delay: 5 * time.Millisecond}
	l := newTestLog(t, sink)
	const n = 40
	recs := make([]Record, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { recs[i], errs[i] = l.Append(context.Background(), intent(i+1)) })
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Append %d = %v", i, err)
		}
		if seen[recs[i].Seq] {
			t.Errorf("seq %d returned twice", recs[i].Seq)
		}
		seen[recs[i].Seq] = true
	}
	if len(sink.lines) != n {
		t.Fatalf("sink holds %d lines, want %d", len(sink.lines), n)
	}
	rep, err := Verify(strings.NewReader(strings.Join(sink.lines, "\n") + "\n"))
	if err != nil {
		t.Fatalf("Verify after concurrent appends = %v, %+v", err, rep.Problems)
	}
	if len(sink.groups) >= n {
		t.Errorf("%d writes for %d concurrent appends; want them grouped", len(sink.groups), n)
	}
	t.Logf("%d appends in %d writes: %v", n, len(sink.groups), sink.groups)
}

func TestGroupCommitFailureFailsTheWholeGroup(t *testing.T) {
	sink := &slowSink{delay: 5 * time.Millisecond, fail: true}
	l := newTestLog(t, sink)
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := range 10 {
		wg.Go(func() {
			if _, err := l.Append(context.Background(), intent(i+1)); errors.Is(err, ErrUnavailable) {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if failed.Load() != 10 {
		t.Errorf("%d of 10 appends failed against a failing sink, want all", failed.Load())
	}
	// The next success starts a new chain at seq 1.
	sink.mu.Lock()
	sink.fail = false
	sink.mu.Unlock()
	r, err := l.Append(context.Background(), intent(11))
	if err != nil || r.Seq != 1 {
		t.Errorf("Append after the failures = seq %d, %v; want seq 1 of a new chain", r.Seq, err)
	}
}

// flakySink fails every third write, writing nothing then.
type flakySink struct {
	memSink
	writes int
}

func (s *flakySink) Write(ctx context.Context, batch []Entry) error {
	s.mu.Lock()
	s.writes++
	fail := s.writes%3 == 0
	s.mu.Unlock()
	time.Sleep(100 * time.Microsecond)
	if fail {
		return errors.New("flaky")
	}
	return s.memSink.Write(ctx, batch)
}

// TestAppendStress runs concurrent appends, some of them canceled, against
// a sink that fails now and then: every Append returns once, a success
// returns the record its line holds, a failure returns the zero Record, and
// what the sink holds verifies.
func TestAppendStress(t *testing.T) {
	sink := &flakySink{}
	l := newTestLog(t, sink)
	const workers, each = 16, 40
	type outcome struct {
		rec Record
		err error
	}
	out := make([][]outcome, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				ctx := context.Background()
				if i%7 == 3 {
					c, cancel := context.WithCancel(ctx)
					cancel()
					ctx = c
				}
				rec, err := l.Append(ctx, intent(w*each+i))
				out[w] = append(out[w], outcome{rec, err})
			}
		})
	}
	wg.Wait()
	lines := map[string]string{} // hash → line
	for _, line := range sink.lines {
		var r Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		lines[r.Hash] = line
	}
	ok := 0
	for w := range workers {
		if len(out[w]) != each {
			t.Fatalf("worker %d got %d results, want %d", w, len(out[w]), each)
		}
		for i, o := range out[w] {
			switch {
			case o.err != nil:
				if !reflect.DeepEqual(o.rec, Record{}) {
					t.Errorf("worker %d append %d failed (%v) but returned a record", w, i, o.err)
				}
				if i%7 != 3 && !errors.Is(o.err, ErrUnavailable) {
					t.Errorf("worker %d append %d = %v, want ErrUnavailable", w, i, o.err)
				}
			case i%7 == 3:
				t.Errorf("worker %d append %d with a canceled context succeeded", w, i)
			default:
				ok++
				line, found := lines[o.rec.Hash]
				if !found {
					t.Errorf("worker %d append %d: returned record is not in the sink", w, i)
					continue
				}
				canon, _, err := o.rec.seal()
				if err != nil || string(storedLine(canon, o.rec.Hash)) != line {
					t.Errorf("worker %d append %d: returned record does not match its line", w, i)
				}
			}
		}
	}
	if ok != len(sink.lines) || ok == 0 {
		t.Errorf("%d appends succeeded, sink holds %d lines", ok, len(sink.lines))
	}
	if rep, err := Verify(strings.NewReader(sink.text())); err != nil {
		t.Errorf("Verify = %v, %+v", err, rep.Problems)
	}
}

// TestQueuedResultOutlivesItsDeadline: a result whose deadline passes
// while it waits behind a slow group is still written (the card was sent;
// dropping it lost the record of that); an intent in the same position is
// not (its card will not be sent).
func TestQueuedResultOutlivesItsDeadline(t *testing.T) {
	for _, tt := range []struct {
		name      string
		rec       Record
		wantWrote bool
	}{
		{"result", result(2), true},
		{"denied", Record{Kind: KindDenied, RequestID: "req_d", Caller: "billing", Decision: DecisionDeny, Reason: "destination_not_allowed", Outcome: OutcomeNotSent}, true},
		{"intent", intent(2), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sink := &slowSink{delay: 300 * time.Millisecond}
			l := newTestLog(t, sink)
			done := make(chan struct{})
			go func() { defer close(done); mustAppend(t, l, result(1)) }()
			time.Sleep(50 * time.Millisecond) // the first group is being written
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			_, err := l.Append(ctx, tt.rec)
			<-done
			sink.mu.Lock()
			n := len(sink.lines)
			sink.mu.Unlock()
			if wrote := n == 2; wrote != tt.wantWrote || (err == nil) != tt.wantWrote {
				t.Errorf("Append(%s) after its deadline passed in the queue = %v with %d lines written; want written %v", tt.name, err, n, tt.wantWrote)
			}
		})
	}
}
