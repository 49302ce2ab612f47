package audit

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestVerifyNamesACrashsTornLine: a machine crash between a write and its
// fsync (the window AppendWritten opens) can leave the last record cut
// short, or the file's new size on disk with its data never written (NUL
// bytes). The next start ends the line, says so, and begins a new chain; Verify
// fails, and says which of the two it saw rather than only "not a JSON
// object", so an auditor can tell a crash from an edit.
func TestVerifyNamesACrashsTornLine(t *testing.T) {
	tests := []struct {
		name string
		tear func(last []byte) []byte
		want string
	}{
		{"cut short", func(last []byte) []byte { return last[:len(last)/2] },
			"line 2: malformed: an incomplete record: a write cut short, as a crash before its fsync leaves"},
		{"never written", func(last []byte) []byte { return make([]byte, len(last)-1) },
			"line 2: malformed: NUL bytes in the line: data never written, as a machine crash before an fsync leaves"},
		{"written in part", func(last []byte) []byte {
			b := bytes.Clone(last[:len(last)-1])
			clear(b[len(b)/2:])
			return b
		}, "line 2: malformed: NUL bytes in the line: data never written, as a machine crash before an fsync leaves"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			fs, err := OpenFileSink(path)
			if err != nil {
				t.Fatal(err)
			}
			l, err := New(Options{Sinks: []Sink{fs}, Now: fixedClock()})
			if err != nil {
				t.Fatal(err)
			}
			mustAppend(t, l, intent(1))
			if _, err := l.AppendWritten(context.Background(), result(1)); err != nil {
				t.Fatal(err)
			}
			fs.Close()
			b := mustRead(t, path)
			lines := bytes.SplitAfter(b, []byte("\n"))
			torn := append(bytes.Clone(lines[0]), tt.tear(lines[1])...)
			if err := os.WriteFile(path, torn, 0o600); err != nil {
				t.Fatal(err)
			}
			// The next start.
			fs, err = OpenFileSink(path)
			if err != nil {
				t.Fatalf("OpenFileSink after a torn line = %v", err)
			}
			var logs bytes.Buffer
			l, err = New(Options{Sinks: []Sink{fs}, Now: fixedClock(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(logs.String(), "level=WARN msg=\"audit file's last line was incomplete") {
				t.Errorf("the start did not say that it found and ended a torn last line; log:\n%s", logs.String())
			}
			mustAppend(t, l, intent(2))
			fs.Close()

			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rep, err := Verify(f)
			if err == nil {
				t.Fatal("Verify passed a file with a torn record")
			}
			var got []string
			for _, p := range rep.Problems {
				got = append(got, p.String())
			}
			if diff := cmp.Diff([]string{tt.want}, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if n := len(rep.OutcomeUnknown); n != 2 {
				t.Errorf("%d intents listed as outcome unknown, want 2: the first forward's result was lost", n)
			}
		})
	}
}

// TestOpenCleanFileSaysNothingTorn: a file whose last line is complete is
// not reported as torn.
func TestOpenCleanFileSaysNothingTorn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	for range 2 { // created, then reopened with a record in it
		fs, err := OpenFileSink(path)
		if err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		l, err := New(Options{Sinks: []Sink{fs}, Now: fixedClock(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(logs.String(), "incomplete") {
			t.Errorf("a clean file was reported torn; log:\n%s", logs.String())
		}
		mustAppend(t, l, intent(1))
		fs.Close()
	}
}
