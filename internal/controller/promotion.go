package controller

import (
	"context"
	"time"

	"k8s.io/utils/ptr"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// reconcilePromotion flips traffic to the target colour once every gate before it has
// passed: automatically, or (manual mode) when the promote annotation names this
// revision. An annotation naming another revision is stale and ignored.
func (r *SoftFactoryReleaseReconciler) reconcilePromotion(ctx context.Context, s *releaseScope) (stepResult, error) {
	rel := s.release
	manualPromote := rel.Annotations[deployv1alpha1.PromoteAnnotation] == s.revision
	// The first release has nothing to protect yet, so it never waits for a human.
	if !rel.Spec.Strategy.BlueGreen.AutoPromoteEnabled() && !manualPromote && s.activeColor != "" {
		s.promotion.phase = promotionAwaiting
		return wait(), nil
	}
	old := s.activeColor
	if err := r.flip(ctx, s, s.target); err != nil {
		return wait(), err
	}
	s.promotion = promotionFact{phase: promotionDone, promotedAt: s.now}
	if old == "" || old == s.target {
		return next(), nil
	}
	// The old colour stays up for scaleDownDelaySeconds (kube-proxy propagation, and an
	// instant way back). The deadline is stored on its Deployment, so a restarted
	// operator honours it instead of starting the clock again or forgetting it.
	delay := time.Duration(*scaleDownDelay(rel)) * time.Second
	at := s.now.Add(delay).UTC().Format(time.RFC3339)
	if err := r.scaleDeployment(ctx, s.deployments[old], ptr.Deref(s.deployments[old].Spec.Replicas, 1), map[string]*string{
		deployv1alpha1.ScaleDownAtAnnotation: &at,
	}); err != nil {
		return wait(), err
	}
	return next(), nil
}

func scaleDownDelay(rel *deployv1alpha1.SoftFactoryRelease) *int32 {
	if d := rel.Spec.Strategy.BlueGreen.ScaleDownDelaySeconds; d != nil {
		return d
	}
	thirty := int32(30)
	return &thirty
}
