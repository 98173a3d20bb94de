package controller

import (
	"fmt"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// The release's pods (the colours' API pods and its Jobs' pods) are read for two facts no
// owner's status carries: whether a container ever ran (a migration that never started
// must not lead to a restore) and why a pod cannot start (its waiting reason, in its own
// words, within seconds instead of at a deadline).

// podsOfJob are the pods the Job controller made for job.
func (s *releaseScope) podsOfJob(job *batchv1.Job) []*corev1.Pod {
	if job == nil {
		return nil
	}
	var out []*corev1.Pod
	for i := range s.pods {
		if metav1.IsControlledBy(&s.pods[i], job) {
			out = append(out, &s.pods[i])
		}
	}
	return out
}

// podsOfColor are the API pods of one colour.
func (s *releaseScope) podsOfColor(c deployv1alpha1.Color) []*corev1.Pod {
	var out []*corev1.Pod
	for i := range s.pods {
		l := s.pods[i].Labels
		if l[deployv1alpha1.LabelComponent] == deployv1alpha1.ComponentApp && l[deployv1alpha1.LabelColor] == string(c) {
			out = append(out, &s.pods[i])
		}
	}
	return out
}

// containerStarted reports whether a container of p has run its process: running now,
// or terminated (now or before a restart) after it had started. A container that failed
// at creation (StartError, ContainerCannotRun) or never left "waiting" has not.
func containerStarted(p *corev1.Pod) bool {
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if cs.State.Running != nil {
			return true
		}
		if terminatedAfterStart(cs.State.Terminated) || terminatedAfterStart(cs.LastTerminationState.Terminated) {
			return true
		}
	}
	return false
}

func terminatedAfterStart(t *corev1.ContainerStateTerminated) bool {
	if t == nil || t.StartedAt.Unix() <= 0 {
		return false
	}
	switch t.Reason {
	case "StartError", "ContainerCannotRun":
		return false
	}
	return true
}

// podStateSignature sums up what a pod watch event may change that a pass acts on:
// each container's waiting reason, whether it runs, how it ended, and whether the pod
// could be scheduled. Readiness is not in it: the colours' ReplicaSets and the preview
// Service's EndpointSlices already bring that.
func podStateSignature(p *corev1.Pod) string {
	var b strings.Builder
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		fmt.Fprintf(&b, "%s:", cs.Name)
		switch {
		case cs.State.Waiting != nil:
			fmt.Fprintf(&b, "w=%s", cs.State.Waiting.Reason)
		case cs.State.Running != nil:
			b.WriteString("r")
		case cs.State.Terminated != nil:
			fmt.Fprintf(&b, "t=%s/%d", cs.State.Terminated.Reason, cs.State.Terminated.ExitCode)
		}
		fmt.Fprintf(&b, "/%d;", cs.RestartCount)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			fmt.Fprintf(&b, "sched=%s/%s", c.Status, c.Reason)
		}
	}
	return b.String()
}

// podEvents selects the pod events a release acts on: a pod created with a state
// already, a change of its podStateSignature, and its deletion. A Deployment reports no
// replicas while its pods still terminate, so only the pod's own deletion says that the
// last writer is gone.
var podEvents = predicate.Funcs{
	CreateFunc: func(e event.CreateEvent) bool {
		p, ok := e.Object.(*corev1.Pod)
		return ok && podStateSignature(p) != ""
	},
	UpdateFunc:  func(e event.UpdateEvent) bool { return podStateChanged(e.ObjectOld, e.ObjectNew) },
	DeleteFunc:  func(event.DeleteEvent) bool { return true },
	GenericFunc: func(event.GenericEvent) bool { return false },
}

// podStateChanged says whether a pod update changed its podStateSignature.
func podStateChanged(old, updated client.Object) bool {
	o, ok1 := old.(*corev1.Pod)
	n, ok2 := updated.(*corev1.Pod)
	return ok1 && ok2 && podStateSignature(o) != podStateSignature(n)
}
