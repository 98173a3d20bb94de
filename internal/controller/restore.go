package controller

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// A restore follows the manual procedure of docs/backups.md, in order, one phase per
// fact observed: stop every colour's pods (the writers the release owns) and wait until
// they are gone, run the restore Job once, then scale the serving colour back to what it
// had and wait until it is ready. Each phase is recorded in the revision's record before
// the next acts, so a restart resumes it, and a restore that has started is never started
// again, whatever happens to its Job or to status.history.

// restoreAfterFailedMigration starts the restore of the current revision when the user
// asked for one (Automatic, or Manual with the restore annotation naming the revision),
// and drives it. The caller has established that a migration container ran and failed.
func (r *SoftFactoryReleaseReconciler) restoreAfterFailedMigration(ctx context.Context, s *releaseScope, rec *deployv1alpha1.RevisionRecord) (stepResult, error) {
	rel := s.release
	mode := rel.Spec.Rollback.RestoreModeOf()
	if rec.Restore == nil || rec.Restore.Phase == deployv1alpha1.RestoreAwaitingApproval {
		switch {
		case mode == deployv1alpha1.RestoreNever:
			return wait(), nil
		case mode == deployv1alpha1.RestoreManual && rel.Annotations[deployv1alpha1.RestoreAnnotation] != s.revision:
			if rec.Restore == nil {
				rec.Restore = &deployv1alpha1.RestoreRecord{Phase: deployv1alpha1.RestoreAwaitingApproval}
				r.event(s, corev1.EventTypeWarning, deployv1alpha1.ReasonRestoreAwaitingApproval, "Restore",
					"Revision %s's migration failed after it ran; the restore of %s waits for `kubectl sfrelease restore %s`",
					s.revision, rec.Backup.File, rel.Name)
			}
			return wait(), nil
		}
		rec.Restore = &deployv1alpha1.RestoreRecord{Phase: deployv1alpha1.RestoreStoppingWriters}
		if d := s.deployments[s.activeColor]; d != nil {
			rec.Restore.ServingColor = s.activeColor
			rec.Restore.ServingReplicas = ptr.Deref(d.Spec.Replicas, 1)
			if rec.Restore.ServingReplicas == 0 {
				rec.Restore.ServingReplicas = s.wantReplicas()
			}
		}
	}
	_, err := r.driveRestore(ctx, s, rec)
	return wait(), err
}

// driveRestore moves a restore through its phases as far as the world allows in this
// pass, and reports whether it is done.
func (r *SoftFactoryReleaseReconciler) driveRestore(ctx context.Context, s *releaseScope, rec *deployv1alpha1.RevisionRecord) (bool, error) {
	rr := rec.Restore
	for {
		switch rr.Phase {
		case deployv1alpha1.RestoreStoppingWriters:
			stopped, err := r.stopWriters(ctx, s, rec.Revision)
			if !stopped || err != nil {
				return false, err
			}
			rr.Phase = deployv1alpha1.RestoreRestoring
		case deployv1alpha1.RestoreRestoring:
			if rr.Job == nil {
				job, err := r.startRestoreJob(ctx, s, rec)
				if job == nil || err != nil {
					return false, err
				}
				rr.Job = startedRecord(job, s.now)
			}
			if rr.Job.State == deployv1alpha1.StepStarted {
				return false, nil
			}
			if rr.Job.State == deployv1alpha1.StepSucceeded {
				r.event(s, corev1.EventTypeNormal, deployv1alpha1.ReasonRestored, "Restore", "Restore Job %s loaded %s back", rr.Job.JobName, rr.Job.File)
			} else {
				r.event(s, corev1.EventTypeWarning, deployv1alpha1.ReasonRestoreFailed, "Restore", "Restore Job %s did not restore %s: %s", rr.Job.JobName, rr.Job.File, rr.Job.Message)
			}
			rr.Phase = deployv1alpha1.RestoreResumingWriters
		case deployv1alpha1.RestoreResumingWriters:
			resumed, err := r.resumeWriters(ctx, s, rr)
			if !resumed || err != nil {
				return false, err
			}
			rr.Phase = deployv1alpha1.RestoreDone
		default:
			return rr.Phase == deployv1alpha1.RestoreDone, nil
		}
	}
}

