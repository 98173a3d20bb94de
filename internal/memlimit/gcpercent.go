package memlimit

import (
	"os"
	"runtime/debug"
)

// GCPercent is the operator's collector pacing (what GOGC sets). Go's default, 100, lets
// the heap grow to twice what was live at the last collection before the next one. That
// suits a program whose heap is mostly short-lived garbage; the operator's heap is mostly
// its informer caches, objects that live as long as the process, so at 100 as much
// memory again is held for garbage as the caches need. At 50 the heap grows by half of
// what is live: the process holds less for the same caches (docs/benchmarks.md,
// "Revisions with Jobs", has the figures at 100 and 1,000 releases) for more frequent,
// cheap collections (the live heap is small and the operator mostly waits on the API).
const GCPercent = 50

// ApplyGCPercent sets the collector's pacing to percent unless GOGC already sets one (the
// user's choice wins, as with GOMEMLIMIT). It reports whether it set it.
func ApplyGCPercent(percent int) bool {
	if os.Getenv("GOGC") != "" {
		return false
	}
	debug.SetGCPercent(percent)
	return true
}
