package main

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
)

type failingCloser struct{ closed *int }

func (c failingCloser) Close() error {
	*c.closed++
	return errors.New("fdatasync: input/output error")
}

// A closer that fails at shutdown (the audit file's final fsync, say) is
// logged, and every other closer still runs.
func TestGatewayCloseLogsFailures(t *testing.T) {
	var buf bytes.Buffer
	n := 0
	g := &gateway{
		log:     slog.New(slog.NewJSONHandler(&buf, nil)),
		closers: []io.Closer{failingCloser{&n}, failingCloser{&n}},
	}
	g.close()
	if n != 2 {
		t.Fatalf("%d closers ran, want 2", n)
	}
	if got := strings.Count(buf.String(), "closing at shutdown failed"); got != 2 {
		t.Fatalf("log has %d close failures, want 2:\n%s", got, buf.String())
	}
	if !strings.Contains(buf.String(), "input/output error") {
		t.Fatalf("log does not say why:\n%s", buf.String())
	}
}
