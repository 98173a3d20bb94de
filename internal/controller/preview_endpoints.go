package controller

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// previewEndpointsGrace is how long the gate lets the EndpointSlice controller list a
// fully available target colour ready on its own before asking it again. On a quiet
// cluster it does so within about 10 ms of the ReplicaSet on kwok (docs/benchmarks.md)
// and within 41 ms on real pods (docs/real-cluster.md; usually before it), so a few
// requests may be for slices already on their way, one write each. When it has not, it
// is waiting out its own 1 s retry, which a change of the Service cuts short: the grace
// is most of what such a flip then waits.
const previewEndpointsGrace = 25 * time.Millisecond

// awaitPreviewEndpoints holds the flip while the target colour is fully available but
// the preview Service's EndpointSlices do not list it ready yet, and asks the
// EndpointSlice controller to compute them again if that lasts longer than
// previewEndpointsGrace.
//
// That controller computes a Service's slices on every change of its pods and, before
// writing, checks that its cache holds its own last write. When a pod's start and its
// readiness come within milliseconds (kwok; a readiness probe that passes at once; two
// pods ready together), the second computation finds its cache behind and is retried
// after a 1 s back-off, which the flip would wait. Any change of the Service queues a
// computation at once: an annotation naming the revision, written once per revision.
// The gate is unchanged: the flip still waits for the slices to list every target pod
// ready, and if the controller ever ignored the request, for its own retry as before.
func (r *SoftFactoryReleaseReconciler) awaitPreviewEndpoints(ctx context.Context, s *releaseScope) (stepResult, error) {
	untilDeadline := waitFor(s.targetAvailability.deadline.Sub(s.now))
	svc := s.previewService
	// A serving colour that lost an endpoint is the serving watch's concern, not a flip's.
	if svc == nil || s.settled() || svc.Annotations[deployv1alpha1.EndpointsRequestedAnnotation] == s.revision {
		return untilDeadline, nil
	}
	key := client.ObjectKeyFromObject(s.release)
	if lag := s.now.Sub(r.endpointsLag.firstSeen(key, s.revision, s.now)); lag < previewEndpointsGrace {
		// The slice's event usually wakes the release first; this pass is the fallback.
		return stepResult{requeueAfter: previewEndpointsGrace - lag}, nil
	}
	patched := svc.DeepCopy()
	if patched.Annotations == nil {
		patched.Annotations = map[string]string{}
	}
	patched.Annotations[deployv1alpha1.EndpointsRequestedAnnotation] = s.revision
	// A merge patch of the annotation alone: it changes nothing else of the Service.
	if err := r.Patch(ctx, patched, client.MergeFrom(svc)); err != nil {
		return wait(), err
	}
	s.previewService = patched
	r.endpointsLag.forget(key)
	return untilDeadline, nil
}

// endpointsLag remembers, per release, when a pass first saw its target colour fully
// available but not listed ready by the preview Service. A ReplicaSet carries no time of
// becoming available, so the memory is the process's own; lost on a restart, the grace
// merely starts again.
type endpointsLag struct {
	mu    sync.Mutex
	since map[types.NamespacedName]lagStart
}

type lagStart struct {
	revision string
	at       time.Time
}

// firstSeen records now as the start of the lag unless one is already recorded for this
// revision, and returns the start.
func (l *endpointsLag) firstSeen(key types.NamespacedName, revision string, now time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if start, ok := l.since[key]; ok && start.revision == revision {
		return start.at
	}
	if l.since == nil {
		l.since = map[types.NamespacedName]lagStart{}
	}
	l.since[key] = lagStart{revision: revision, at: now}
	return now
}

// forget drops the release's record: its endpoints are listed, or were asked for.
func (l *endpointsLag) forget(key types.NamespacedName) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.since, key)
}
