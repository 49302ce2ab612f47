package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cardgate/cardgate/allowlist"
	"github.com/cardgate/cardgate/audit"
)

// allowlistRecorder writes every allowlist load, accepted or refused, to
// the audit log (audit.KindAllowlist). The first load runs before the
// audit log is open: its event waits until attach.
type allowlistRecorder struct {
	log     *slog.Logger
	timeout time.Duration

	mu      sync.Mutex
	auditor *audit.Log // nil until attach
	pending []allowlist.LoadEvent
}

// maxPendingLoads bounds the events kept before attach (one load, in
// practice).
const maxPendingLoads = 16

func newAllowlistRecorder(log *slog.Logger, timeout time.Duration) *allowlistRecorder {
	return &allowlistRecorder{log: log, timeout: timeout}
}

// onLoad is allowlist.HolderOptions.OnLoad.
func (r *allowlistRecorder) onLoad(ctx context.Context, ev allowlist.LoadEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.auditor == nil {
		if len(r.pending) < maxPendingLoads {
			r.pending = append(r.pending, ev)
		}
		return
	}
	if err := r.append(ctx, ev); err != nil {
		r.log.Error("ALERT: allowlist load not written to the audit log", slog.Bool("accepted", ev.Accepted),
			slog.String("sha256", ev.SHA256), slog.String("error", err.Error()))
	}
}

// attach writes the events so far to l and every later one as it comes.
// An event that cannot be written stops the start.
func (r *allowlistRecorder) attach(ctx context.Context, l *audit.Log) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.auditor = l
	for _, ev := range r.pending {
		if err := r.append(ctx, ev); err != nil {
			return fmt.Errorf("refusing to start: the allowlist load is not in the audit log: %w", err)
		}
	}
	r.pending = nil
	return nil
}

func (r *allowlistRecorder) append(ctx context.Context, ev allowlist.LoadEvent) error {
	rec := audit.Record{Kind: audit.KindAllowlist, AllowlistSHA256: ev.SHA256}
	for _, s := range ev.Signers {
		if !slices.Contains(rec.Signers, s) {
			rec.Signers = append(rec.Signers, s)
		}
	}
	if ev.Accepted {
		rec.Decision, rec.AllowlistVersion = audit.DecisionAllow, ev.Version
	} else {
		rec.Decision, rec.Reason = audit.DecisionDeny, string(ev.Problem)
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
	defer cancel()
	_, err := r.auditor.Append(actx, rec)
	return err
}
