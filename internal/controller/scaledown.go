package controller

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// reconcileScaleDown scales the colour that no longer serves to zero once the time
// stored on its Deployment has passed, with a requeue computed for that moment (never a
// sleep). Its Deployment stays, so a rollback is a scale-up and a flip.
func (r *SoftFactoryReleaseReconciler) reconcileScaleDown(ctx context.Context, s *releaseScope) (stepResult, error) {
	if !s.settled() {
		return next(), nil
	}
	old := s.deployments[s.activeColor.Other()]
	if old == nil || ptr.Deref(old.Spec.Replicas, 1) == 0 {
		s.scaleDown = scaleDownFact{}
		return next(), nil
	}
	at, err := time.Parse(time.RFC3339, old.Annotations[deployv1alpha1.ScaleDownAtAnnotation])
	if err != nil {
		// Up without a deadline (an operator stopped between flip and annotation, or a
		// colour kept for inspection): give it the full delay from now.
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
	r.event(s, corev1.EventTypeNormal, "ScaledDown", "ScaleDown", "Scaled %s down to 0 after the scale-down delay; its Deployment stays for rollback", old.Name)
	return next(), nil
}
