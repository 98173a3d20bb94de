package memlimit

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestIdlePolicyReleasesOnlyAfterABurstOnceQuiet(t *testing.T) {
	p := IdlePolicy{MinBurst: 100, BurstPerLive: 2, MinQuiet: 10, QuietPerLive: 4}
	at := AllocSample{Allocated: 1000, Live: 40}
	cases := []struct {
		name          string
		previous, now AllocSample
		wantRelease   bool
	}{
		{"quiet after a burst", AllocSample{Allocated: 1195}, AllocSample{Allocated: 1200, Live: 40}, true},
		{"still allocating", AllocSample{Allocated: 1150}, AllocSample{Allocated: 1200, Live: 40}, false},
		{"quiet, no burst since the last release", AllocSample{Allocated: 1050}, AllocSample{Allocated: 1055, Live: 40}, false},
		{"quiet, a burst smaller than twice the live heap", AllocSample{Allocated: 1148}, AllocSample{Allocated: 1150, Live: 80}, false},
		{"quiet, a burst of twice the live heap", AllocSample{Allocated: 1158}, AllocSample{Allocated: 1160, Live: 80}, true},
		{"exactly the quiet allowance", AllocSample{Allocated: 1190}, AllocSample{Allocated: 1200, Live: 40}, true},
		{"over the allowance of a small heap", AllocSample{Allocated: 1189}, AllocSample{Allocated: 1200, Live: 40}, false},
		{"within a quarter of a large live heap", AllocSample{Allocated: 1300}, AllocSample{Allocated: 1320, Live: 80}, true},
		{"over a quarter of a large live heap", AllocSample{Allocated: 1299}, AllocSample{Allocated: 1320, Live: 80}, false},
	}
	for _, c := range cases {
		if got := p.Due(at, c.previous, c.now); got != c.wantRelease {
			t.Errorf("%s: Due = %v, want %v", c.name, got, c.wantRelease)
		}
	}
}

// The runnable with a scripted runtime: a burst, a quiet spell, more quiet, a second
// burst, quiet again. It must release once per quiet spell that follows a burst.
func TestIdleReleaseReleasesOncePerBurst(t *testing.T) {
	script := []uint64{0, 50, 120, 200, 202, 203, 204, 300, 400, 401, 402}
	var (
		mu       sync.Mutex
		i        int
		last     uint64
		releases []uint64 // the allocation count sampled just before each release
	)
	sample := func() AllocSample {
		mu.Lock()
		defer mu.Unlock()
		last = script[min(i, len(script)-1)]
		i++
		return AllocSample{Allocated: last, Live: 10}
	}
	release := func() {
		mu.Lock()
		defer mu.Unlock()
		releases = append(releases, last)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r := IdleRelease{Period: time.Millisecond, Policy: IdlePolicy{MinBurst: 100, BurstPerLive: 2, MinQuiet: 5, QuietPerLive: 4}, Sample: sample, Release: release}
	go func() { _ = r.Start(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		finished := i > len(script)+3
		mu.Unlock()
		if finished || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	want := []uint64{202, 401}
	if len(releases) != len(want) || releases[0] != want[0] || releases[1] != want[1] {
		t.Fatalf("released at allocation counts %v, want %v (once after each burst, when quiet)", releases, want)
	}
}

// The runtime's own figures are what the operator runs on: they must be there and move.
func TestRuntimeSampleReadsTheRuntime(t *testing.T) {
	before := RuntimeSample()
	garbage := make([][]byte, 0, 64)
	for range 64 {
		garbage = append(garbage, make([]byte, 64<<10))
	}
	runtime.KeepAlive(garbage)
	runtime.GC()
	after := RuntimeSample()
	if after.Allocated < before.Allocated+64*(64<<10) {
		t.Fatalf("allocated %d -> %d bytes after allocating 4 MiB", before.Allocated, after.Allocated)
	}
	if after.Live == 0 {
		t.Fatalf("no live heap reported after a collection")
	}
}
