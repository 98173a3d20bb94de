package controller

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// reconcileJobRetention deletes the finished Jobs of revisions the release no longer
// records. Once a step is in status.revisions its Job is no longer the record that it
// ran, so Jobs need not pile up (at 1,000 releases × 10 revisions, 30,000 Jobs and their
// pods in etcd). Deletion by revision rather than a ttlSecondsAfterFinished: a failed
// Job of the current revision, or of the one serving, stays for `kubectl logs` as long
// as it may matter, however long that is, and a Job goes only after the status that
// replaces it has been written (the records are read from the stored release).
// A running Job is never deleted: a migration is never interrupted.
func (r *SoftFactoryReleaseReconciler) reconcileJobRetention(ctx context.Context, s *releaseScope) (stepResult, error) {
	keep := keptRevisions(s)
	for _, rec := range s.release.Status.Revisions {
		keep[rec.Revision] = true
	}
	for _, j := range s.jobs {
		if !retainedComponent[j.Labels[deployv1alpha1.LabelComponent]] || keep[j.Labels[deployv1alpha1.LabelRevision]] ||
			jobOutcome(j) == jobRunning || !metav1.IsControlledBy(j, s.release) || !j.DeletionTimestamp.IsZero() {
			continue
		}
		// Background: the Job goes at once, the garbage collector takes its pods after.
		err := r.Delete(ctx, j, client.PropagationPolicy(metav1.DeletePropagationBackground),
			client.Preconditions{UID: &j.UID})
		if client.IgnoreNotFound(err) != nil && !apierrors.IsConflict(err) {
			return next(), err
		}
		r.event(s, corev1.EventTypeNormal, "DeletedJob", "Delete",
			"Deleted finished Job %s of revision %s, which is no longer in the release's records", j.Name, j.Labels[deployv1alpha1.LabelRevision])
	}
	return next(), nil
}

// retainedComponent are the Jobs the operator creates per revision; the scheduled
// backups' Jobs belong to their CronJob, which bounds them itself.
var retainedComponent = map[string]bool{
	deployv1alpha1.ComponentBackup:    true,
	deployv1alpha1.ComponentMigration: true,
	deployv1alpha1.ComponentRestore:   true,
	deployv1alpha1.ComponentSmokeTest: true,
}
