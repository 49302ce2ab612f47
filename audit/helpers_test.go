package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"
)

// memSink keeps lines in memory. err, when set, fails every write.
type memSink struct {
	mu    sync.Mutex
	lines []string
	err   error
}

func (m *memSink) Write(_ context.Context, batch []Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	for _, e := range batch {
		m.lines = append(m.lines, string(e.Line))
	}
	return nil
}

func (m *memSink) setErr(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.err = err
}

func (m *memSink) text() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return strings.Join(m.lines, "\n") + "\n"
}

// fixedClock returns a clock that starts at a fixed instant and advances
// by one millisecond and a few nanoseconds per call, so that times have
// fractional digits of varying length.
func fixedClock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2025, 6, 1, 12, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Millisecond + 7*time.Nanosecond)
		return t
	}
}

func newTestLog(t testing.TB, sinks ...Sink) *Log {
	t.Helper()
	l, err := New(Options{Sinks: sinks, Now: fixedClock()})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l
}

const (
	testToken = "tok_abcdefghijklmnopqrstuvwxyz234567"
	testSHA   = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
)

// intent returns a valid intent record.
func intent(n int) Record {
	return Record{
		Kind:             KindIntent,
		RequestID:        "req_a1b2c3" + string(rune('a'+n%26)),
		ForwardID:        "fwd_x" + string(rune('a'+n%26)),
		Caller:           "billing",
		Token:            testToken,
		Destination:      "acme-charges",
		ResolvedIP:       "203.0.113.7",
		TLSVersion:       "TLS 1.3",
		PeerCertSHA256:   testSHA,
		AllowlistVersion: 7,
		AllowlistSHA256:  testSHA,
		Decision:         DecisionAllow,
	}
}

// result returns a valid result record.
func result(n int) Record {
	r := intent(n)
	r.Kind = KindResult
	r.Outcome = OutcomeAnswered
	r.UpstreamStatus = 201
	r.DurationMS = 42
	return r
}

func mustAppend(t testing.TB, l *Log, r Record) Record {
	t.Helper()
	got, err := l.Append(context.Background(), r)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return got
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// lockedBuffer is a bytes.Buffer safe for a slog handler on the Log's,
// a timer's and the test's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
