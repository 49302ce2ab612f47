package main

import (
	"log/slog"
	"runtime/debug"
)

// Garbage-collector defaults for serve, used unless the operator sets GOGC
// or GOMEMLIMIT (the Go runtime reads both; an operator's value always
// wins). A forward allocates a few KB and keeps little live, so with Go's
// GOGC=100 the collector runs often and costs a large share of the CPU
// under load. GOGC=400 lets the heap grow to five times what is live
// between collections, and the soft limit caps that growth: near the limit
// the collector runs as often as it must to stay under it. The limit is
// soft: a gateway whose live heap needs more (many large bodies in flight)
// keeps working, with the collector's share of the CPU capped by the
// runtime, rather than being killed. See README "Performance".
const (
	defaultGCPercent   = 400
	defaultMemoryLimit = 64 << 20 // bytes
)

// tuneGC applies the defaults where getenv finds no operator setting, and
// logs what is in force.
func tuneGC(getenv func(string) string, log *slog.Logger) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	gc := debug.SetGCPercent(-1)
	debug.SetGCPercent(gc)
	log.Info("garbage collector", slog.Int("gc_percent", gc), slog.Int64("memory_limit_bytes", debug.SetMemoryLimit(-1)))
}
