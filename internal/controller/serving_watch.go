package controller

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// The serving colour is watched while a new revision is on its way. Blue/green shares one
// database: the migration runs while the old colour still serves, so a migration that is
// not backward compatible breaks the serving colour minutes before the new one is ready.
// Watching only the new colour would miss it.
//
// The watch window opens with the first step that touches what the serving colour shares:
// the start of the revision's migration Job (its record exists), or, for a release without
// a migration, the start of the target colour's rollout (its Deployment runs the revision).
// It closes with the flip (the release is settled). Before the first promotion nothing
// serves, so nothing is watched.

// servingFact is what the watch saw of the serving colour in this pass.
type servingFact struct {
	watched  bool
	degraded bool
	color    deployv1alpha1.Color
	revision string
	// readyReplicas of wantReplicas (the serving Deployment's own replicas).
	readyReplicas, wantReplicas int32
	// readyEndpoints of the serving colour on the active Service; endpointsSeen is false
	// while the cache holds no slice of it (none written yet): then only the Deployment
	// is judged, since the EndpointSlice controller writes a slice, empty or not, for
	// every Service with a selector.
	readyEndpoints int32
	endpointsSeen  bool
	// analysisFailed: the pre-promotion checks failed against the serving colour; the
	// message is theirs (status.servingAnalysis).
	analysisFailed bool
	analysis       string
	during         string    // the step under way, in words
	since          time.Time // when it was first seen degraded (kept in the condition)
}

// observeServingColour reads the serving colour's readiness, without acting.
func (s *releaseScope) observeServingColour() servingFact {
	rel := s.release
	if s.activeColor == "" || s.settled() {
		return servingFact{}
	}
	rec := rel.Status.RevisionRecordOf(s.revision)
	migrating := rec != nil && rec.Migration != nil
	rollingOut := deploymentRevision(s.deployments[s.target]) == s.revision
	if !migrating && !rollingOut {
		return servingFact{}
	}
	f := servingFact{watched: true, color: s.activeColor, wantReplicas: s.wantReplicas()}
	if d := s.deployments[s.activeColor]; d != nil {
		f.revision = deploymentRevision(d)
		f.wantReplicas = ptr.Deref(d.Spec.Replicas, 1)
		f.readyReplicas = d.Status.ReadyReplicas
	}
	f.endpointsSeen = len(s.activeSlices) > 0
	f.readyEndpoints = readyEndpointsOf(rel, s.activeSlices, s.activeColor)
	if a := rel.Status.ServingAnalysis; a != nil && a.Revision == s.revision && a.Result == deployv1alpha1.AnalysisFailed {
		f.analysisFailed, f.analysis = true, a.Message
	}
	f.degraded = f.readyReplicas < f.wantReplicas || (f.endpointsSeen && f.readyEndpoints < f.wantReplicas) || f.analysisFailed
	switch {
	case migrating && rec.Migration.State == deployv1alpha1.StepStarted:
		f.during = "during migration Job " + rec.Migration.JobName
	case migrating:
		f.during = fmt.Sprintf("after migration Job %s (%s), while %s takes revision %s", rec.Migration.JobName,
			rec.Migration.State, rel.DeploymentName(s.target), s.revision)
	default:
		f.during = fmt.Sprintf("while %s takes revision %s", rel.DeploymentName(s.target), s.revision)
	}
	f.since = s.now
	if c := meta.FindStatusCondition(rel.Status.Conditions, deployv1alpha1.ConditionServingDegraded); c != nil &&
		c.Status == metav1.ConditionTrue && !c.LastTransitionTime.IsZero() {
		f.since = c.LastTransitionTime.Time
	}
	return f
}

// describe says what was seen, e.g. "blue (revision 5d9c7): 0 of 2 ready endpoints on
// Service shop, 0 of 2 ready replicas, since 05:41:02Z, during migration Job ...".
func (f servingFact) describe(rel *deployv1alpha1.SoftFactoryRelease) string {
	endpoints := "no EndpointSlice of it seen yet"
	if f.endpointsSeen {
		endpoints = fmt.Sprintf("%d of %d ready endpoints", f.readyEndpoints, f.wantReplicas)
	}
	msg := fmt.Sprintf("%s (revision %s): %s on Service %s, %d of %d ready replicas", f.color, f.revision, endpoints,
		rel.ActiveServiceName(), f.readyReplicas, f.wantReplicas)
	if f.analysisFailed {
		msg += fmt.Sprintf(", its pre-promotion checks fail (%s)", f.analysis)
	}
	if f.degraded {
		if f.readyReplicas == 0 || (f.endpointsSeen && f.readyEndpoints == 0) {
			msg += " (an outage)"
		}
		msg += ", since " + f.since.UTC().Format("15:04:05Z")
	}
	return msg + ", " + f.during
}