// stopWriters scales every colour of the release to zero and reports whether their pods
// are gone: pg_restore --clean under live writes would drop those writes and lock tables
// under traffic.
func (r *SoftFactoryReleaseReconciler) stopWriters(ctx context.Context, s *releaseScope, revision string) (bool, error) {
	stopped := true
	for _, c := range []deployv1alpha1.Color{deployv1alpha1.Blue, deployv1alpha1.Green} {
		d := s.deployments[c]
		if d == nil {
			continue
		}
		if ptr.Deref(d.Spec.Replicas, 1) > 0 {
			if err := r.scaleDeployment(ctx, d, 0, nil); err != nil {
				return false, err
			}
			r.event(s, corev1.EventTypeWarning, deployv1alpha1.ReasonStoppingWriters, "Restore",
				"Scaled %s to 0 so that nothing writes to the database while revision %s's dump is restored", d.Name, revision)
		}
		if !colorStopped(s, c, d) {
			stopped = false
		}
	}
	return stopped, nil
}

// colorStopped: the colour's Deployment wants no pod, its controller says none is left,
// and none of its pods is still in the cluster (terminating pods still write).
func colorStopped(s *releaseScope, c deployv1alpha1.Color, d *appsv1.Deployment) bool {
	return ptr.Deref(d.Spec.Replicas, 1) == 0 && d.Status.ObservedGeneration >= d.Generation &&
		d.Status.Replicas == 0 && len(s.podsOfColor(c)) == 0
}

// startRestoreJob creates the restore Job of a revision from its pre-migration dump.
func (r *SoftFactoryReleaseReconciler) startRestoreJob(ctx context.Context, s *releaseScope, rec *deployv1alpha1.RevisionRecord) (*batchv1.Job, error) {
	name := s.release.RestoreJobName(rec.Revision)
	if job := s.jobs[name]; job != nil {
		return job, nil
	}
	dump := ""
	if rec.Backup != nil {
		dump = rec.Backup.File
	}
	return r.createJob(ctx, s, name, func() *batchv1.Job { return buildRestoreJob(s.release, rec.Revision, dump) })
}

// resumeWriters scales the serving colour back to the replicas it had and reports
// whether it is ready again.
func (r *SoftFactoryReleaseReconciler) resumeWriters(ctx context.Context, s *releaseScope, rr *deployv1alpha1.RestoreRecord) (bool, error) {
	d := s.deployments[rr.ServingColor]
	if rr.ServingColor == "" || d == nil {
		return true, nil
	}
	if ptr.Deref(d.Spec.Replicas, 1) != rr.ServingReplicas {
		if err := r.scaleDeployment(ctx, d, rr.ServingReplicas, nil); err != nil {
			return false, err
		}
		r.event(s, corev1.EventTypeNormal, deployv1alpha1.ReasonResumingWriters, "Restore", "Scaling %s back up to %d after the restore", d.Name, rr.ServingReplicas)
	}
	if !deploymentSaturated(d, rr.ServingReplicas) {
		return false, nil
	}
	r.event(s, corev1.EventTypeNormal, deployv1alpha1.ReasonResumedWriters, "Restore", "%s serves again with %d ready replicas", d.Name, rr.ServingReplicas)
	return true, nil
}

