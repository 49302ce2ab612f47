package main

import (
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
)

// Garbage-collector defaults for serve. Each applies unless the operator
// sets its variable (GOGC, GOMEMLIMIT), which the Go runtime reads itself
// and which always wins. A forward allocates a few KB and keeps little
// live, so with Go's GOGC=100 the collector runs often and costs a large
// share of the CPU under load. GOGC=400 lets the heap grow to five times
// what is live between collections, and the soft limit caps that growth:
// near the limit the collector runs as often as it must to stay under it.
// The limit is soft: a gateway whose live heap needs more (many large
// bodies in flight) keeps working, with the collector's share of the CPU
// capped by the runtime, rather than being killed. See README
// "Configuration" and "Performance".
const (
	defaultGCPercent = 400
	// defaultMemoryLimit applies outside a memory-limited cgroup; inside
	// one, the limit is containerShare of the cgroup's. The limit counts
	// the Go runtime's memory only; the process's RSS adds about 27 MB of
	// the binary's own pages (text, pclntab). 40 MiB keeps peak RSS at 256
	// connections near 62 MB (64 MiB gave 80–81 MB), at no cost measured
	// at 32 connections; at 256 the collector then costs about 40–55% more
	// CPU per forward (issue 18's A/B, README).
	defaultMemoryLimit = 40 << 20 // bytes
	containerShare     = 0.75
)

// cgroupLimitFiles hold the memory limit of the cgroup the process runs in:
// cgroup v2 first, then v1. In a container both are the container's own.
var cgroupLimitFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// tuneGC applies the defaults where getenv finds no operator setting, and
// logs what is in force.
func tuneGC(getenv func(string) string, readFile func(string) ([]byte, error), log *slog.Logger) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		limit := int64(defaultMemoryLimit)
		if c := cgroupMemoryLimit(readFile); c > 0 {
			limit = int64(float64(c) * containerShare)
		}
		debug.SetMemoryLimit(limit)
	}
	gc := debug.SetGCPercent(-1)
	debug.SetGCPercent(gc)
	log.Info("garbage collector", slog.Int("gc_percent", gc), slog.Int64("memory_limit_bytes", debug.SetMemoryLimit(-1)))
}

// cgroupMemoryLimit returns the cgroup's memory limit in bytes, or 0 when
// there is none ("max" in v2, a value near 2^63 in v1) or it cannot be read.
func cgroupMemoryLimit(readFile func(string) ([]byte, error)) int64 {
	for _, f := range cgroupLimitFiles {
		b, err := readFile(f)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n <= 0 || n >= 1<<60 {
			return 0
		}
		return n
	}
	return 0
}