// reconcileServingColour acts on a degraded serving colour by spec.strategy.blueGreen.
// onServingDegraded: Stop (the default) stops the release at once; Promote lets the new
// colour take traffic as soon as its own gates pass, without the promote annotation or a
// pre-promotion analysis, because the colour it would wait to protect is already broken.
// A release that has already stopped only reports (ServingDegraded keeps saying what the
// serving colour does, and the alert follows it).
func (r *SoftFactoryReleaseReconciler) reconcileServingColour(ctx context.Context, s *releaseScope) (stepResult, error) {
	nextCheck := r.analyseServingColour(ctx, s)
	s.serving = s.observeServingColour()
	if !s.serving.degraded || s.failure != nil {
		if nextCheck > 0 {
			return nextAfter(nextCheck), nil
		}
		return next(), nil
	}
	rel := s.release
	if rel.Spec.Strategy.BlueGreen.ServingDegradedPolicyOf() == deployv1alpha1.ServingDegradedPromote {
		s.promoteForDegradedServing = true
		return next(), nil
	}
	s.failure = s.failed(deployv1alpha1.ReasonServingDegraded,
		fmt.Sprintf("The serving colour degraded while revision %s was on its way: %s. The release stopped (spec.strategy.blueGreen.onServingDegraded: Stop);",
			s.revision, s.serving.describe(rel)),
		"traffic never moved",
		fmt.Sprintf("Check the serving colour (`kubectl describe deployment %s`, its pods' logs): if it broke when the migration ran, the migration is likely not backward compatible "+
			"(move destructive changes to spec.migration.contract). Then retry the revision (%s annotation) or apply a new spec.",
			rel.DeploymentName(s.serving.color), deployv1alpha1.RetryAnnotation))
	return next(), r.applyFailurePolicy(ctx, s)
}

// servingAtEndOfPass is the watch as the pass leaves the world. The steps after the
// watch step may open its window (the target colour got the revision) or close it (the
// flip): saying so in this pass's status write, not in the next pass's, saves a write per
// release at each end of the window. What the watch step judged stands; nothing a pass
// does changes the serving colour's readiness.
func (s *releaseScope) servingAtEndOfPass() servingFact {
	now := s.observeServingColour()
	if now.watched && s.serving.watched {
		return s.serving
	}
	return now
}

// servingDegradedCondition: is the serving colour healthy while the new revision is on its
// way? nil when it is not watched (before the first promotion, before the migration or
// the rollout started, once settled): the condition is then removed.
func servingDegradedCondition(s *releaseScope) *metav1.Condition {
	f := s.serving
	if !f.watched {
		return nil
	}
	rel := s.release
	if !f.degraded {
		c := cond(deployv1alpha1.ConditionServingDegraded, false, deployv1alpha1.ReasonServingHealthy, "%s; watched until the flip", f.describe(rel))
		return &c
	}
	msg := f.describe(rel)
	switch {
	case s.promoteForDegradedServing:
		msg += fmt.Sprintf(". spec.strategy.blueGreen.onServingDegraded is Promote: %s takes traffic as soon as it is available and passes its smoke test, "+
			"without waiting for the promote annotation, a pre-promotion analysis or the compatibility check", rel.DeploymentName(s.target))
	case s.failure != nil && s.failure.reason == deployv1alpha1.ReasonServingDegraded:
		msg += ". The release stopped (onServingDegraded: Stop)"
	}
	c := cond(deployv1alpha1.ConditionServingDegraded, true, deployv1alpha1.ReasonServingDegraded, "%s", msg)
	return &c
}

// analyseServingColour runs spec.strategy.blueGreen.prePromotionAnalysis's checks against
// the serving colour while it is watched, and keeps their count in
// status.servingAnalysis (so a restart neither resets nor repeats it). Its error rate
// rising is the serving colour degrading as much as its pods failing readiness. A run
// of passes does not end the watch: like the post-promotion window, it watches until
// the flip. It returns when the next evaluation is due (0: none).
func (r *SoftFactoryReleaseReconciler) analyseServingColour(ctx context.Context, s *releaseScope) time.Duration {
	rel := s.release
	spec := rel.Spec.Strategy.BlueGreen.PrePromotionAnalysis
	if spec == nil || !s.observeServingColour().watched {
		rel.Status.ServingAnalysis = nil
		return 0
	}
	a := rel.Status.ServingAnalysis
	if a == nil || a.Revision != s.revision {
		a = &deployv1alpha1.AnalysisStatus{Revision: s.revision, Stage: deployv1alpha1.AnalysisServing, Result: deployv1alpha1.AnalysisRunning}
		rel.Status.ServingAnalysis = a
	}
	if a.Result != deployv1alpha1.AnalysisRunning || s.failure != nil {
		return 0
	}
	nextCheck := r.evaluateOnce(ctx, s, *spec, a, s.activeColor)
	if a.Result == deployv1alpha1.AnalysisPassed {
		a.Result = deployv1alpha1.AnalysisRunning
	}
	return nextCheck
}
