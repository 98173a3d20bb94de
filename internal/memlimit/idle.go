package memlimit

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// After a burst of work (a revision of every release, a hundred flips at once) the heap
// the collector paces by has grown with the burst's garbage, and the runtime gives the
// pages back to the kernel slowly and only down to what that pacing would need again
// (ten percent above the heap goal). A quiet operator then holds memory it will not use
// until the next burst: at 100 releases after ten revisions, 68 MiB where a fresh start
// with the same objects held 58 (docs/benchmarks.md, "Revisions with Jobs").
// IdleRelease collects and returns that memory once the burst is over, as
// ReleaseStartupGarbage does once the caches are filled.

// AllocSample is what the idle release reads of the runtime: bytes allocated since the
// process started (never decreasing) and bytes live after the last collection.
type AllocSample struct {
	Allocated uint64
	Live      uint64
}

// IdlePolicy says when a release is worth it: a burst allocated at least MinBurst bytes,
// and at least BurstPerLive times the live heap, since the last release (a forced
// collection costs about one normal one, so a burst that already paid for several makes
// it cheap), and the last period allocated at most MinQuiet bytes or, if more, the live
// heap divided by QuietPerLive: the process is idle, so memory given back will not be
// asked for again at once.
type IdlePolicy struct {
	MinBurst     uint64
	BurstPerLive uint64
	MinQuiet     uint64
	QuietPerLive uint64
}

// DefaultIdlePolicy is the operator's. A settled operator still allocates: each
// /metrics scrape some hundreds of KiB (2.6-3.2 MiB in 5 s when scraped every second,
// 100 releases); a revision of 100 releases allocates 50-120 MiB every 5 s.
var DefaultIdlePolicy = IdlePolicy{MinBurst: 32 << 20, BurstPerLive: 2, MinQuiet: 4 << 20, QuietPerLive: 4}

// Due reports whether to release now, given the sample at the last release, the one a
// period ago and the current one.
func (p IdlePolicy) Due(atRelease, previous, now AllocSample) bool {
	sinceRelease := now.Allocated - atRelease.Allocated
	lastPeriod := now.Allocated - previous.Allocated
	quiet := max(p.MinQuiet, now.Live/max(p.QuietPerLive, 1))
	return sinceRelease >= p.MinBurst && sinceRelease >= p.BurstPerLive*now.Live && lastPeriod <= quiet
}

// IdleRelease samples the runtime every Period and, when Policy says so, calls Release.
// Run it as a manager runnable on every replica: each has its own heap.
type IdleRelease struct {
	Period  time.Duration
	Policy  IdlePolicy
	Sample  func() AllocSample
	Release func()
}

// NewIdleRelease is the operator's: every 5 s, the default policy, the runtime's own
// figures, and debug.FreeOSMemory (a collection, then every free page back to the kernel).
func NewIdleRelease() IdleRelease {
	return IdleRelease{Period: 5 * time.Second, Policy: DefaultIdlePolicy, Sample: RuntimeSample, Release: debug.FreeOSMemory}
}

// Start runs until ctx is done.
func (r IdleRelease) Start(ctx context.Context) error {
	ticker := time.NewTicker(r.Period)
	defer ticker.Stop()
	atRelease := r.Sample()
	previous := atRelease
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		now := r.Sample()
		if r.Policy.Due(atRelease, previous, now) {
			r.Release()
			// Sampled after the release: its own collection is not the next burst.
			now = r.Sample()
			atRelease = now
		}
		previous = now
	}
}

// NeedLeaderElection is false: a replica waiting for the lease has a heap too.
func (IdleRelease) NeedLeaderElection() bool { return false }

// RuntimeSample reads the runtime's cumulative allocations and its live heap.
func RuntimeSample() AllocSample {
	samples := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(samples)
	return AllocSample{Allocated: uint64Of(samples[0]), Live: uint64Of(samples[1])}
}

func uint64Of(s metrics.Sample) uint64 {
	if s.Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s.Value.Uint64()
}
