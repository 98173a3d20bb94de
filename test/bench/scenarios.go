//go:build bench

package main

import (
	"context"
	"fmt"
	"log"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func schemaGVK(group, version, kind string) schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: group, Version: version, Kind: kind}
}

// bench holds one run: the clients, the watcher, the operator process and the results.
type bench struct {
	cfg config
	k8s client.Client
	w   *watcher
	op  *operator
	res *results

	// images is each release's current spec.image; version counts images handed out.
	imagesMu sync.Mutex
	images   map[string]string
	version  int
}

func releaseName(i int) string { return fmt.Sprintf("r%04d", i) }

func (b *bench) names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = releaseName(i)
	}
	return out
}

// releaseObject is the competitor's set-up as a SoftFactoryRelease: 2 replicas, the
// built-in readiness probe, auto-promotion, a 30 s scale-down delay, and nothing else
// (no database, backup, migration or alerts).
func (b *bench) releaseObject(name, image string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "deploy.softfactory.io/v1alpha1",
		"kind":       "SoftFactoryRelease",
		"metadata":   map[string]any{"name": name, "namespace": b.cfg.namespace},
		"spec": map[string]any{
			"image":    image,
			"replicas": int64(b.cfg.replicas),
			"strategy": map[string]any{"blueGreen": map[string]any{
				"autoPromote": true, "scaleDownDelaySeconds": int64(b.cfg.scaleDownDelaySeconds),
			}},
			"monitoring": map[string]any{"prometheusRule": map[string]any{"enabled": false}},
		},
	}}
	return u
}

func (b *bench) nextImage() string {
	b.version++
	return fmt.Sprintf("registry.example.com/bench/app:1.%d.0", b.version)
}

