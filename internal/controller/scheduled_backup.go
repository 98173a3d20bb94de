package controller

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// scheduledBackupFact is what the scheduled-backup step found: reason is one of the
// ScheduledBackupReady reasons, "" when no schedule is configured.
type scheduledBackupFact struct {
	reason  string
	message string
}

// reconcileScheduledBackup keeps the CronJob of spec.backup.schedule, or removes the one
// the operator made when the schedule is cleared. It runs whatever the release is doing,
// paused included: backups of the serving database are never held back. Removing the
// CronJob never touches the dumps it wrote. It is optional: whatever goes wrong here is
// told by the ScheduledBackupReady condition, retried with a growing delay, and never
// holds the runbook's later steps.
func (r *SoftFactoryReleaseReconciler) reconcileScheduledBackup(ctx context.Context, s *releaseScope) (stepResult, error) {
	err := r.keepScheduledBackup(ctx, s)
	if err == nil {
		return next(), nil
	}
	s.scheduledBackup.reason = deployv1alpha1.ReasonScheduledBackupFailed
	s.scheduledBackup.message = fmt.Sprintf("The CronJob %s of spec.backup.schedule could not be kept: %v. "+
		"The release goes on without it; the operator tries again.", s.release.ScheduledBackupName(), err)
	if c := conflictOf(err); c != nil {
		s.scheduledBackup.reason = deployv1alpha1.ReasonOwnershipConflict
		s.scheduledBackup.message = fmt.Sprintf("%s. No scheduled backups are taken until it is deleted or renamed; the release goes on.", c.Error())
	}
	return nextAfter(optionalRetryAfter(s, deployv1alpha1.ConditionScheduledBackupReady)), nil
}

func (r *SoftFactoryReleaseReconciler) keepScheduledBackup(ctx context.Context, s *releaseScope) error {
	rel := s.release
	key := client.ObjectKey{Namespace: rel.Namespace, Name: rel.ScheduledBackupName()}
	current := &batchv1.CronJob{}
	err := r.Get(ctx, key, current)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	exists := err == nil

	if rel.Spec.Backup == nil || rel.Spec.Database == nil || rel.Spec.Backup.Schedule == "" {
		if exists && metav1.IsControlledBy(current, rel) {
			return client.IgnoreNotFound(r.Delete(ctx, current))
		}
		return nil
	}
	if exists && !metav1.IsControlledBy(current, rel) {
		return r.conflictWith(current, rel)
	}
	serving := deploymentRevision(s.deployments[s.activeColor])
	if serving == "" {
		serving = s.revision
	}
	desired := buildScheduledBackupCronJob(rel, serving)
	s.scheduledBackup = scheduledBackupFact{reason: deployv1alpha1.ReasonScheduled,
		message: fmt.Sprintf("CronJob %s backs up the database on schedule %q", desired.Name, rel.Spec.Backup.Schedule)}
	if !exists {
		if err := controllerutil.SetControllerReference(rel, desired, r.Scheme()); err != nil {
			return err
		}
		err := r.Create(ctx, desired)
		if apierrors.IsAlreadyExists(err) {
			// Ours and not cached yet (the watch brings it), or another's: a conflict.
			_, err = r.claimExisting(ctx, s, desired)
		}
		return err
	}
	if current.Annotations[deployv1alpha1.SpecHashAnnotation] == desired.Annotations[deployv1alpha1.SpecHashAnnotation] {
		return nil
	}
	patched := current.DeepCopy()
	patched.Labels = labels.Merge(patched.Labels, desired.Labels)
	if patched.Annotations == nil {
		patched.Annotations = map[string]string{}
	}
	patched.Annotations[deployv1alpha1.SpecHashAnnotation] = desired.Annotations[deployv1alpha1.SpecHashAnnotation]
	patched.Spec = desired.Spec
	return r.Patch(ctx, patched, client.MergeFrom(current))
}

func scheduledBackupCondition(s *releaseScope) *metav1.Condition {
	if s.scheduledBackup.reason == "" {
		return nil
	}
	c := cond(deployv1alpha1.ConditionScheduledBackupReady, s.scheduledBackup.reason == deployv1alpha1.ReasonScheduled,
		s.scheduledBackup.reason, "%s", s.scheduledBackup.message)
	return &c
}
