package controller

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// reconcilePromotion flips traffic to the target colour once every gate before it has
// passed: automatically, or (manual mode) when the promote annotation names this
// revision. An annotation naming another revision is stale and ignored.
func (r *SoftFactoryReleaseReconciler) reconcilePromotion(ctx context.Context, s *releaseScope) (stepResult, error) {
	rel := s.release
	manualPromote := rel.Annotations[deployv1alpha1.PromoteAnnotation] == s.revision
	// The first release has nothing to protect yet, so it never waits for a human; nor
	// does one whose serving colour is already broken under policy Promote.
	if !rel.Spec.Strategy.BlueGreen.AutoPromoteEnabled() && !manualPromote && s.activeColor != "" && !s.promoteForDegradedServing {
		s.promotion.phase = promotionAwaiting
		return wait(), nil
	}
	if s.promoteForDegradedServing {
		r.event(s, corev1.EventTypeWarning, deployv1alpha1.ReasonServingDegraded, "Promote",
			"Promoting %s without waiting (onServingDegraded: Promote): the serving colour degraded: %s", rel.DeploymentName(s.target), s.serving.describe(rel))
	}
	if err := r.flip(ctx, s, s.target); err != nil {
		return wait(), err
	}
	s.promotion = promotionFact{phase: promotionDone, promotedAt: s.now}
	// The old colour stays up for scaleDownDelaySeconds (kube-proxy propagation, and an
	// instant way back), counted from the flip time the flip stored on the active
	// Service in the same write: a restarted operator honours it, and no second write
	// is needed (reconcileScaleDown).
	return next(), nil
}
