package controller

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// A pod that cannot start says why in its own status long before any deadline: the
// kubelet's waiting reason and message, the scheduler's PodScheduled condition, the
// ReplicaSet controller's ReplicaFailure on the Deployment. podIssue is that account,
// and whether it can heal by itself: an image pull back-off ends when the registry or
// the pull secret is fixed, a missing Secret when it is created, an unschedulable pod
// when nodes free up; an image that runs as root, an invalid image name or a pod spec
// the namespace's Pod Security refuses never will, so waiting for the deadline only
// hides the cause for minutes.
type podIssue struct {
	reason    string // the Kubernetes reason: ImagePullBackOff, Unschedulable, ...
	message   string // its message, in Kubernetes' own words
	where     string // the pod (and container) it was read from
	permanent bool   // it cannot heal without a change to the spec or the namespace
}

func (i *podIssue) String() string {
	return fmt.Sprintf("%s: %s: %s", i.where, i.reason, i.message)
}

// permanentWaitingReasons are container waiting reasons no retry can fix.
var permanentWaitingReasons = map[string]bool{
	"InvalidImageName": true,
	// ErrImageNeverPull: imagePullPolicy Never and no such image on the node.
	"ErrImageNeverPull": true,
}

// issueOfPod is the first reason a pod gives for not running, or nil.
func issueOfPod(p *corev1.Pod) *podIssue {
	if p == nil || p.DeletionTimestamp != nil {
		return nil
	}
	statuses := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for _, cs := range statuses {
		w := cs.State.Waiting
		if w == nil || w.Reason == "" || w.Reason == "ContainerCreating" || w.Reason == "PodInitializing" {
			continue
		}
		issue := &podIssue{reason: w.Reason, message: w.Message, where: fmt.Sprintf("pod %s, container %s", p.Name, cs.Name)}
		switch {
		case permanentWaitingReasons[w.Reason]:
			issue.permanent = true
		case w.Reason == "CreateContainerConfigError" && strings.Contains(w.Message, "runAsNonRoot"):
			// "container has runAsNonRoot and image will run as root": the image has
			// no non-root USER; only a new image (or a runAsUser) fixes it.
			issue.permanent = true
		}
		if issue.message == "" {
			issue.message = "no message"
		}
		return issue
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return &podIssue{reason: c.Reason, message: c.Message, where: "pod " + p.Name}
		}
	}
	return nil
}

// issueOfPods is the first issue among pods, a permanent one first.
func issueOfPods(pods []*corev1.Pod) *podIssue {
	var first *podIssue
	for _, p := range pods {
		i := issueOfPod(p)
		if i == nil {
			continue
		}
		if i.permanent {
			return i
		}
		if first == nil {
			first = i
		}
	}
	return first
}

// issueOfDeployment reads the ReplicaFailure condition: the ReplicaSet controller could
// not create a pod at all (a quota, or the namespace's Pod Security refusing the spec).
func issueOfDeployment(d *appsv1.Deployment) *podIssue {
	if d == nil {
		return nil
	}
	for _, c := range d.Status.Conditions {
		if c.Type != appsv1.DeploymentReplicaFailure || c.Status != corev1.ConditionTrue {
			continue
		}
		return &podIssue{
			reason: c.Reason, message: c.Message, where: "Deployment " + d.Name,
			// A quota can be raised while the release waits; a spec Pod Security
			// refuses stays refused.
			permanent: strings.Contains(c.Message, "violates PodSecurity"),
		}
	}
	return nil
}

// issueOfJob is what a Job's own status says before its Failed condition lands: the Job
// controller marks FailureTarget (deadline, backoff limit, pod failure policy) first. It
// is shown, not acted on: the Failed condition that follows is judged as any failure.
// Pod creation refusals are only in the Job's Events, which the operator does not read.
func issueOfJob(j *batchv1.Job) *podIssue {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobFailureTarget && c.Status == corev1.ConditionTrue {
			return &podIssue{reason: c.Reason, message: c.Message, where: "Job " + j.Name}
		}
	}
	return nil
}

// terminationMessageOf is the last words of a pod's failed container (what the backup
// and restore scripts write to /dev/termination-log), or "".
func terminationMessageOf(pods []*corev1.Pod) string {
	for _, p := range pods {
		for _, cs := range p.Status.ContainerStatuses {
			for _, t := range []*corev1.ContainerStateTerminated{cs.State.Terminated, cs.LastTerminationState.Terminated} {
				if t != nil && t.ExitCode != 0 && strings.TrimSpace(t.Message) != "" {
					return strings.TrimSpace(t.Message)
				}
			}
		}
	}
	return ""
}
