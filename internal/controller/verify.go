package controller

import (
	"context"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	"github.com/softfactory/release-operator/internal/cacheshape"
)

// reconcileTargetAvailability is the gate in front of the flip: the target colour counts
// as available only when its Deployment has observed its generation and every replica is
// updated, ready and available (as its status says, or as its ReplicaSets say a moment
// earlier), and the preview Service's EndpointSlices list that many ready endpoints of
// that colour. Past progressDeadlineSeconds, the release is aborted.
func (r *SoftFactoryReleaseReconciler) reconcileTargetAvailability(ctx context.Context, s *releaseScope) (stepResult, error) {
	s.targetAvailability = s.measureTargetAvailability()
	switch s.targetAvailability.phase {
	case targetAvailable:
		r.endpointsLag.forget(client.ObjectKeyFromObject(s.release))
		return next(), nil
	case targetDeadlineExceeded:
		a := s.targetAvailability
		s.failure = s.failed(deployv1alpha1.ReasonProgressDeadlineExceeded,
			fmt.Sprintf("%s did not become available within %ds (%d/%d ready, %d ready endpoints);", s.release.DeploymentName(s.target),
				s.release.Spec.Strategy.BlueGreen.ProgressDeadlineSeconds, a.readyReplicas, a.wantReplicas, a.readyEndpoints),
			"traffic never moved",
			fmt.Sprintf("Check `kubectl describe deployment %s` and its pods' readiness probe on %s, then apply a fixed spec.",
				s.release.DeploymentName(s.target), s.release.Spec.HealthCheck.Path))
		r.event(s, corev1.EventTypeWarning, deployv1alpha1.ReasonProgressDeadlineExceeded, "Abort", "%s", s.failure.message)
		return wait(), r.applyFailurePolicy(ctx, s)
	case targetProgressing:
		if i := s.targetAvailability.issue; i != nil && i.permanent && !s.settled() {
			// Waiting for the deadline would only hide, for minutes, a cause that cannot heal.
			s.failure = podsCannotStart(s, i)
			r.event(s, corev1.EventTypeWarning, deployv1alpha1.ReasonPodsCannotStart, "Abort", "%s", s.failure.message)
			return wait(), r.applyFailurePolicy(ctx, s)
		}
		return waitFor(s.targetAvailability.deadline.Sub(s.now)), nil
	case targetWaitingForEndpoints:
		return r.awaitPreviewEndpoints(ctx, s)
	default:
		// The Deployment and EndpointSlice watches wake the release when this changes;
		// the requeue only makes sure the deadline is noticed.
		return waitFor(s.targetAvailability.deadline.Sub(s.now)), nil
	}
}

// measureTargetAvailability reads how far the target colour is, without acting.
func (s *releaseScope) measureTargetAvailability() availabilityFact {
	f := availabilityFact{wantReplicas: s.wantReplicas()}
	d := s.deployments[s.target]
	if d == nil || deploymentRevision(d) != s.revision {
		return f
	}
	f.readyReplicas = d.Status.ReadyReplicas
	f.readyEndpoints = s.readyEndpoints(s.target)
	f.deadline = progressDeadline(d, s.release.Spec.Strategy.BlueGreen.ProgressDeadlineSeconds)
	saturated := deploymentSaturated(d, f.wantReplicas)
	if !saturated && replicaSetsSaturated(d, s.replicaSets, f.wantReplicas) {
		// The ReplicaSet says so before the Deployment does.
		saturated = true
		f.readyReplicas = f.wantReplicas
	}
	switch {
	case !saturated:
		f.phase = targetProgressing
		f.issue = s.targetIssue(d)
	case f.readyEndpoints < f.wantReplicas:
		f.phase = targetWaitingForEndpoints
	default:
		f.phase = targetAvailable
		return f
	}
	// The deadline is for getting a new revision up; a serving colour that loses a pod
	// later is merely progressing again.
	if !s.settled() && !f.deadline.IsZero() && !s.now.Before(f.deadline) {
		f.phase = targetDeadlineExceeded
	}
	return f
}

