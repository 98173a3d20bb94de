package controller

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// reconcileJobRetention deletes the finished Jobs of revisions no colour runs any more.
// Once a step is in status.revisions its Job is no longer the record that it ran, so
// Jobs need not pile up: at 1,000 releases × 10 revisions that would be 20,000 Jobs and
// pods in etcd and in the operator's caches. What stays is what `kubectl logs` is
// wanted for: the Jobs of the revision being released and of those the colours run
// (the serving one, and the one an instant rollback returns to), like a Helm or Argo CD
// hook replaced on the next sync. Deletion by revision rather than a
// ttlSecondsAfterFinished: a failed Job of the current revision stays however long it
// matters. A Job goes only once the record that replaces it is stored (records are read
// from the stored release), and a running Job is never deleted: a migration is never
// interrupted.
func (r *SoftFactoryReleaseReconciler) reconcileJobRetention(ctx context.Context, s *releaseScope) (stepResult, error) {
	live, kept := liveRevisions(s), keptRevisions(s)
	var deleted []string
	for _, j := range s.jobs {
		rev := j.Labels[deployv1alpha1.LabelRevision]
		// A revision the release may still act on keeps its Jobs until its record is
		// stored (one made before records existed, say); one it forgot needs neither.
		unrecorded := kept[rev] && s.release.Status.RevisionRecordOf(rev) == nil
		if !retainedComponent[j.Labels[deployv1alpha1.LabelComponent]] || live[rev] || unrecorded ||
			jobOutcome(j) == jobRunning || !metav1.IsControlledBy(j, s.release) || !j.DeletionTimestamp.IsZero() ||
			r.deletedJobs.recent(j.UID, r.Clock.Now()) {
			continue
		}
		// Background: the Job goes at once, the garbage collector takes its pods after.
		err := r.Delete(ctx, j, client.PropagationPolicy(metav1.DeletePropagationBackground),
			client.Preconditions{UID: &j.UID})
		if client.IgnoreNotFound(err) != nil && !apierrors.IsConflict(err) {
			return next(), err
		}
		r.deletedJobs.remember(j.UID, r.Clock.Now())
		if err == nil {
			deleted = append(deleted, j.Name)
		}
	}
	if len(deleted) > 0 {
		// One Event per pass, not per Job: a revision's Jobs usually go together.
		slices.Sort(deleted)
		r.event(s, corev1.EventTypeNormal, deployv1alpha1.ReasonDeletedJobs, "Delete",
			"Deleted finished Jobs %s: no colour runs their revisions, and status.revisions keeps what they did", strings.Join(deleted, ", "))
	}
	return next(), nil
}

// liveRevisions are the revision being released and those a colour's Deployment runs.
func liveRevisions(s *releaseScope) map[string]bool {
	live := map[string]bool{s.revision: true}
	for _, d := range s.deployments {
		if rev := deploymentRevision(d); rev != "" {
			live[rev] = true
		}
	}
	return live
}

// retainedComponent are the Jobs the operator creates per revision; the scheduled
// backups' Jobs belong to their CronJob, which bounds them itself.
var retainedComponent = map[string]bool{
	deployv1alpha1.ComponentBackup:             true,
	deployv1alpha1.ComponentMigration:          true,
	deployv1alpha1.ComponentRestore:            true,
	deployv1alpha1.ComponentSmokeTest:          true,
	deployv1alpha1.ComponentCompatibilityCheck: true,
	deployv1alpha1.ComponentContract:           true,
	// The pre-contract dump's Job; the dump itself stays on the volume.
	deployv1alpha1.ComponentContractBackup: true,
}

// deletedJobsMemory is how long a deleted Job is not deleted again: the passes that run
// before the watch brings the deletion into the cache still list it.
const deletedJobsMemory = time.Minute

// deletedJobs remembers the Jobs this process deleted, so that those passes do not send
// the same DELETE again (about a third of them did, at 100 releases).
type deletedJobs struct {
	mu  sync.Mutex
	at  map[types.UID]time.Time
	gcd time.Time
}

func (d *deletedJobs) recent(uid types.UID, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.at[uid]
	return ok && now.Sub(t) < deletedJobsMemory
}

func (d *deletedJobs) remember(uid types.UID, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.at == nil {
		d.at = map[types.UID]time.Time{}
	}
	// Forget what is past its memory now and then, so the map stays as small as the
	// deletions of the last minute.
	if now.Sub(d.gcd) > deletedJobsMemory {
		for u, t := range d.at {
			if now.Sub(t) >= deletedJobsMemory {
				delete(d.at, u)
			}
		}
		d.gcd = now
	}
	d.at[uid] = now
}
