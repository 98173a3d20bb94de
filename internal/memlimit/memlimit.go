// Package memlimit gives the Go runtime a soft memory limit below the container's.
//
// Left alone, the collector lets the heap grow to twice what is live before it runs
// (GOGC=100), and it does not know the container's limit: an operator whose live heap
// is well inside the limit can still be killed for the garbage it has not collected
// yet. With a soft limit (runtime/debug.SetMemoryLimit, what GOMEMLIMIT sets) the
// collector works harder as the process nears it instead.
package memlimit

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// CgroupRoot is where the process's cgroup is mounted in a container.
const CgroupRoot = "/sys/fs/cgroup"

// FromCgroup reads the memory limit of the cgroup mounted at root: memory.max (cgroup
// v2) or memory/memory.limit_in_bytes (v1). ok is false when there is no limit or it
// cannot be read.
func FromCgroup(root string) (limit int64, ok bool) {
	for _, file := range []string{"memory.max", filepath.Join("memory", "memory.limit_in_bytes")} {
		raw, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			continue
		}
		value := strings.TrimSpace(string(raw))
		if value == "max" {
			return 0, false
		}
		n, err := strconv.ParseInt(value, 10, 64)
		// cgroup v1 reports "no limit" as a huge page-aligned number.
		if err != nil || n <= 0 || n >= math.MaxInt64/2 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// Apply sets the runtime's soft memory limit to fraction of the cgroup's limit, unless
// GOMEMLIMIT already sets one (the user's choice wins). It returns the limit it set.
func Apply(root string, fraction float64) (int64, bool) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0, false
	}
	limit, ok := FromCgroup(root)
	if !ok {
		return 0, false
	}
	soft := int64(float64(limit) * fraction)
	debug.SetMemoryLimit(soft)
	return soft, true
}
