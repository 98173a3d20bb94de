package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	"github.com/softfactory/release-operator/internal/analysis"
)

// Analyzer evaluates Prometheus checks once. analysis.Evaluator is the real one.
type Analyzer interface {
	Evaluate(ctx context.Context, spec deployv1alpha1.AnalysisSpec, target analysis.Target) analysis.Evaluation
}

// analysisFor returns the status of the stage's analysis of this revision, starting a
// fresh count when the stored one belongs to another revision or stage.
func analysisFor(s *releaseScope, stage deployv1alpha1.AnalysisStage) *deployv1alpha1.AnalysisStatus {
	a := s.release.Status.Analysis
	if a == nil || a.Revision != s.revision || a.Stage != stage {
		a = &deployv1alpha1.AnalysisStatus{Revision: s.revision, Stage: stage, Result: deployv1alpha1.AnalysisRunning}
		s.release.Status.Analysis = a
	}
	return a
}

// evaluateOnce runs the checks if an evaluation is due and folds the result into a. It
// returns how long until the next one is due.
func (r *SoftFactoryReleaseReconciler) evaluateOnce(ctx context.Context, s *releaseScope, spec deployv1alpha1.AnalysisSpec, a *deployv1alpha1.AnalysisStatus, color deployv1alpha1.Color) time.Duration {
	var last time.Time
	if a.LastEvaluatedAt != nil {
		last = a.LastEvaluatedAt.Time
	}
	if wait := analysis.NextEvaluation(last, s.now, spec.IntervalSeconds); wait > 0 {
		return wait
	}
	eval := r.analyzer().Evaluate(ctx, spec, analysis.Target{Color: color, Namespace: s.release.Namespace, Release: s.release.Name})
	counters, decision := analysis.Fold(analysis.Counters{
		ConsecutiveSuccesses: a.ConsecutiveSuccesses, Failures: a.Failures, Inconclusive: a.Inconclusive,
	}, eval.Status, spec.SuccessfulRuns, spec.FailureLimit)
	now := metav1.NewTime(s.now)
	a.ConsecutiveSuccesses, a.Failures, a.Inconclusive = counters.ConsecutiveSuccesses, counters.Failures, counters.Inconclusive
	a.LastEvaluatedAt = &now
	a.Message = eval.Summary()
	switch decision {
	case analysis.DecisionPassed:
		a.Result = deployv1alpha1.AnalysisPassed
	case analysis.DecisionFailed:
		a.Result = deployv1alpha1.AnalysisFailed
	}
	interval := spec.IntervalSeconds
	if interval <= 0 {
		interval = analysis.DefaultIntervalSeconds
	}
	return time.Duration(interval) * time.Second
}

func (r *SoftFactoryReleaseReconciler) analyzer() Analyzer {
	if r.Analyzer != nil {
		return r.Analyzer
	}
	return analysis.Evaluator{}
}

// reconcilePrePromotionAnalysis holds the flip until the Prometheus checks have passed
// successfulRuns times in a row against the colour under test. An inconclusive run
// (Prometheus unreachable, a query error) never counts as a pass; the progress deadline
// bounds how long the release waits for a verdict. The first release is not analysed:
// a colour that has never had traffic has no metrics to judge (Argo Rollouts skips it
// too).
func (r *SoftFactoryReleaseReconciler) reconcilePrePromotionAnalysis(ctx context.Context, s *releaseScope) (stepResult, error) {
	spec := s.release.Spec.Strategy.BlueGreen.PrePromotionAnalysis
	// Under onServingDegraded: Promote with the serving colour degraded, the analysis
	// would only keep traffic longer on the colour that is already failing.
	if spec == nil || s.activeColor == "" || s.promoteForDegradedServing {
		return next(), nil
	}
	a := analysisFor(s, deployv1alpha1.AnalysisPrePromotion)
	nextCheck := time.Duration(0)
	if a.Result == deployv1alpha1.AnalysisRunning {
		nextCheck = r.evaluateOnce(ctx, s, *spec, a, s.target)
	}
	switch a.Result {
	case deployv1alpha1.AnalysisPassed:
		return next(), nil
	case deployv1alpha1.AnalysisFailed:
		s.failure = s.failed(deployv1alpha1.ReasonAnalysisFailed,
			fmt.Sprintf("Pre-promotion analysis of %s failed (%s);", s.release.DeploymentName(s.target), a.Message),
			"traffic never moved", "")
		return wait(), r.applyFailurePolicy(ctx, s)
	}
	s.analysisRunning = true
	if deadline := s.targetAvailability.deadline; !deadline.IsZero() && !s.now.Before(deadline) {
		s.failure = s.failed(deployv1alpha1.ReasonAnalysisInconclusive,
			fmt.Sprintf("Pre-promotion analysis of %s reached no verdict within the progress deadline (last: %s);", s.release.DeploymentName(s.target), a.Message),
			"traffic never moved", "")
		return wait(), r.applyFailurePolicy(ctx, s)
	}
	return waitFor(nextCheck), nil
}

