package vaultclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// sweepFailureCounts reads MetricBoltSweepFailures from reader as
// "class=… n".
func sweepFailureCounts(t *testing.T, reader *sdkmetric.ManualReader) []string {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != MetricBoltSweepFailures {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("metric %s is %T, want an int64 sum", m.Name, m.Data)
			}
			for _, dp := range sum.DataPoints {
				var attrs []string
				for _, kv := range dp.Attributes.ToSlice() {
					attrs = append(attrs, string(kv.Key)+"="+kv.Value.Emit())
				}
				out = append(out, fmt.Sprintf("%s %d", strings.Join(attrs, ","), dp.Value))
			}
		}
	}
	return out
}

// TestBoltStoreSweepFailureIsReported: when Get finds an expired CVC and
// the sweep that follows fails, the read still answers (without the CVC),
// and the failure is logged and counted by class, with neither the token
// nor the cause text.
func TestBoltStoreSweepFailureIsReported(t *testing.T) {
	ctx := context.Background()
	var logs bytes.Buffer
	reader := sdkmetric.NewManualReader()
	s, err := OpenBoltStoreWith(filepath.Join(t.TempDir(), "cards.db"), BoltOptions{
		Logger:        slog.New(slog.NewJSONHandler(&logs, nil)),
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
	})
	if err != nil {
		t.Fatalf("OpenBoltStoreWith: %v", err)
	}
	defer s.Close()
	now := time.Now()
	s.now = fixedClock(now)
	tok := newToken()
	if err := s.Put(ctx, tok, Entry{Record: []byte("r1"), CVC: []byte("c1")}, time.Minute); err != nil {
		t.Fatalf("Put: %v", err)
	}
	// An index entry too short to hold an expiry sorts first and stops
	// every sweep.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketCVCExpiry)).Put([]byte{0}, []byte{})
	}); err != nil {
		t.Fatal(err)
	}
	s.now = fixedClock(now.Add(2 * time.Minute))

	e, err := s.Get(ctx, tok)
	if err != nil || string(e.Record) != "r1" || e.CVC != nil {
		t.Fatalf("Get = %q, cvc %q, %v; want the record without its expired CVC", e.Record, e.CVC, err)
	}
	if diff := cmp.Diff([]string{"class=corrupt_index 1"}, sweepFailureCounts(t, reader)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", MetricBoltSweepFailures, diff)
	}
	log := logs.String()
	if !strings.Contains(log, `"level":"ERROR"`) || !strings.Contains(log, `"class":"corrupt_index"`) || strings.Count(log, "\n") != 1 {
		t.Errorf("log = %q, want one error line with class corrupt_index", log)
	}
	if strings.Contains(log, tok) || strings.Contains(log, "too short") {
		t.Errorf("log = %q holds the token or the cause text", log)
	}
}

func TestSweepErrorClass(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{berrors.ErrDatabaseNotOpen, "closed"},
		{fmt.Errorf("update: %w", berrors.ErrTxClosed), "closed"},
		{berrors.ErrDatabaseReadOnly, "read_only"},
		{berrors.ErrTxNotWritable, "read_only"},
		{errSweepIndex, "corrupt_index"},
		{errors.New("write /var/lib/cardgate/cards.db: no space left on device"), "other"},
	}
	for _, tt := range tests {
		if got := sweepErrorClass(tt.err); got != tt.want {
			t.Errorf("sweepErrorClass(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
