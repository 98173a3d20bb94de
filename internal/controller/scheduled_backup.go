package controller

import (
	"context"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// reconcileScheduledBackup keeps the CronJob of spec.backup.schedule, or removes the one
// the operator made when the schedule is cleared. It runs whatever the release is doing,
// paused included: backups of the serving database are never held back. Removing the
// CronJob never touches the dumps it wrote.
func (r *SoftFactoryReleaseReconciler) reconcileScheduledBackup(ctx context.Context, s *releaseScope) (stepResult, error) {
	rel := s.release
	key := client.ObjectKey{Namespace: rel.Namespace, Name: rel.ScheduledBackupName()}
	current := &batchv1.CronJob{}
	err := r.Get(ctx, key, current)
	if err != nil && !apierrors.IsNotFound(err) {
		return wait(), err
	}
	exists := err == nil

	if rel.Spec.Backup == nil || rel.Spec.Database == nil || rel.Spec.Backup.Schedule == "" {
		if exists && metav1IsControlledBy(current, rel) {
			return next(), client.IgnoreNotFound(r.Delete(ctx, current))
		}
		return next(), nil
	}
	serving := deploymentRevision(s.deployments[s.activeColor])
	if serving == "" {
		serving = s.revision
	}
	desired := buildScheduledBackupCronJob(rel, serving)
	if !exists {
		if err := controllerutil.SetControllerReference(rel, desired, r.Scheme()); err != nil {
			return wait(), err
		}
		return next(), r.Create(ctx, desired)
	}
	if current.Annotations[specHashAnnotation] == desired.Annotations[specHashAnnotation] {
		return next(), nil
	}
	patched := current.DeepCopy()
	patched.Labels = mergeLabels(desired.Labels, patched.Labels)
	if patched.Annotations == nil {
		patched.Annotations = map[string]string{}
	}
	patched.Annotations[specHashAnnotation] = desired.Annotations[specHashAnnotation]
	patched.Spec = desired.Spec
	return next(), r.Patch(ctx, patched, client.MergeFrom(current))
}