// deploymentSaturated: the Deployment controller has seen the current spec and every
// pod of it is updated, ready and available, with no pod of an older template left.
func deploymentSaturated(d *appsv1.Deployment, want int32) bool {
	st := d.Status
	return st.ObservedGeneration >= d.Generation &&
		ptr.Deref(d.Spec.Replicas, 1) == want &&
		st.Replicas == want &&
		st.UpdatedReplicas == want &&
		st.ReadyReplicas == want &&
		st.AvailableReplicas == want
}

// replicaSetsSaturated is deploymentSaturated read from the ReplicaSets the Deployment
// controller computes the Deployment's status from, before it publishes it: about 10 ms
// on a quiet cluster here, seconds when it is busy with a burst of rollouts. The traffic
// moves that much sooner, on the same facts.
//
// From the Deployment it takes only its spec: the template and the wanted replicas. Its
// ReplicaSets are found the way the Deployment controller finds them, by template (the
// cache keeps a hash of each): the one of the current template has every pod ready and
// available at the wanted count, as its own controller has observed, and no other has a
// pod left. That is what "the Deployment has observed its generation and every replica
// is updated, ready and available" stands for, without waiting for the Deployment
// controller to say it has observed anything: in a burst it writes observedGeneration
// seconds late, often together with "available". Only that controller creates or scales
// a ReplicaSet, so a full one of the current template at the wanted count is its doing.
// Anything unclear (the current ReplicaSet not in the cache yet, two of them, an object
// from outside the cache) says no, and the gate waits for the Deployment's own status.
func replicaSetsSaturated(d *appsv1.Deployment, replicaSets []appsv1.ReplicaSet, want int32) bool {
	template := cacheshape.TemplateHash(&d.Spec.Template)
	if template == "" || ptr.Deref(d.Spec.Replicas, 1) != want {
		return false
	}
	var current *appsv1.ReplicaSet
	for i := range replicaSets {
		rs := &replicaSets[i]
		if !metav1.IsControlledBy(rs, d) {
			continue
		}
		if cacheshape.TemplateHash(&rs.Spec.Template) != template {
			if rs.Status.Replicas != 0 {
				return false // pods of another template are still there
			}
			continue
		}
		if current != nil {
			return false
		}
		current = rs
	}
	return current != nil && ptr.Deref(current.Spec.Replicas, 1) == want && replicaSetSaturated(current)
}

// replicaSetSaturated: the ReplicaSet controller has seen the ReplicaSet's current spec
// and every one of its replicas (at least one) is ready and available.
func replicaSetSaturated(rs *appsv1.ReplicaSet) bool {
	want := ptr.Deref(rs.Spec.Replicas, 1)
	st := rs.Status
	return want > 0 && st.ObservedGeneration >= rs.Generation &&
		st.Replicas == want && st.ReadyReplicas == want && st.AvailableReplicas == want
}

// readyEndpoints counts the preview Service's ready endpoints that belong to pods of
// colour c. A slice can briefly list pods of the colour the preview selected before,
// so the pod name is checked too.
func (s *releaseScope) readyEndpoints(c deployv1alpha1.Color) int32 {
	return readyEndpointsOf(s.release, s.previewSlices, c)
}

// readyEndpointsOf counts the ready endpoints of colour c's pods in a Service's slices.
func readyEndpointsOf(rel *deployv1alpha1.SoftFactoryRelease, slices []discoveryv1.EndpointSlice, c deployv1alpha1.Color) int32 {
	prefix := rel.DeploymentName(c) + "-"
	var n int32
	seen := map[string]bool{}
	for _, slice := range slices {
		for _, ep := range slice.Endpoints {
			if ep.TargetRef == nil || !strings.HasPrefix(ep.TargetRef.Name, prefix) || seen[ep.TargetRef.Name] {
				continue
			}
			if !endpointReady(ep) {
				continue
			}
			seen[ep.TargetRef.Name] = true
			n++
		}
	}
	return n
}

