package main

import (
	"log/slog"
	"path"
	"runtime/debug"
	"slices"
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

// The cgroup hierarchies' mount points, and the memory limit file each
// keeps per cgroup: cgroup v2 first, then v1's memory controller.
const (
	cgroupV2Root    = "/sys/fs/cgroup"
	cgroupV2File    = "memory.max"
	cgroupV1Root    = "/sys/fs/cgroup/memory"
	cgroupV1File    = "memory.limit_in_bytes"
	procSelfCgroups = "/proc/self/cgroup"
)

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

// cgroupMemoryLimit returns the memory limit in force for this process's
// cgroup in bytes, or 0 when there is none ("max" in v2, a value near
// 2^63 in v1) or it cannot be read. The process's own cgroup comes from
// /proc/self/cgroup: a systemd service with MemoryMax= is limited in
// /sys/fs/cgroup/system.slice/NAME.service, not at the root. The limit in
// force is the smallest along the path up to the root, since every
// ancestor's applies too. Inside a container with its own cgroup
// namespace the path is "/" and the root files are the container's.
func cgroupMemoryLimit(readFile func(string) ([]byte, error)) int64 {
	v2, v1 := "/", "/"
	if b, err := readFile(procSelfCgroups); err == nil {
		v2, v1 = ownCgroups(string(b))
	}
	if n, found := limitAlong(readFile, cgroupV2Root, v2, cgroupV2File); found {
		return n
	}
	n, _ := limitAlong(readFile, cgroupV1Root, v1, cgroupV1File)
	return n
}

// ownCgroups reads /proc/self/cgroup: the v2 path ("0::PATH") and the v1
// memory controller's ("N:...memory...:PATH"), "/" for one not listed.
func ownCgroups(text string) (v2, v1 string) {
	v2, v1 = "/", "/"
	for _, line := range strings.Split(text, "\n") {
		id, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		controllers, path, ok := strings.Cut(rest, ":")
		if !ok || !strings.HasPrefix(path, "/") {
			continue
		}
		switch {
		case id == "0" && controllers == "":
			v2 = path
		case slices.Contains(strings.Split(controllers, ","), "memory"):
			v1 = path
		}
	}
	return v2, v1
}

// limitAlong reads file in cgroup dir under root and in each ancestor up
// to root, and returns the smallest limit found (0 if every one found is
// unlimited or unreadable as a number), and whether any file was read.
// A cgroup path not visible under root (a container without its own
// cgroup namespace) falls through to the ancestors that are.
func limitAlong(readFile func(string) ([]byte, error), root, dir, file string) (int64, bool) {
	var limit int64
	found := false
	for d := path.Clean(dir); ; d = path.Dir(d) {
		if b, err := readFile(path.Join(root, d, file)); err == nil {
			found = true
			n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			if err == nil && n > 0 && n < 1<<60 && (limit == 0 || n < limit) {
				limit = n
			}
		}
		if d == "/" || d == "." {
			return limit, found
		}
	}
}
