package cacheshape

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/softfactory/release-operator/internal/objecthash"
)

// TrimDeployment is the cache transform for the colours' Deployments. The cache keeps
// what a pass reads (metadata, replicas, selector, each container's name and image,
// status, a hash of the pod template) and drops the rest of the pod template, most of a
// Deployment's size: at 1,000 releases that is 2,000 pod templates held for nothing.
func TrimDeployment(obj any) (any, error) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		return obj, nil
	}
	d.ManagedFields = nil
	d.Spec = appsv1.DeploymentSpec{
		Replicas: d.Spec.Replicas,
		Selector: d.Spec.Selector,
		Template: corev1.PodTemplateSpec{
			ObjectMeta: hashedTemplateMeta(&d.Spec.Template),
			Spec:       corev1.PodSpec{Containers: containerImages(d.Spec.Template.Spec.Containers)},
		},
	}
	return d, nil
}

// TrimReplicaSet is the cache transform for the colours' ReplicaSets, which the
// promotion gate reads: metadata, replicas, status, and the hash of the pod template in
// place of the template. Not the annotations: they are the Deployment controller's and
// copies of the Deployment's, and a pass reads those on the Deployment.
func TrimReplicaSet(obj any) (any, error) {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return obj, nil
	}
	rs.ManagedFields = nil
	rs.Annotations = nil
	rs.Spec = appsv1.ReplicaSetSpec{
		Replicas: rs.Spec.Replicas,
		Template: corev1.PodTemplateSpec{ObjectMeta: hashedTemplateMeta(&rs.Spec.Template)},
	}
	return rs, nil
}

// TrimJob is the cache transform for the release's Jobs. A pass reads a Job's metadata
// (name, labels, annotations, owner; its pods are found by their owner reference) and
// status: the counters, the start and completion times, and the conditions it judges by
// (Complete, Failed, and FailureTarget, which comes first). The spec goes, most of a
// Job's size (a backup Job carries its whole script), and so do the conditions that
// repeat those (SuccessCriteriaMet) and the uncounted pods. Jobs are only created from
// a builder, and deleted. At 1,000 releases the cache holds 4,000 Jobs.
func TrimJob(obj any) (any, error) {
	j, ok := obj.(*batchv1.Job)
	if !ok {
		return obj, nil
	}
	j.ManagedFields = nil
	j.Spec = batchv1.JobSpec{}
	st := &j.Status
	var judged []batchv1.JobCondition
	for _, c := range st.Conditions {
		switch c.Type {
		case batchv1.JobComplete, batchv1.JobFailed, batchv1.JobFailureTarget:
			judged = append(judged, c)
		}
	}
	j.Status = batchv1.JobStatus{
		Conditions: judged,
		StartTime:  st.StartTime, CompletionTime: st.CompletionTime,
		Active: st.Active, Succeeded: st.Succeeded, Failed: st.Failed, Ready: st.Ready,
	}
	return j, nil
}

// TrimPod is the cache transform for the release's pods: metadata (labels and owner
// references find a pod's Job or colour), each container's name and image, the node, and
// the status facts a pass reads (phase, container states, and of the conditions only
// PodScheduled, which says why a pod is unschedulable: readiness is read from the
// Deployments and EndpointSlices). Specs, annotations and the rest go: at 1,000
// releases the cache holds thousands of pods, and a serving pod's four other
// conditions were ~500 of its ~3,700 bytes.
func TrimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	p.ManagedFields = nil
	p.Annotations = nil
	p.Spec = corev1.PodSpec{Containers: containerImages(p.Spec.Containers), NodeName: p.Spec.NodeName}
	p.Status = corev1.PodStatus{
		Phase:                 p.Status.Phase,
		Reason:                p.Status.Reason,
		Message:               p.Status.Message,
		Conditions:            scheduledCondition(p.Status.Conditions),
		InitContainerStatuses: trimContainerStatuses(p.Status.InitContainerStatuses),
		ContainerStatuses:     trimContainerStatuses(p.Status.ContainerStatuses),
	}
	return p, nil
}

// scheduledCondition is the PodScheduled condition of cs, alone in a slice of its own.
func scheduledCondition(cs []corev1.PodCondition) []corev1.PodCondition {
	for _, c := range cs {
		if c.Type == corev1.PodScheduled {
			return []corev1.PodCondition{c}
		}
	}
	return nil
}

func containerImages(in []corev1.Container) []corev1.Container {
	out := make([]corev1.Container, len(in))
	for i, c := range in {
		out[i] = corev1.Container{Name: c.Name, Image: c.Image}
	}
	return out
}

func trimContainerStatuses(in []corev1.ContainerStatus) []corev1.ContainerStatus {
	if in == nil {
		return nil
	}
	out := make([]corev1.ContainerStatus, len(in))
	for i, cs := range in {
		out[i] = corev1.ContainerStatus{
			Name:                 cs.Name,
			State:                cs.State,
			LastTerminationState: cs.LastTerminationState,
			Ready:                cs.Ready,
			RestartCount:         cs.RestartCount,
			Image:                cs.Image,
			Started:              cs.Started,
		}
	}
	return out
}

// TemplateHashAnnotation: the cache's copies of Deployments and ReplicaSets keep a hash
// of their pod template under this key of the (otherwise dropped) template's
// annotations. It is never written to the API server.
const TemplateHashAnnotation = "deploy.softfactory.io/template-hash"

// TemplateHash is the pod-template hash the cache left on a Deployment's or ReplicaSet's
// template, or "" on an object that did not come from the cache. Equal hashes mean a
// ReplicaSet runs its Deployment's current template, the test the Deployment controller
// itself uses to find its new ReplicaSet.
func TemplateHash(t *corev1.PodTemplateSpec) string {
	return t.Annotations[TemplateHashAnnotation]
}

// hashedTemplateMeta is a template's metadata as the cache keeps it: only the hash of
// the template as the API server stores it, without the pod-template-hash label the
// Deployment controller adds to its ReplicaSets' copies.
func hashedTemplateMeta(t *corev1.PodTemplateSpec) metav1.ObjectMeta {
	c := t.DeepCopy()
	delete(c.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	return metav1.ObjectMeta{Annotations: map[string]string{TemplateHashAnnotation: objecthash.Of(c)}}
}
