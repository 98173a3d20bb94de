package controller

import (
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// How the steps use what the pods say (pod_issues.go): a permanent issue stops the
// release at once, with the pod's own words; any other is shown in the step's condition
// while the release keeps waiting for it to heal (or for its deadline).

// targetIssue is why the target colour's pods of this revision do not run, as the
// Deployment (ReplicaFailure: no pod could be created) or the pods themselves say.
func (s *releaseScope) targetIssue(d *appsv1.Deployment) *podIssue {
	// A ReplicaFailure written before the Deployment controller saw the current spec
	// may be about the template just replaced.
	if d.Status.ObservedGeneration >= d.Generation {
		if i := issueOfDeployment(d); i != nil {
			return i
		}
	}
	var pods []*corev1.Pod
	for _, p := range s.podsOfColor(s.target) {
		if p.Labels[deployv1alpha1.LabelRevision] == s.revision {
			pods = append(pods, p)
		}
	}
	return issueOfPods(pods)
}

// waitingOn is the condition-message tail that shows what a step waits on ("" if nothing).
func waitingOn(issue *podIssue) string {
	if issue == nil {
		return ""
	}
	if issue.permanent {
		return "; cannot start: " + issue.String()
	}
	return "; waiting on " + issue.String() + " (this can heal by itself; the release waits)"
}

// podsCannotStart is the failure of a target colour whose pods cannot start.
func podsCannotStart(s *releaseScope, issue *podIssue) *failureFact {
	return s.failed(deployv1alpha1.ReasonPodsCannotStart,
		fmt.Sprintf("%s cannot start its pods, and this does not heal by itself: %s. The release stopped at once;", s.release.DeploymentName(s.target), issue),
		"traffic never moved", whatToDo(issue))
}

// whatToDo is the advice for a permanent issue, in the words a user acts on.
func whatToDo(issue *podIssue) string {
	switch {
	case strings.Contains(issue.message, "runAsNonRoot"):
		return "The image has no non-root USER and the operator runs every pod as non-root: build the image with a numeric non-root USER, " +
			"or set a non-zero uid in spec.podTemplate.securityContext.runAsUser (spec.backup.securityContext for the backup and restore), then apply again."
	case strings.Contains(issue.message, "violates PodSecurity"):
		return "The namespace's Pod Security level refuses the pod spec: remove what it names from spec.podTemplate, or ask for the namespace's level to change, then apply again."
	case issue.reason == "InvalidImageName":
		return "Correct spec.image (for example registry.example.com/softfactory:1.4.2) and apply again."
	default:
		return "Fix the spec and apply it again."
	}
}

// jobNoPodGrace is how long a running Job may have no pod before the release says so:
// the Job controller creates one within a second or two, unless the namespace refuses
// it (Pod Security, a quota), which only the Job's Events tell.
const jobNoPodGrace = 10 * time.Second

// runningJobIssue is why a running Job's pod does not run, if it says, and when to look
// again for a pod that was never created.
func (s *releaseScope) runningJobIssue(j *batchv1.Job) (*podIssue, time.Duration) {
	if j == nil || jobOutcome(j) != jobRunning {
		return nil, 0
	}
	if i := issueOfJob(j); i != nil {
		return i, 0
	}
	pods := s.podsOfJob(j)
	if i := issueOfPods(pods); i != nil {
		return i, 0
	}
	if len(pods) > 0 || j.Status.Active > 0 || j.Status.Ready != nil && *j.Status.Ready > 0 {
		return nil, 0
	}
	waited := max(s.now.Sub(j.CreationTimestamp.Time), 0)
	if waited < jobNoPodGrace {
		return nil, jobNoPodGrace - waited
	}
	return &podIssue{
		reason: "NoPod",
		where:  "Job " + j.Name,
		message: fmt.Sprintf("no pod exists %s after the Job was created: the namespace may refuse it (Pod Security, a quota); "+
			"`kubectl describe job %s` shows the Job controller's FailedCreate Events", waited.Round(time.Second), j.Name),
	}, 0
}

// migrationNeverStarted is the failure of a migration whose pod cannot start. No
// migration container ran, so the database is as the backup left it: no restore.
func migrationNeverStarted(s *releaseScope, j *batchv1.Job, issue *podIssue) *failureFact {
	return s.failed(deployv1alpha1.ReasonMigrationNeverStarted,
		fmt.Sprintf("Migration Job %s cannot start its pod, and this does not heal by itself: %s. "+
			"No migration ran, so the database is untouched and no restore is needed;", j.Name, issue),
		"", whatToDo(issue))
}

// watchRunningJob holds the runbook on a running Job: a pod that cannot start for a
// permanent reason stops the release at once (failed says how), one that may heal is
// shown and waited for, and a Job with no pod yet is looked at again after its grace.
func (r *SoftFactoryReleaseReconciler) watchRunningJob(s *releaseScope, j *batchv1.Job, issue *podIssue, recheck time.Duration,
	failed func(*releaseScope, *batchv1.Job, *podIssue) *failureFact) (stepResult, error) {
	if issue != nil && issue.permanent && s.failure == nil {
		s.failure = failed(s, j, issue)
		r.event(s, corev1.EventTypeWarning, s.failure.reason, "Stop", "%s", s.failure.message)
	}
	if recheck > 0 {
		return waitFor(recheck), nil
	}
	return wait(), nil
}

// backupNeverStarted is the failure of a backup whose pod cannot start.
func backupNeverStarted(s *releaseScope, j *batchv1.Job, issue *podIssue) *failureFact {
	return s.failed(deployv1alpha1.ReasonBackupFailed,
		fmt.Sprintf("Backup Job %s cannot start its pod, and this does not heal by itself: %s.", j.Name, issue),
		"No migration was run", whatToDo(issue))
}

// jobLastWords adds to a failed Job's own reason what its pod said last (the backup
// scripts write it to /dev/termination-log), and what to do about a volume the backup
// user cannot write.
func (s *releaseScope) jobLastWords(j *batchv1.Job, reason string) string {
	words := terminationMessageOf(s.podsOfJob(j))
	if words == "" {
		return reason
	}
	msg := fmt.Sprintf("%s; the pod said: %q", reason, words)
	if strings.Contains(words, "Permission denied") {
		// The uid comes from the spec the Job was built from: the cached Job has no pod
		// template (cacheshape).
		uid := "its user"
		if b := s.release.Spec.Backup; b != nil {
			uid = fmt.Sprintf("uid %d", *backupRunAs(b).RunAsUser)
		}
		msg += fmt.Sprintf(". The backup volume is not writable by the backup user (%s): Kubernetes does not apply fsGroup to hostPath "+
			"or local-path volumes. chown (or chmod) the volume's directory for %s, or use a volume type that supports fsGroup", uid, uid)
	}
	return msg
}