// reconcilePostPromotionAnalysis runs the checks against the new active colour for the
// window after the flip, while the old colour is still up. A failure flips the selector
// back at once and records RolledBack; the old colour keeps serving. The first release
// has no old colour to go back to, so it is not analysed.
func (r *SoftFactoryReleaseReconciler) reconcilePostPromotionAnalysis(ctx context.Context, s *releaseScope) (stepResult, error) {
	spec := s.release.Spec.Strategy.BlueGreen.PostPromotionAnalysis
	if spec == nil || !s.settled() || s.deployments[s.activeColor.Other()] == nil {
		return next(), nil
	}
	a := analysisFor(s, deployv1alpha1.AnalysisPostPromotion)
	if a.Result == deployv1alpha1.AnalysisPassed {
		return next(), nil
	}
	promotedAt := promotedAtOf(s).Time
	windowEnd := promotedAt.Add(time.Duration(spec.WindowSeconds) * time.Second)
	nextCheck := time.Duration(0)
	if a.Result == deployv1alpha1.AnalysisRunning {
		nextCheck = r.evaluateOnce(ctx, s, spec.AnalysisSpec, a, s.activeColor)
		if a.Result == deployv1alpha1.AnalysisPassed {
			// Passing runs do not end the window early: it is a window of watching.
			a.Result = deployv1alpha1.AnalysisRunning
		}
	}
	if a.Result == deployv1alpha1.AnalysisFailed {
		return wait(), r.rollBack(ctx, s, a.Message)
	}
	if !s.now.Before(windowEnd) {
		a.Result = deployv1alpha1.AnalysisPassed
		return next(), nil
	}
	s.analysisRunning = true
	// The old colour must not scale down while the window is open: hold the later steps.
	return waitFor(min(nextCheck, windowEnd.Sub(s.now))), nil
}

// rollBack flips traffic back to the old colour after a failed post-promotion analysis.
// It only does so when the old colour is still fully up; otherwise it says so and
// leaves traffic where it is, since an empty colour would be worse.
func (r *SoftFactoryReleaseReconciler) rollBack(ctx context.Context, s *releaseScope, why string) error {
	failed := s.activeColor
	old := failed.Other()
	d := s.deployments[old]
	if d == nil || !deploymentSaturated(d, s.wantReplicas()) {
		s.failure = &failureFact{
			outcome: deployv1alpha1.OutcomeFailed,
			reason:  deployv1alpha1.ReasonAnalysisFailed,
			message: fmt.Sprintf("Post-promotion analysis failed (%s) but %s is not fully up, so traffic stays on %s. Roll back by applying the previous spec.",
				why, s.release.DeploymentName(old), failed),
		}
		return nil
	}
	if err := r.flip(ctx, s, old); err != nil {
		return err
	}
	s.promotedNow = false // this flip is a rollback, not a promotion of the current revision
	s.failure = &failureFact{
		outcome: deployv1alpha1.OutcomeRolledBack,
		reason:  deployv1alpha1.ReasonRolledBack,
		message: fmt.Sprintf("Post-promotion analysis failed (%s): traffic was flipped back to %s (revision %s), which keeps serving; %s no longer gets traffic.",
			why, old, deploymentRevision(d), s.release.DeploymentName(failed)),
	}
	r.event(s, corev1.EventTypeWarning, deployv1alpha1.ReasonRolledBack, "Rollback", "%s", s.failure.message)
	return nil
}