// reconcileRestores drives a restore under way of a revision other than the current one
// (the user applied a new spec, or went back to the serving one, in the middle of it) and
// holds the release until it is done: a new backup, migration or scale-up must not run
// while the database is being restored or the serving colour is stopped. The current
// revision's restore is driven by its migration step, which reports on it.
func (r *SoftFactoryReleaseReconciler) reconcileRestores(ctx context.Context, s *releaseScope) (stepResult, error) {
	for i := range s.release.Status.Revisions {
		rec := &s.release.Status.Revisions[i]
		if rec.Revision == s.revision || !restoreUnderWay(rec) {
			continue
		}
		done, err := r.driveRestore(ctx, s, rec)
		if err != nil || !done {
			s.waitingFor = fmt.Sprintf("the restore of revision %s's dump to finish (%s): a new revision never starts while the database is restored",
				rec.Revision, rec.Restore.Phase)
			return wait(), err
		}
	}
	return next(), nil
}

// restoreUnderWay: the restore has stopped the writers and not yet brought them back.
func restoreUnderWay(rec *deployv1alpha1.RevisionRecord) bool {
	return restoreStarted(rec) && rec.Restore.Phase != deployv1alpha1.RestoreDone
}

// restoreDescription tells the user where the current revision's restore stands.
func restoreDescription(s *releaseScope, rec *deployv1alpha1.RevisionRecord) string {
	rel := s.release
	rr := rec.Restore
	dump := ""
	if rec.Backup != nil {
		dump = rec.Backup.File
	}
	serving := "the serving colour"
	if rr != nil && rr.ServingColor != "" {
		serving = rel.DeploymentName(rr.ServingColor)
	}
	if rr != nil && rr.Job != nil && rr.Job.File != "" && dump != "" && rr.Job.File != dump {
		// The restore loaded an earlier attempt's dump back; this attempt (a retry) ran on
		// a fresh one (its own file: it was taken after that restore), and a revision is
		// restored at most once.
		return fmt.Sprintf("Revision %s's restore already ran on an earlier attempt (Job %s loaded %s back), and a revision is restored at most once: "+
			"%s keeps serving on the database as this attempt's migration left it. To restore this attempt's dump %s, see docs/backups.md.",
			rec.Revision, rr.Job.JobName, rr.Job.File, servingDescription(s), dump)
	}
	if rr == nil {
		return fmt.Sprintf("%s keeps serving on the database as the migration left it. To restore the dump, see docs/backups.md, "+
			"or set spec.rollback.restore (Automatic or Manual) for next time.", servingDescription(s))
	}
	switch rr.Phase {
	case deployv1alpha1.RestoreAwaitingApproval:
		return fmt.Sprintf("%s keeps serving on the database as the migration left it. spec.rollback.restore is Manual: to load %s back, "+
			"run `kubectl sfrelease restore %s` (or `kubectl annotate sfrelease %s %s=%s`); the operator will then scale every colour to 0, "+
			"restore the dump, and scale %s back up. Every write made since the dump is lost.",
			servingDescription(s), dump, rel.Name, rel.Name, deployv1alpha1.RestoreAnnotation, rec.Revision, servingDescription(s))
	case deployv1alpha1.RestoreStoppingWriters:
		return fmt.Sprintf("Restoring %s: waiting for every pod of the release to stop (no writes during the restore).", dump)
	case deployv1alpha1.RestoreRestoring:
		return fmt.Sprintf("Restoring %s: restore Job %s is loading it back; %s is stopped until it is done.", dump, rel.RestoreJobName(rec.Revision), serving)
	}
	outcome := fmt.Sprintf("Restore Job %s loaded %s back: the database is as it was before the release.", rr.Job.JobName, dump)
	if rr.Job.State != deployv1alpha1.StepSucceeded {
		outcome = fmt.Sprintf("Restore Job %s did NOT restore %s (%s): the database is as the failed migration left it; "+
			"restore by hand (see docs/backups.md). The operator never runs a second restore for this revision.", rr.Job.JobName, dump, rr.Job.Message)
	}
	if rr.Phase == deployv1alpha1.RestoreResumingWriters {
		return outcome + fmt.Sprintf(" Waiting for %s to be ready again.", serving)
	}
	if rr.ServingColor != "" {
		return outcome + fmt.Sprintf(" %s serves again.", serving)
	}
	return outcome
}