// parallel runs f over items with a fixed number of workers and returns the first error.
func parallel(items []string, workers int, f func(string) error) error {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	ch := make(chan string)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range ch {
				if err := f(it); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, it := range items {
		ch <- it
	}
	close(ch)
	wg.Wait()
	return firstErr
}

// ensureReleases creates releases up to n (first image for each) and waits until every
// one of them is settled.
func (b *bench) ensureReleases(ctx context.Context, n int) error {
	var missing []string
	for _, name := range b.names(n) {
		if _, ok := b.images[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	image := "registry.example.com/bench/app:1.0.0"
	log.Printf("Creating %d releases (%d in all)", len(missing), n)
	start := time.Now()
	err := parallel(missing, 16, func(name string) error {
		err := b.k8s.Create(ctx, b.releaseObject(name, image))
		if apierrors.IsAlreadyExists(err) {
			err = b.k8s.Patch(ctx, b.releaseObject(name, image), client.Merge)
		}
		return err
	})
	if err != nil {
		return err
	}
	for _, name := range missing {
		b.images[name] = image
	}
	if err := b.waitSettled(ctx, b.names(n), time.Duration(n)*time.Second+5*time.Minute); err != nil {
		return err
	}
	log.Printf("%d releases settled, %s after the first create", n, time.Since(start).Round(time.Millisecond))
	b.res.Creations = append(b.res.Creations, creation{Releases: n, Created: len(missing), SettledSeconds: time.Since(start).Seconds()})
	return nil
}

// waitSettled waits until each release runs its current image, reports Succeeded for
// its generation, and has no old colour left up.
func (b *bench) waitSettled(ctx context.Context, names []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if !b.op.Running() {
			return fmt.Errorf("the operator died; the end of its log:\n%s", b.op.LogTail(20))
		}
		states, err := b.w.states(ctx, b.cfg.namespace)
		if err != nil {
			return err
		}
		var pending []string
		for _, n := range names {
			if !states[n].settled(b.images[n]) {
				pending = append(pending, n)
			}
		}
		if len(pending) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			phases := map[string]int{}
			for _, n := range pending {
				st := states[n]
				phases[fmt.Sprintf("phase=%q observed=%d/%d active=%q oldColorUp=%v", st.phase, st.observed, st.generation, st.activeColor, st.oldColorUp)]++
			}
			return fmt.Errorf("%d of %d releases did not settle within %s: %v (first: %s)", len(pending), len(names), timeout, phases, pending[0])
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// startUpdate registers the update of one release with the watcher and applies it (a
// merge patch of spec.image, what `kubectl apply` of the changed manifest sends). Safe
// for concurrent use on different releases.
func (b *bench) startUpdate(ctx context.Context, name, image, activeColor string) error {
	r := &rollout{release: name, image: image, oldColor: activeColor, newColor: otherColor(activeColor)}
	b.w.expect(r)
	patch := fmt.Appendf(nil, `{"spec":{"image":%q}}`, image)
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(releaseGVK)
	u.SetNamespace(b.cfg.namespace)
	u.SetName(name)
	sent := time.Now()
	if err := b.k8s.Patch(ctx, u, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return err
	}
	applied := time.Now()
	b.w.mu.Lock()
	r.patchSent, r.applied = sent, applied
	b.w.mu.Unlock()
	b.imagesMu.Lock()
	b.images[name] = image
	b.imagesMu.Unlock()
	return nil
}

func otherColor(c string) string {
	if c == "blue" {
		return "green"
	}
	return "blue"
}

// waitFlipped waits until the watcher has seen each release's active Service flip.
func (b *bench) waitFlipped(names []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, n := range names {
		for {
			r, ok := b.w.snapshot(n)
			if !ok {
				return fmt.Errorf("no update of %s in flight", n)
			}
			if !r.flipped.IsZero() {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s did not flip within %s (seen: spec %v, green deploy %v, available %v, endpoints %v)",
					n, timeout, !r.specSeen.IsZero(), !r.deploySeen.IsZero(), !r.available.IsZero(), !r.endpoints.IsZero())
			}
			if !b.op.Running() {
				return fmt.Errorf("the operator died; the end of its log:\n%s", b.op.LogTail(20))
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	return nil
}

// waitTrafficMoved waits until the watcher has seen each release's traffic move: its
// active Service's EndpointSlices list only the new colour's pods.
func (b *bench) waitTrafficMoved(names []string, timeout time.Duration) error {
	if err := b.waitFlipped(names, timeout); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for _, n := range names {
		for {
			r, _ := b.w.snapshot(n)
			if !r.trafficMoved.IsZero() {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s flipped, but its active Service's EndpointSlices did not list only the new colour's pods within %s", n, timeout)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	return nil
}

// waitRecorded waits until the watcher has seen each release's final status, after the
// scale-down (the settled check reads the cache, the watcher's handlers may lag it).
func (b *bench) waitRecorded(names []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, n := range names {
		for {
			r, _ := b.w.snapshot(n)
			if !r.succeeded.IsZero() && !r.trafficMoved.IsZero() {
				break
			}
			if time.Now().After(deadline) {
				if r.trafficMoved.IsZero() {
					return fmt.Errorf("%s finished but its active Service's EndpointSlices never listed only the new colour's %d pods ready", n, b.cfg.replicas)
				}
				return fmt.Errorf("the watcher did not see %s finish within %s", n, timeout)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// activeColors reads which colour each release serves from.
func (b *bench) activeColors(ctx context.Context) (map[string]string, error) {
	states, err := b.w.states(ctx, b.cfg.namespace)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for n, st := range states {
		out[n] = st.activeColor
	}
	return out, nil
}

// sample turns what the watcher saw of one update into the figures.
func sample(r rollout, delay time.Duration) flipSample {
	// The new colour is available when its new ReplicaSet is (the moment); the
	// Deployment reports it one write later.
	available := r.rsAvailable
	if available.IsZero() {
		available = r.available
	}
	gate := later(available, r.endpoints)
	gaps := map[string]float64{
		gapStartGreen: ms(r.deploySeen.Sub(earlier(r.applied, r.specSeen))),
		gapFlip:       ms(r.flipped.Sub(gate)),
		gapScaleDown:  ms(r.scaledDown.Sub(r.scaleDownAt)),
		gapSucceeded:  ms(r.succeeded.Sub(r.scaledDown)),
	}
	if r.scaleDownAt.IsZero() {
		// No deadline stored on the old colour (an operator that keeps it elsewhere): the
		// wait past the configured delay, counted from the flip, is the gap.
		gaps[gapScaleDown] = ms(r.scaledDown.Sub(r.flipped.Add(delay)))
	}
	var overhead float64
	for _, g := range gaps {
		overhead += max(g, 0)
	}
	var trafficMoved, flipToTraffic *float64
	if !r.trafficMoved.IsZero() {
		trafficMoved, flipToTraffic = ptr.To(ms(r.trafficMoved.Sub(available))), ptr.To(ms(r.trafficMoved.Sub(r.flipped)))
	}
	return flipSample{
		Release:            r.release,
		TrafficMovedMs:     trafficMoved,
		FlipToTrafficMs:    flipToTraffic,
		FlipMs:             ms(r.flipped.Sub(r.available)),
		ReplicaSetFlipMs:   ptr.To(ms(r.flipped.Sub(r.rsAvailable))),
		ReplicaSetLagMs:    ptr.To(ms(r.available.Sub(r.rsAvailable))),
		GateToFlipMs:       ms(r.flipped.Sub(gate)),
		EndpointsLagMs:     ms(r.endpoints.Sub(available)),
		ApplyToFlipMs:      ms(r.flipped.Sub(r.applied)),
		ApplyToAvailableMs: ms(available.Sub(r.applied)),
		FlipToStatusMs:     ms(r.statusSeen.Sub(r.flipped)),
		OverheadMs:         overhead,
		PatchRTTMs:         ms(r.applied.Sub(r.patchSent)),
		WatchDelayMs:       ms(r.specSeen.Sub(r.applied)),
		GapsMs:             gaps,
		Applied:            r.applied,
		Flipped:            r.flipped,
	}
}

// Step gaps of one release, summed into its controller overhead: what the operator
// adds between one step finishing and the next starting.
const (
	gapStartGreen = "spec applied -> new colour's Deployment patched"
	gapFlip       = "gate open (available and endpoints ready) -> selector flipped"
	gapScaleDown  = "scale-down deadline -> old colour scaled to 0"
	gapSucceeded  = "old colour scaled to 0 -> status Succeeded"
)

// sequential updates releases one at a time: each update is applied once the previous
// one has flipped. A round ends when every release has scaled its old colour down.
func (b *bench) sequential(ctx context.Context, present, n, rounds int, label string) error {
	names := b.names(n)
	for round := 1; round <= rounds; round++ {
		log.Printf("Sequential flips: round %d/%d, %d releases one at a time, %d present", round, rounds, n, present)
		colors, err := b.activeColors(ctx)
		if err != nil {
			return err
		}
		before, err := b.op.scrape()
		if err != nil {
			return err
		}
		start := time.Now()
		for _, name := range names {
			if err := b.startUpdate(ctx, name, b.nextImage(), colors[name]); err != nil {
				return err
			}
			// One at a time means the next update starts once this one's traffic has
			// moved, so no two releases share the cluster's controllers.
			if err := b.waitTrafficMoved([]string{name}, 2*time.Minute); err != nil {
				return err
			}
		}
		if err := b.finishRound(ctx, names); err != nil {
			return err
		}
		after, err := b.op.scrape()
		if err != nil {
			return err
		}
		run := flipRun{Kind: "sequential", Context: label, Releases: present, AtOnce: 1, Updated: n, Round: round, Start: start,
			Requests: deltaRequests(before, after), Controller: deltaController(before, after), Load: loadAvg(),
			Outages: b.w.outagesBetween(start, time.Now())}
		for _, name := range names {
			run.Samples = append(run.Samples, sample(b.w.done(name), time.Duration(b.cfg.scaleDownDelaySeconds)*time.Second))
		}
		run.summarize()
		b.res.Runs = append(b.res.Runs, run)
		log.Printf("  traffic moved p50 %.1f ms p99 %.1f ms; flip p50 %.1f ms p99 %.1f ms (from the Deployment: %.1f / %.1f); %d outages; overhead p99 %.0f ms; %.1f writes per release %v; %.1f passes per release, %.1f ms each, %.1f ms queued",
			run.TrafficMoved.P50, run.TrafficMoved.P99, run.Flip.P50, run.Flip.P99, run.DeploymentFlip.P50, run.DeploymentFlip.P99, len(run.Outages), run.Overhead.P99, run.Requests.Writes/float64(n), verbsAndConflicts(run.Requests),
			run.Controller.Reconciles/float64(n), run.Controller.MeanReconcileMs, run.Controller.MeanQueueWaitMs)
	}
	return nil
}

// burst updates n releases at once (patches sent by 16 workers as fast as the API
// server takes them) and waits for every flip.
func (b *bench) burst(ctx context.Context, present, n, rounds int) error {
	names := b.names(n)
	for round := 1; round <= rounds; round++ {
		log.Printf("Burst: round %d/%d, %d releases at once, %d present", round, rounds, n, present)
		colors, err := b.activeColors(ctx)
		if err != nil {
			return err
		}
		images := map[string]string{}
		for _, name := range names {
			images[name] = b.nextImage()
		}
		before, err := b.op.scrape()
		if err != nil {
			return err
		}
		start := time.Now()
		err = parallel(names, 16, func(name string) error {
			return b.startUpdate(ctx, name, images[name], colors[name])
		})
		if err != nil {
			return err
		}
		applyDone := time.Now()
		if err := b.waitFlipped(names, time.Duration(n)*time.Second+5*time.Minute); err != nil {
			return err
		}
		var lastFlip time.Time
		for _, name := range names {
			r, _ := b.w.snapshot(name)
			lastFlip = later(lastFlip, r.flipped)
		}
		if err := b.finishRound(ctx, names); err != nil {
			return err
		}
		after, err := b.op.scrape()
		if err != nil {
			return err
		}
		run := flipRun{Kind: "burst", Releases: present, AtOnce: n, Updated: n, Round: round, Start: start,
			ApplySeconds: applyDone.Sub(start).Seconds(), AllPromotedSeconds: lastFlip.Sub(start).Seconds(),
			Requests: deltaRequests(before, after), Controller: deltaController(before, after), Load: loadAvg(),
			Outages: b.w.outagesBetween(start, time.Now())}
		for _, name := range names {
			run.Samples = append(run.Samples, sample(b.w.done(name), time.Duration(b.cfg.scaleDownDelaySeconds)*time.Second))
		}
		run.summarize()
		b.res.Runs = append(b.res.Runs, run)
		log.Printf("  traffic moved p50 %.1f ms p99 %.1f ms; flip p50 %.1f ms p99 %.1f ms (from the Deployment: %.1f / %.1f); %d outages; all promoted %.1f s after the first patch (patches took %.1f s); overhead p99 %.0f ms; %.1f writes per release; %.1f passes per release, %.1f ms each, %.1f ms queued",
			run.TrafficMoved.P50, run.TrafficMoved.P99, run.Flip.P50, run.Flip.P99, run.DeploymentFlip.P50, run.DeploymentFlip.P99, len(run.Outages), run.AllPromotedSeconds, run.ApplySeconds, run.Overhead.P99, run.Requests.Writes/float64(n),
			run.Controller.Reconciles/float64(n), run.Controller.MeanReconcileMs, run.Controller.MeanQueueWaitMs)
	}
	return nil
}

// finishRound waits until the round's releases have scaled their old colour down and
// reported Succeeded, as the watcher saw it.
func (b *bench) finishRound(ctx context.Context, names []string) error {
	timeout := time.Duration(b.cfg.scaleDownDelaySeconds)*time.Second + time.Duration(len(names))*time.Second + 3*time.Minute
	if err := b.waitSettled(ctx, names, timeout); err != nil {
		return err
	}
	return b.waitRecorded(names, time.Minute)
}

// settle waits until the operator is idle: its queue empty and no API write for the
// idle period.
func (b *bench) settle(idle time.Duration) error {
	last, err := b.op.scrape()
	if err != nil {
		return err
	}
	quietSince := time.Now()
	deadline := time.Now().Add(idle + 5*time.Minute)
	for time.Since(quietSince) < idle {
		if time.Now().After(deadline) {
			return fmt.Errorf("the operator did not go quiet for %s", idle)
		}
		time.Sleep(time.Second)
		m, err := b.op.scrape()
		if err != nil {
			return err
		}
		if deltaRequests(last, m).Writes > 0 || m.queueDepth() > 0 {
			quietSince = time.Now()
		}
		last = m
	}
	return nil
}

// sampleMemory reads the operator's RSS once a second, rssSamples times, and its Go
// heap figures once: the median, the maximum and the heap, as one memoryPoint.
func (b *bench) sampleMemory(releases int, label string) (memoryPoint, error) {
	var rss []float64
	for range b.cfg.rssSamples {
		v, err := b.op.rss()
		if err != nil {
			return memoryPoint{}, err
		}
		rss = append(rss, mib(v))
		time.Sleep(time.Second)
	}
	m, err := b.op.scrape()
	if err != nil {
		return memoryPoint{}, err
	}
	return memoryPoint{Releases: releases, Label: label, RSSMiB: median(rss), RSSMaxMiB: summarize(rss).Max,
		HeapInuseMiB:  m.sum("go_memstats_heap_inuse_bytes", nil) / (1 << 20),
		GoSysMiB:      m.sum("go_memstats_sys_bytes", nil) / (1 << 20),
		OperatorStart: b.op.Starts(), Load: loadAvg()}, nil
}

// memory samples the operator's RSS once a second for a while, after it went idle.
func (b *bench) memory(releases int, label string) error {
	if err := b.settle(b.cfg.settleIdle); err != nil {
		return err
	}
	p, err := b.sampleMemory(releases, label)
	if err != nil {
		return err
	}
	b.res.Memory = append(b.res.Memory, p)
	log.Printf("RSS with %d releases (%s): %.1f MiB (max %.1f; Go heap in use %.1f MiB)", releases, label, p.RSSMiB, p.RSSMaxMiB, p.HeapInuseMiB)
	return nil
}

// resync counts the operator's API writes while nothing changes (a window), then while
// every release is reconciled again (a new reconcile-requested-at annotation on each:
// changes to the operator's own annotations pass the release watch's predicate; others
// are not in its cache, so they would not).
func (b *bench) resync(ctx context.Context, n int, label string) error {
	if err := b.settle(b.cfg.settleIdle); err != nil {
		return err
	}
	before, err := b.op.scrape()
	if err != nil {
		return err
	}
	log.Printf("Steady state: counting the operator's requests for %s with %d settled releases", b.cfg.resyncWindow, n)
	time.Sleep(b.cfg.resyncWindow)
	afterWindow, err := b.op.scrape()
	if err != nil {
		return err
	}
	log.Printf("Annotating all %d releases (a no-op for the release) to make the operator reconcile each", n)
	stamp := time.Now().UTC().Format(time.RFC3339Nano)
	start := time.Now()
	err = parallel(b.names(n), 16, func(name string) error {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(releaseGVK)
		u.SetNamespace(b.cfg.namespace)
		u.SetName(name)
		// The operator's ReconcileRequestAnnotation; the benchmark talks to the cluster
		// as any client does, without the operator's packages.
		patch := fmt.Appendf(nil, `{"metadata":{"annotations":{"deploy.softfactory.io/reconcile-requested-at":%q}}}`, stamp)
		return b.k8s.Patch(ctx, u, client.RawPatch(types.MergePatchType, patch))
	})
	if err != nil {
		return err
	}
	reconciled, err := b.waitReconciled(afterWindow.reconciles()+float64(n), 5*time.Minute)
	if err != nil {
		return err
	}
	took := time.Since(start)
	// Anything a pass would write goes out before its reconcile is counted; a little
	// longer catches Events, which are sent asynchronously.
	time.Sleep(5 * time.Second)
	afterAnnotate, err := b.op.scrape()
	if err != nil {
		return err
	}
	r := resyncResult{Releases: n, Context: label, WindowSeconds: b.cfg.resyncWindow.Seconds(), Window: deltaRequests(before, afterWindow),
		Annotated: deltaRequests(afterWindow, afterAnnotate), Reconciles: reconciled - afterWindow.reconciles(), ReconcileAllSeconds: took.Seconds()}
	b.res.Resync = append(b.res.Resync, r)
	log.Printf("  idle %s: %v writes %v; after annotating: %.0f reconciles in %.1f s, %v writes %v",
		b.cfg.resyncWindow, r.Window.Writes, r.Window.ByVerb, r.Reconciles, took.Seconds(), r.Annotated.Writes, r.Annotated.ByVerb)
	return nil
}

// waitReconciled waits until the controller has finished at least want passes in all
// and its queue is empty, and returns the count.
func (b *bench) waitReconciled(want float64, timeout time.Duration) (float64, error) {
	deadline := time.Now().Add(timeout)
	for {
		m, err := b.op.scrape()
		if err != nil {
			return 0, err
		}
		if m.reconciles() >= want && m.queueDepth() == 0 {
			return m.reconciles(), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("only %.0f of %.0f reconciles within %s", m.reconciles(), want, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// restart stops the operator and starts a new one with n releases in the cluster: how
// long its caches take to sync, how long until every release was reconciled once, and
// what that first pass over everything writes.
func (b *bench) restart(n int, label string) error {
	log.Printf("Restarting the operator with %d releases (%s)", n, label)
	_ = b.op.Stop()
	if err := b.op.Start(); err != nil {
		return err
	}
	sourcesStart, workers, err := b.op.startupTimes()
	if err != nil {
		return err
	}
	if _, err := b.waitReconciled(float64(n), 5*time.Minute); err != nil {
		return err
	}
	allDone := time.Now()
	time.Sleep(5 * time.Second)
	m, err := b.op.scrape()
	if err != nil {
		return err
	}
	r := restartResult{Releases: n, Label: label,
		CacheSyncMs:        ms(workers.Sub(sourcesStart)),
		ExecToWorkersMs:    ms(workers.Sub(b.op.StartedAt())),
		ExecToReconciledMs: ms(allDone.Sub(b.op.StartedAt())),
		Requests:           deltaRequests(metricSet{}, m)}
	b.res.Restarts = append(b.res.Restarts, r)
	log.Printf("  caches synced in %.0f ms (%.0f ms after exec); every release reconciled %.0f ms after exec; %v writes %v",
		r.CacheSyncMs, r.ExecToWorkersMs, r.ExecToReconciledMs, r.Requests.Writes, r.Requests.ByVerb)
	return nil
}

// unrelated fills a namespace the operator has no business with: Secrets, and
// Deployments whose pods the scheduler places and kwok runs.
func (b *bench) unrelated(ctx context.Context) error {
	ns := b.cfg.namespace + "-unrelated"
	if err := b.ensureNamespace(ctx, ns); err != nil {
		return err
	}
	u := b.cfg.unrelated
	log.Printf("Creating %d Secrets and %d Deployments (%d pods in all) in %s", u.secrets, u.deployments, u.deployments*u.podsPerDeployment, ns)
	start := time.Now()
	payload := strings.Repeat("x", 1024)
	var secretNames, deployNames []string
	for i := range u.secrets {
		secretNames = append(secretNames, fmt.Sprintf("secret-%05d", i))
	}
	for i := range u.deployments {
		deployNames = append(deployNames, fmt.Sprintf("app-%04d", i))
	}
	err := parallel(secretNames, 16, func(name string) error {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "unrelated"}},
			StringData: map[string]string{"token": payload}}
		return client.IgnoreAlreadyExists(b.k8s.Create(ctx, s))
	})
	if err != nil {
		return err
	}
	err = parallel(deployNames, 16, func(name string) error {
		labels := map[string]string{"app": name}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": name, "app.kubernetes.io/managed-by": "someone-else"}},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To(int32(u.podsPerDeployment)),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{
						Name: "app", Image: "registry.example.com/unrelated:1",
						Env: []corev1.EnvVar{{Name: "SOME_SETTING", Value: payload[:256]}},
					}}},
				},
			},
		}
		return client.IgnoreAlreadyExists(b.k8s.Create(ctx, d))
	})
	if err != nil {
		return err
	}
	want := int32(u.deployments * u.podsPerDeployment)
	deadline := time.Now().Add(30 * time.Minute)
	for {
		list := &appsv1.DeploymentList{}
		if err := b.k8s.List(ctx, list, client.InNamespace(ns)); err != nil {
			return err
		}
		var available int32
		for _, d := range list.Items {
			available += d.Status.AvailableReplicas
		}
		if available >= want {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d unrelated pods available after 30 minutes", available, want)
		}
		time.Sleep(5 * time.Second)
	}
	b.res.Unrelated = &unrelatedLoad{Secrets: u.secrets, Deployments: u.deployments, Pods: int(want), CreatedSeconds: time.Since(start).Seconds()}
	log.Printf("  %d unrelated pods running, %s after the first create", want, time.Since(start).Round(time.Second))
	return nil
}

func (b *bench) ensureNamespace(ctx context.Context, ns string) error {
	err := b.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	// Pods need the namespace's default ServiceAccount, which the controller-manager makes.
	deadline := time.Now().Add(time.Minute)
	for {
		err := b.k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "default"}, &corev1.ServiceAccount{})
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no default ServiceAccount in %s: %w", ns, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// releasesPresent is how many releases exist now.
func (b *bench) releasesPresent() int { return len(b.images) }
