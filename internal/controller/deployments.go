package controller

import (
	"context"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// reconcileTargetDeployment puts the current revision on the target colour and scales it
// up, once backup and migration are done. Traffic does not move here.
func (r *SoftFactoryReleaseReconciler) reconcileTargetDeployment(ctx context.Context, s *releaseScope) (stepResult, error) {
	if s.failure != nil {
		return wait(), r.applyFailurePolicy(ctx, s)
	}
	rel := s.release
	desired := buildDeployment(rel, s.target, s.revision, s.wantReplicas())
	current := s.deployments[s.target]
	if current == nil {
		desired.Annotations[deployv1alpha1.ProgressStartedAnnotation] = s.now.UTC().Format(time.RFC3339)
		if err := controllerutil.SetControllerReference(rel, desired, r.Scheme()); err != nil {
			return wait(), err
		}
		if err := r.Create(ctx, desired); err != nil {
			if !apierrors.IsAlreadyExists(err) {
				return wait(), err
			}
			// Ours, not cached yet (the watch brings it), or another's: a conflict.
			if _, err := r.claimExisting(ctx, s, desired); err != nil {
				return wait(), err
			}
			return waitFor(time.Second), nil
		}
		s.deployments[s.target] = desired
		r.event(s, corev1.EventTypeNormal, deployv1alpha1.ReasonDeploying, "Deploy", "Created Deployment %s with revision %s", desired.Name, s.revision)
		s.targetAvailability = s.measureTargetAvailability()
		return next(), nil
	}

	oldRevision := deploymentRevision(current)
	if oldRevision != s.revision {
		// A revision that was still being deployed here and never got traffic is
		// superseded by this one.
		if oldRevision != "" && historyRecord(rel, oldRevision) == nil {
			s.supersededRev = oldRevision
		}
		desired.Annotations[deployv1alpha1.ProgressStartedAnnotation] = s.now.UTC().Format(time.RFC3339)
		r.event(s, corev1.EventTypeNormal, deployv1alpha1.ReasonDeploying, "Deploy", "Rolling %s to revision %s", current.Name, s.revision)
	} else if ptr.Deref(current.Spec.Replicas, 1) == 0 {
		// Scaling a colour back up (a rollback to the previous revision, or a retry)
		// starts a new progress deadline.
		desired.Annotations[deployv1alpha1.ProgressStartedAnnotation] = s.now.UTC().Format(time.RFC3339)
		r.event(s, corev1.EventTypeNormal, deployv1alpha1.ReasonDeploying, "Deploy", "Scaling %s back up with revision %s", current.Name, s.revision)
	} else if retriedSinceProgressStarted(s, current) {
		// A retry of a colour kept up (onFailure: Keep) counts its deadline afresh too.
		desired.Annotations[deployv1alpha1.ProgressStartedAnnotation] = s.now.UTC().Format(time.RFC3339)
	} else {
		desired.Annotations[deployv1alpha1.ProgressStartedAnnotation] = current.Annotations[deployv1alpha1.ProgressStartedAnnotation]
	}
	if err := r.patchDeployment(ctx, current, desired); err != nil {
		return wait(), err
	}
	s.targetAvailability = s.measureTargetAvailability()
	return next(), nil
}

// reconcileActiveDeployment keeps the colour serving the current revision at the wanted
// replicas (spec.replicas changes apply in place; they are not a new release).
func (r *SoftFactoryReleaseReconciler) reconcileActiveDeployment(ctx context.Context, s *releaseScope) (stepResult, error) {
	current := s.deployments[s.activeColor]
	desired := buildDeployment(s.release, s.activeColor, s.revision, s.wantReplicas())
	desired.Annotations[deployv1alpha1.ProgressStartedAnnotation] = current.Annotations[deployv1alpha1.ProgressStartedAnnotation]
	// Every input of the template is in the revision, so a template that differs for the
	// same revision was built by another operator version. Replacing it would restart
	// every serving pod at once (Recreate): it waits for the next release instead.
	if deploymentRevision(current) == s.revision {
		desired.Annotations[deployv1alpha1.SpecHashAnnotation] = current.Annotations[deployv1alpha1.SpecHashAnnotation]
	}
	return next(), r.patchDeployment(ctx, current, desired)
}

// patchDeployment brings current to desired with one strategic merge patch, or no call
// at all when the spec hash, replicas and annotations already match. Annotations and
// labels the operator does not set (scale-down-at aside) are left alone.
//
// current may be the cache's copy, which has no pod template (TrimDeployment): the patch
// does not depend on it, because it replaces the template whole instead of diffing it.
// That saves the read of the live object that a diff would need, on the one pass per
// release that is most crowded when many releases start at once.
func (r *SoftFactoryReleaseReconciler) patchDeployment(ctx context.Context, current, desired *appsv1.Deployment) error {
	templateChanged := current.Annotations[deployv1alpha1.SpecHashAnnotation] != desired.Annotations[deployv1alpha1.SpecHashAnnotation]
	if !templateChanged &&
		current.Annotations[deployv1alpha1.RevisionAnnotation] == desired.Annotations[deployv1alpha1.RevisionAnnotation] &&
		current.Annotations[deployv1alpha1.ProgressStartedAnnotation] == desired.Annotations[deployv1alpha1.ProgressStartedAnnotation] &&
		ptr.Deref(current.Spec.Replicas, 1) == ptr.Deref(desired.Spec.Replicas, 1) {
		return nil
	}
	patch, err := deploymentPatch(current, desired, templateChanged)
	if err != nil {
		return err
	}
	patched := current.DeepCopy()
	if err := r.Patch(ctx, patched, client.RawPatch(types.StrategicMergePatchType, patch)); err != nil {
		return err
	}
	*current = *patched
	return nil
}

// scaleDeployment sets a colour's replicas, and nothing else, with one merge patch.
func (r *SoftFactoryReleaseReconciler) scaleDeployment(ctx context.Context, d *appsv1.Deployment, replicas int32, annotations map[string]*string) error {
	if ptr.Deref(d.Spec.Replicas, 1) == replicas && len(annotations) == 0 {
		return nil
	}
	patched := d.DeepCopy()
	patched.Spec.Replicas = new(replicas)
	for k, v := range annotations {
		if patched.Annotations == nil {
			patched.Annotations = map[string]string{}
		}
		if v == nil {
			delete(patched.Annotations, k)
		} else {
			patched.Annotations[k] = *v
		}
	}
	if err := r.Patch(ctx, patched, client.MergeFrom(d)); err != nil {
		return err
	}
	*d = *patched
	return nil
}

// applyFailurePolicy scales the failed colour down (ScaleDown) or leaves it for
// inspection (Keep). Never the colour that serves traffic.
func (r *SoftFactoryReleaseReconciler) applyFailurePolicy(ctx context.Context, s *releaseScope) error {
	if s.release.Spec.Rollback.OnFailure == deployv1alpha1.FailurePolicyKeep || s.target == s.activeColor {
		return nil
	}
	d := s.deployments[s.target]
	if d == nil || deploymentRevision(d) != s.revision || ptr.Deref(d.Spec.Replicas, 1) == 0 {
		return nil
	}
	if err := r.scaleDeployment(ctx, d, 0, nil); err != nil {
		return err
	}
	r.event(s, corev1.EventTypeNormal, deployv1alpha1.ReasonScaledDown, "ScaleDown", "Scaled the failed %s down to 0; its Deployment stays for inspection", d.Name)
	return nil
}
