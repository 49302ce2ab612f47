package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cardgate/cardgate/internal/redistest"
)

// mirrored is a Log writing to a file and mirroring to a Redis stream.
type mirrored struct {
	srv    *redistest.Server
	path   string
	file   *FileSink
	stream *RedisStreamSink
	log    *Log
}

func newMirrored(t *testing.T, srv *redistest.Server, path string) *mirrored {
	t.Helper()
	fs, err := OpenFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	m := &mirrored{srv: srv, path: path, file: fs, stream: newStreamSink(t, srv.Client(), 300*time.Millisecond)}
	if m.log, err = New(Options{Sinks: []Sink{fs}, Mirror: m.stream, Now: fixedClock()}); err != nil {
		t.Fatal(err)
	}
	return m
}

// forward appends an intent and, if it was accepted, a result, as the
// forwarder does. It reports whether the intent was accepted.
func (m *mirrored) forward(t *testing.T, n int) bool {
	t.Helper()
	if _, err := m.log.Append(context.Background(), intent(n)); err != nil {
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("intent refused with %v, want ErrUnavailable", err)
		}
		return false
	}
	mustAppend(t, m.log, result(n))
	return true
}

// forwards runs n forwards on 4 goroutines and returns how many intents
// were accepted.
func (m *mirrored) forwards(t *testing.T, n int) int {
	t.Helper()
	var mu sync.Mutex
	accepted := 0
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				if m.forward(t, i) {
					mu.Lock()
					accepted++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return accepted
}

// fileLines returns the file's records.
func (m *mirrored) fileLines(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(m.path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
}

// streamLines returns the stream's records, in stream order.
func (m *mirrored) streamLines(t *testing.T) []string {
	t.Helper()
	msgs, err := m.srv.Client().XRange(context.Background(), testStream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, msg := range msgs {
		out = append(out, msg.Values[StreamField].(string))
	}
	return out
}

// assertAgree checks that the file and the stream hold the same records in
// the same order, and that both verify.
func (m *mirrored) assertAgree(t *testing.T) {
	t.Helper()
	file, stream := m.fileLines(t), m.streamLines(t)
	if diff := cmp.Diff(file, stream); diff != "" {
		t.Errorf("file (-) and stream (+) differ:\n%s", diff)
	}
	if rep, err := Verify(strings.NewReader(strings.Join(file, "\n") + "\n")); err != nil {
		t.Errorf("Verify(file) = %v: %v", err, rep.Problems)
	}
	if rep, err := VerifyStream(context.Background(), m.srv.Client(), testStream); err != nil {
		t.Errorf("VerifyStream = %v: %v", err, rep.Problems)
	}
}

// TestMirrorRedisOutage stops the stream's redis-server mid-run and starts
// it again, with its data and without. While the stream lacks records the
// file holds, every intent is refused (a forward would be), and records of
// forwards already under way still reach the file; once Reconcile has run,
// the file and the stream hold the same records.
func TestMirrorRedisOutage(t *testing.T) {
	for _, keepData := range []bool{true, false} {
		name := "restart empty"
		if keepData {
			name = "restart with its data"
		}
		t.Run(name, func(t *testing.T) {
			srv := redistest.StartWith(t, redistest.Options{Persist: keepData})
			m := newMirrored(t, srv, filepath.Join(t.TempDir(), "audit.log"))
			ctx := context.Background()

			if got := m.forwards(t, 40); got != 40 {
				t.Fatalf("%d of 40 forwards accepted with both sinks up", got)
			}
			// Five forwards under way when Redis goes: their intents are in
			// both sinks, their results come during the outage.
			for i := range 5 {
				mustAppend(t, m.log, intent(100+i))
			}
			if keepData {
				srv.RDB()
			}
			srv.Stop()

			for i := range 5 {
				if _, err := m.log.Append(ctx, result(100+i)); err != nil {
					t.Errorf("result of a forward under way = %v, want it accepted into the file", err)
				}
			}
			if err := m.log.MirrorErr(); !errors.Is(err, ErrMirrorBehind) {
				t.Fatalf("MirrorErr() = %v during the outage, want ErrMirrorBehind", err)
			}
			if got := m.forwards(t, 20); got != 0 {
				t.Errorf("%d forwards accepted while the stream lacked records, want 0", got)
			}
			mustAppend(t, m.log, Record{Kind: KindDenied, RequestID: "req_denied", Caller: "billing", Decision: DecisionDeny, Reason: "destination_not_allowed", Outcome: OutcomeNotSent})
			if err := m.log.Reconcile(ctx); err == nil {
				t.Error("Reconcile with Redis down = nil, want an error")
			}

			srv.Restart()
			// Redis is back but the sinks still disagree: still refused.
			if m.forward(t, 200) {
				t.Error("a forward was accepted after Redis came back, before the stream caught up")
			}
			if err := m.log.Reconcile(ctx); err != nil {
				t.Fatalf("Reconcile after the restart = %v", err)
			}
			if err := m.log.MirrorErr(); err != nil {
				t.Errorf("MirrorErr() after Reconcile = %v, want nil", err)
			}
			if got := m.forwards(t, 20); got != 20 {
				t.Errorf("%d of 20 forwards accepted after Reconcile, want all", got)
			}
			m.assertAgree(t)
			// Refused intents were written nowhere: 40 + 5 + 20 accepted.
			if n := strings.Count(strings.Join(m.fileLines(t), "\n"), `"kind":"intent"`); n != 65 {
				t.Errorf("the file holds %d intent records, want the 65 accepted ones", n)
			}
			if markers, _ := filepath.Glob(m.path + markerPrefix + "*"); len(markers) != 0 {
				t.Errorf("lag markers left after Reconcile: %v", markers)
			}
		})
	}
}

// TestMirrorLagSurvivesRestart: a gateway that stops while the stream lags
// leaves a marker; the next one on the same file refuses intents until it
// has copied what the stream lacks.
func TestMirrorLagSurvivesRestart(t *testing.T) {
	srv := redistest.Start(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	m := newMirrored(t, srv, path)
	ctx := context.Background()
	m.forwards(t, 10)
	mustAppend(t, m.log, intent(50))
	srv.Stop()
	mustAppend(t, m.log, result(50))
	m.file.Close()
	srv.Restart() // empty: the stream lost everything too

	m2 := newMirrored(t, srv, path)
	if err := m2.log.MirrorErr(); !errors.Is(err, ErrMirrorBehind) {
		t.Fatalf("MirrorErr() of the next Log = %v, want ErrMirrorBehind from the marker", err)
	}
	if m2.forward(t, 60) {
		t.Error("the next Log accepted an intent before reconciling the earlier lag")
	}
	if err := m2.log.Reconcile(ctx); err != nil {
		t.Fatalf("Reconcile = %v", err)
	}
	if !m2.forward(t, 61) {
		t.Error("intent refused after Reconcile")
	}
	m2.assertAgree(t)
}

// TestMirrorNeverCopiesAnEditedRecord: a record edited in the file while
// the stream lags is not copied, and the lag stays reported.
func TestMirrorNeverCopiesAnEditedRecord(t *testing.T) {
	srv := redistest.Start(t)
	m := newMirrored(t, srv, filepath.Join(t.TempDir(), "audit.log"))
	ctx := context.Background()
	m.forwards(t, 4)
	mustAppend(t, m.log, intent(9))
	srv.Stop()
	mustAppend(t, m.log, result(9))
	raw, err := os.ReadFile(m.path)
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(raw, []byte(`"upstream_status":201,"duration_ms":42,"hash"`), []byte(`"upstream_status":500,"duration_ms":42,"hash"`), 1)
	if bytes.Equal(edited, raw) {
		t.Fatal("test did not edit the file")
	}
	// Same length: the edit leaves every offset in place.
	if err := os.WriteFile(m.path, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	err = m.log.Reconcile(ctx)
	if err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("Reconcile over an edited record = %v, want it refused", err)
	}
	if m.log.MirrorErr() == nil {
		t.Error("MirrorErr() = nil with an edited record not copied")
	}
	for _, line := range m.streamLines(t) {
		if strings.Contains(line, `"upstream_status":500`) {
			t.Error("the edited record reached the stream")
		}
	}
}

func TestNewRefusesMirrorWithoutAFile(t *testing.T) {
	srv := redistest.Start(t)
	stream := newStreamSink(t, srv.Client(), 0)
	fs, err := OpenFileSink(filepath.Join(t.TempDir(), "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	for name, sinks := range map[string][]Sink{
		"no primary":       nil,
		"not a file":       {&memSink{}},
		"two primaries":    {fs, &memSink{}},
		"file is a mirror": {stream},
	} {
		if _, err := New(Options{Sinks: sinks, Mirror: stream}); err == nil {
			t.Errorf("New(%s with a mirror) = nil error", name)
		}
	}
}