// endpointReady: per the EndpointSlice API, an unset ready condition means ready.
func endpointReady(ep discoveryv1.Endpoint) bool {
	return ep.Conditions.Ready == nil || *ep.Conditions.Ready
}

// progressDeadline is when the colour must be available, counted from when it got its
// revision (an annotation the operator set, so it survives restarts).
func progressDeadline(d *appsv1.Deployment, seconds int32) time.Time {
	started, err := time.Parse(time.RFC3339, d.Annotations[deployv1alpha1.ProgressStartedAnnotation])
	if err != nil || seconds <= 0 {
		return time.Time{}
	}
	return started.Add(time.Duration(seconds) * time.Second)
}

// reconcileSmokeTest runs the optional smoke-test Job against the preview Service once
// the target colour is available; promotion waits for it to complete.
func (r *SoftFactoryReleaseReconciler) reconcileSmokeTest(ctx context.Context, s *releaseScope) (stepResult, error) {
	rel := s.release
	if rel.Spec.Strategy.BlueGreen.SmokeTest == nil {
		s.smokeTest = jobFact{phase: jobNotRequired}
		return next(), nil
	}
	job, name := s.smokeTestJob()
	if job == nil {
		var err error
		job, err = r.ensureJob(ctx, s, name, func() *batchv1.Job {
			j := buildSmokeTestJob(rel, s.revision)
			j.Name = name
			return j
		})
		if err != nil {
			return wait(), err
		}
	}
	s.smokeTest = jobFactOf(job)
	switch s.smokeTest.phase {
	case jobSucceeded:
		return next(), nil
	case jobFailed:
		s.failure = s.failed(deployv1alpha1.ReasonSmokeTestFailed,
			fmt.Sprintf("Smoke test Job %s failed (%s) against %s;", job.Name, s.smokeTest.message, previewURL(rel)),
			"traffic never moved", fmt.Sprintf("Check `kubectl logs job/%s`, then apply a fixed spec.", job.Name))
		return wait(), r.applyFailurePolicy(ctx, s)
	default:
		// A pod that can never start (its own image runs as root, does not exist, is
		// refused) would otherwise hold the release for activeDeadlineSeconds, then
		// blame logs that were never written.
		issue, recheck := s.runningJobIssue(job)
		if issue != nil && issue.permanent {
			s.failure = s.failed(deployv1alpha1.ReasonSmokeTestFailed,
				fmt.Sprintf("Smoke test Job %s cannot start its pod, and this does not heal by itself: %s. No smoke test ran;", job.Name, issue),
				"traffic never moved", whatToDo(issue))
			r.event(s, corev1.EventTypeWarning, s.failure.reason, "Stop", "%s", s.failure.message)
			return wait(), r.applyFailurePolicy(ctx, s)
		}
		if recheck > 0 {
			return waitFor(recheck), nil
		}
		return wait(), nil
	}
}

// smokeTestJob is the smoke-test Job that speaks for the current attempt, and the name
// of the Job to create when there is none. That is the current attempt's Job when it
// exists; otherwise the Job of an earlier attempt that succeeded (a retry re-runs only
// what failed: a smoke test that passed before a later step failed is kept); otherwise
// none yet, under the current attempt's name.
func (s *releaseScope) smokeTestJob() (*batchv1.Job, string) {
	rel := s.release
	attempt := s.attempt()
	name := rel.SmokeTestAttemptJobName(s.revision, attempt)
	if j := s.jobs[name]; j != nil {
		return j, name
	}
	for a := attempt - 1; a >= 1; a-- {
		if j := s.jobs[rel.SmokeTestAttemptJobName(s.revision, a)]; j != nil && jobOutcome(j) == jobSucceeded {
			return j, j.Name
		}
	}
	return nil, name
}
