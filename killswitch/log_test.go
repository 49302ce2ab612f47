package killswitch

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestRefreshLogs: a start with nothing disabled logs nothing (it used to
// warn "state changed" with disabled=null at every start); a start with
// something disabled, and every later change, warns with the list.
func TestRefreshLogs(t *testing.T) {
	type line struct {
		Level    string   `json:"level"`
		Msg      string   `json:"msg"`
		Disabled []string `json:"disabled"`
	}
	ctx := context.Background()
	tests := []struct {
		name    string
		initial []string // disabled before the first read
		then    func(st Store) error
		want    []line
	}{
		{"nothing disabled at start", nil, nil, nil},
		{"disabled at start", []string{"acme"}, nil,
			[]line{{"WARN", "kill switch: destinations disabled", []string{"acme"}}}},
		{"disabled later", nil, func(st Store) error { return st.Disable(ctx, "acme", Switch{Reason: "test"}) },
			[]line{{"WARN", "kill switch state changed", []string{"acme"}}}},
		{"enabled again", []string{"acme"}, func(st Store) error { return st.Enable(ctx, "acme") },
			[]line{{"WARN", "kill switch: destinations disabled", []string{"acme"}}, {"WARN", "kill switch state changed", []string{}}}},
		{"unchanged", []string{"acme"}, func(Store) error { return nil },
			[]line{{"WARN", "kill switch: destinations disabled", []string{"acme"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := NewFileStore(filepath.Join(t.TempDir(), "killswitch.json"))
			for _, id := range tt.initial {
				if err := st.Disable(ctx, id, Switch{Reason: "test", At: time.Now()}); err != nil {
					t.Fatal(err)
				}
			}
			var buf bytes.Buffer
			w, err := NewWatcher(WatcherOptions{Store: st, Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			if tt.then != nil {
				if err := tt.then(st); err != nil {
					t.Fatal(err)
				}
				if err := w.Refresh(ctx); err != nil {
					t.Fatal(err)
				}
			}
			var got []line
			for _, raw := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
				if len(raw) == 0 {
					continue
				}
				var l line
				if err := json.Unmarshal(raw, &l); err != nil {
					t.Fatalf("log line %q: %v", raw, err)
				}
				got = append(got, l)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("log lines (-want +got):\n%s", diff)
			}
		})
	}
}
