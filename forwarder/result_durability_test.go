package forwarder

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/audit"
	"github.com/cardgate/cardgate/idempotency"
	"github.com/cardgate/cardgate/internal/redistest"
)

// callsAuditor is a real *audit.Log that notes which of its appends the
// forwarder called for each record kind: Append waits for the fsync,
// AppendWritten answers once the record is written.
type callsAuditor struct {
	log *audit.Log

	mu    sync.Mutex
	calls []string
}

func (a *callsAuditor) note(call string, k audit.Kind) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, call+" "+string(k))
}

func (a *callsAuditor) Append(ctx context.Context, rec audit.Record) (audit.Record, error) {
	a.note("Append", rec.Kind)
	return a.log.Append(ctx, rec)
}

func (a *callsAuditor) AppendWritten(ctx context.Context, rec audit.Record) (audit.Record, error) {
	a.note("AppendWritten", rec.Kind)
	return a.log.AppendWritten(ctx, rec)
}

// TestResultRecordOffTheCriticalPath: the intent is appended durably
// (Append) before the send; the result is appended without waiting for
// its fsync (AppendWritten), except when an idempotency claim will store
// the answer for replay: a stored answer must never exist for a forward
// whose result a machine crash could still take out of the audit log. In
// every case the result record is in the audit file when Forward returns.
func TestResultRecordOffTheCriticalPath(t *testing.T) {
	tests := []struct {
		name string
		idem bool
		want []string
	}{
		{"no idempotency key", false, []string{"Append intent", "AppendWritten result"}},
		{"with an idempotency key", true, []string{"Append intent", "Append result"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := t.TempDir() + "/audit.log"
			sink, err := audit.OpenFileSink(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sink.Close() })
			// A delay no test waits for: the file holds the result only
			// because it was written before the answer.
			log, err := audit.New(audit.Options{Sinks: []audit.Sink{sink}, SyncDelay: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			a := &callsAuditor{log: log}
			opts := []envOpt{func(o *Options, _ *allowlist.Destination) { o.Auditor = a }}
			if tt.idem {
				store, err := idempotency.NewRedisStore(idempotency.RedisOptions{Client: redistest.Start(t).Client(), Keys: testIdempotencyKeys(t), Prefix: "test:idem:", Wait: 10 * time.Second, Lease: time.Minute})
				if err != nil {
					t.Fatal(err)
				}
				opts = append(opts, func(o *Options, _ *allowlist.Destination) { o.Idempotency = store })
			}
			e := newEnv(t, echo, opts...)
			r := e.jsonRequest(cardBody)
			if tt.idem {
				r.IdempotencyKey = "order-1234:attempt-1"
			}
			resp, err := e.f.Forward(context.Background(), r)
			if err != nil {
				t.Fatalf("Forward: %v", err)
			}
			if resp.Outcome != Answered || resp.Status != http.StatusCreated {
				t.Fatalf("Forward = %s %d, want answered 201", resp.Outcome, resp.Status)
			}
			a.mu.Lock()
			calls := append([]string(nil), a.calls...)
			a.mu.Unlock()
			if diff := cmp.Diff(tt.want, calls); diff != "" {
				t.Errorf("audit calls (-want +got):\n%s", diff)
			}
			var kinds []audit.Kind
			for _, rec := range readAuditFile(t, path) {
				kinds = append(kinds, rec.Kind)
			}
			if diff := cmp.Diff([]audit.Kind{audit.KindIntent, audit.KindResult}, kinds); diff != "" {
				t.Errorf("audit file when Forward returned (-want +got):\n%s", diff)
			}
		})
	}
}
