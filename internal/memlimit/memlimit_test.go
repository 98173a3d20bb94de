package memlimit

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func cgroup(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestFromCgroup(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  int64
		ok    bool
	}{
		{"v2 limit", map[string]string{"memory.max": "268435456\n"}, 268435456, true},
		{"v2 unlimited", map[string]string{"memory.max": "max\n"}, 0, false},
		{"v1 limit", map[string]string{"memory/memory.limit_in_bytes": "134217728\n"}, 134217728, true},
		{"v1 unlimited", map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n"}, 0, false},
		{"garbage", map[string]string{"memory.max": "lots"}, 0, false},
		{"no cgroup files", nil, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := FromCgroup(cgroup(t, tc.files))
			if got != tc.want || ok != tc.ok {
				t.Fatalf("FromCgroup = %d, %v; want %d, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestApply(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	root := cgroup(t, map[string]string{"memory.max": "268435456"})

	t.Setenv("GOMEMLIMIT", "")
	soft, ok := Apply(root, 0.9)
	if !ok || soft != 241591910 {
		t.Fatalf("Apply = %d, %v; want 90%% of 256 MiB", soft, ok)
	}
	if got := debug.SetMemoryLimit(-1); got != soft {
		t.Fatalf("runtime limit %d, want %d", got, soft)
	}

	debug.SetMemoryLimit(math.MaxInt64)
	t.Setenv("GOMEMLIMIT", "1GiB")
	if _, ok := Apply(root, 0.9); ok {
		t.Fatal("Apply overrode GOMEMLIMIT")
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("runtime limit changed to %d despite GOMEMLIMIT", got)
	}
}

func TestApplyGCPercent(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })

	t.Setenv("GOGC", "")
	if !ApplyGCPercent(GCPercent) {
		t.Fatal("ApplyGCPercent did not set the pacing without GOGC")
	}
	if got := debug.SetGCPercent(100); got != GCPercent {
		t.Fatalf("GC percent %d, want %d", got, GCPercent)
	}

	// GOGC in the environment is the user's choice: the runtime read it at start-up, and
	// the operator leaves it alone.
	t.Setenv("GOGC", "200")
	if ApplyGCPercent(GCPercent) {
		t.Fatal("ApplyGCPercent overrode GOGC")
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GC percent changed to %d despite GOGC", got)
	}
}
