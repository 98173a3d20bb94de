package controller

import (
	"context"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// reconcileScaleDown scales the colour that no longer serves to zero once the
// scale-down delay after the last flip has passed, with a requeue computed for that
// moment (never a sleep). Its Deployment stays, so a rollback is a scale-up and a flip.
func (r *SoftFactoryReleaseReconciler) reconcileScaleDown(ctx context.Context, s *releaseScope) (stepResult, error) {
	if !s.settled() {
		return next(), nil
	}
	old := s.deployments[s.activeColor.Other()]
	if old == nil || ptr.Deref(old.Spec.Replicas, 1) == 0 {
		s.scaleDown = scaleDownFact{}
		return next(), nil
	}
	at, known := scaleDownDeadline(s, old)
	if !known {
		// Up with no flip time to count from (a Service whose annotation was removed by
		// hand): give it the full delay from now, stored so a restart keeps the clock.
		stamp := s.now.Add(time.Duration(*scaleDownDelay(s.release)) * time.Second).UTC().Format(time.RFC3339)
		if err := r.scaleDeployment(ctx, old, ptr.Deref(old.Spec.Replicas, 1), map[string]*string{deployv1alpha1.ScaleDownAtAnnotation: &stamp}); err != nil {
			return wait(), err
		}
		at, _ = time.Parse(time.RFC3339, stamp)
	}
	if s.now.Before(at) {
		s.scaleDown = scaleDownFact{pending: true, at: at}
		return nextAfter(at.Sub(s.now)), nil
	}
	if err := r.scaleDeployment(ctx, old, 0, map[string]*string{deployv1alpha1.ScaleDownAtAnnotation: nil}); err != nil {
		return wait(), err
	}
	s.scaleDown = scaleDownFact{}
	r.event(s, corev1.EventTypeNormal, deployv1alpha1.ReasonScaledDown, "ScaleDown", "Scaled %s down to 0 after the scale-down delay; its Deployment stays for rollback", old.Name)
	return next(), nil
}

// scaleDownDeadline is when the old colour goes to zero: the scale-down delay after the
// flip time the active Service records, or a deadline stored on the old colour's
// Deployment where there is no flip time to count from. A colour scaled up by hand long
// after the flip is past its deadline and goes straight back to zero.
func scaleDownDeadline(s *releaseScope, old *appsv1.Deployment) (time.Time, bool) {
	if at, err := time.Parse(time.RFC3339, old.Annotations[deployv1alpha1.ScaleDownAtAnnotation]); err == nil {
		return at, true
	}
	if s.activeService == nil {
		return time.Time{}, false
	}
	flipped, err := time.Parse(time.RFC3339Nano, s.activeService.Annotations[deployv1alpha1.PromotedAtAnnotation])
	if err != nil {
		return time.Time{}, false
	}
	return flipped.Add(time.Duration(*scaleDownDelay(s.release)) * time.Second), true
}

// scaleDownDelay is spec.strategy.blueGreen.scaleDownDelaySeconds, 30 when unset.
func scaleDownDelay(rel *deployv1alpha1.SoftFactoryRelease) *int32 {
	if d := rel.Spec.Strategy.BlueGreen.ScaleDownDelaySeconds; d != nil {
		return d
	}
	thirty := int32(30)
	return &thirty
}
