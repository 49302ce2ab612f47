package main

import (
	"errors"
	"io/fs"
	"log/slog"
	"math"
	"runtime/debug"
	"testing"
)

// files fakes os.ReadFile over a map.
func files(m map[string]string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		if s, ok := m[name]; ok {
			return []byte(s), nil
		}
		return nil, fs.ErrNotExist
	}
}

func TestTuneGCDefaultsYieldToTheOperator(t *testing.T) {
	gc, limit := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(gc); debug.SetMemoryLimit(limit) })
	log := slog.New(slog.DiscardHandler)
	unset := func(string) string { return "" }

	tuneGC(unset, files(nil), log)
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Errorf("gc percent = %d, want the default %d", got, defaultGCPercent)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != defaultMemoryLimit {
		t.Errorf("memory limit outside a cgroup = %d, want the default %d", got, defaultMemoryLimit)
	}

	// Inside a memory-limited container the limit follows the container's.
	tuneGC(unset, files(map[string]string{"/sys/fs/cgroup/memory.max": "1073741824\n"}), log)
	if got := debug.SetMemoryLimit(math.MaxInt64); got != 805306368 {
		t.Errorf("memory limit in a 1 GiB cgroup = %d, want 3/4 of it", got)
	}

	// The runtime has applied the operator's GOGC and GOMEMLIMIT already;
	// tuneGC must leave them alone.
	debug.SetGCPercent(100)
	set := map[string]string{"GOGC": "100", "GOMEMLIMIT": "off"}
	tuneGC(func(k string) string { return set[k] }, files(map[string]string{"/sys/fs/cgroup/memory.max": "1073741824"}), log)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("gc percent = %d, want the operator's 100", got)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != math.MaxInt64 {
		t.Errorf("memory limit = %d, want the operator's (none)", got)
	}
}

func TestCgroupMemoryLimit(t *testing.T) {
	const v2, v1 = "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"
	tests := []struct {
		name  string
		files map[string]string
		want  int64
	}{
		{"no cgroup files", nil, 0},
		{"v2 unlimited", map[string]string{v2: "max\n"}, 0},
		{"v2 limited", map[string]string{v2: "536870912\n"}, 536870912},
		{"v1 unlimited", map[string]string{v1: "9223372036854771712\n"}, 0},
		{"v1 limited", map[string]string{v1: "268435456"}, 268435456},
		{"v2 wins over v1", map[string]string{v2: "536870912", v1: "268435456"}, 536870912},
		{"garbage", map[string]string{v2: "lots"}, 0},
	}
	for _, tt := range tests {
		if got := cgroupMemoryLimit(files(tt.files)); got != tt.want {
			t.Errorf("%s: cgroupMemoryLimit = %d, want %d", tt.name, got, tt.want)
		}
	}
	if got := cgroupMemoryLimit(func(string) ([]byte, error) { return nil, errors.New("denied") }); got != 0 {
		t.Errorf("unreadable: cgroupMemoryLimit = %d, want 0", got)
	}
}

// The limit comes from the process's own cgroup, read from
// /proc/self/cgroup, and is the smallest along its path to the root: a
// systemd service with MemoryMax= is limited below the root.
func TestCgroupMemoryLimitOwnCgroup(t *testing.T) {
	const self = "/proc/self/cgroup"
	tests := []struct {
		name  string
		files map[string]string
		want  int64
	}{
		{"v2 systemd service", map[string]string{
			self:                                     "0::/system.slice/cardgate.service\n",
			"/sys/fs/cgroup/memory.max":              "max\n",
			"/sys/fs/cgroup/system.slice/memory.max": "max\n",
			"/sys/fs/cgroup/system.slice/cardgate.service/memory.max": "268435456\n",
		}, 268435456},
		{"v2 an ancestor's smaller limit applies", map[string]string{
			self:                                     "0::/system.slice/cardgate.service\n",
			"/sys/fs/cgroup/system.slice/memory.max": "134217728\n",
			"/sys/fs/cgroup/system.slice/cardgate.service/memory.max": "268435456\n",
		}, 134217728},
		{"v2 path not visible falls back to the root", map[string]string{
			self:                        "0::/docker/abc\n",
			"/sys/fs/cgroup/memory.max": "536870912\n",
		}, 536870912},
		{"v1 memory controller", map[string]string{
			self: "12:cpu,cpuacct:/\n4:memory:/system.slice/cardgate.service\n0::/\n",
			"/sys/fs/cgroup/memory/memory.limit_in_bytes":                               "9223372036854771712\n",
			"/sys/fs/cgroup/memory/system.slice/cardgate.service/memory.limit_in_bytes": "201326592\n",
		}, 201326592},
		{"unlimited everywhere", map[string]string{
			self:                                   "0::/user.slice\n",
			"/sys/fs/cgroup/memory.max":            "max\n",
			"/sys/fs/cgroup/user.slice/memory.max": "max\n",
		}, 0},
	}
	for _, tt := range tests {
		if got := cgroupMemoryLimit(files(tt.files)); got != tt.want {
			t.Errorf("%s: cgroupMemoryLimit = %d, want %d", tt.name, got, tt.want)
		}
	}
}
