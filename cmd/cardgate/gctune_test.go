package main

import (
	"log/slog"
	"math"
	"runtime/debug"
	"testing"
)

func TestTuneGCDefaultsYieldToTheOperator(t *testing.T) {
	gc, limit := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(gc); debug.SetMemoryLimit(limit) })
	log := slog.New(slog.DiscardHandler)

	tuneGC(func(string) string { return "" }, log)
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Errorf("gc percent = %d, want the default %d", got, defaultGCPercent)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != defaultMemoryLimit {
		t.Errorf("memory limit = %d, want the default %d", got, defaultMemoryLimit)
	}

	// The runtime has applied the operator's GOGC and GOMEMLIMIT already;
	// tuneGC must leave them alone.
	set := map[string]string{"GOGC": "100", "GOMEMLIMIT": "off"}
	tuneGC(func(k string) string { return set[k] }, log)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("gc percent = %d, want the operator's 100", got)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != math.MaxInt64 {
		t.Errorf("memory limit = %d, want the operator's (none)", got)
	}
}
