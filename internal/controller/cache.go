package controller

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TrimDeployment is the informer-cache transform for the colours' Deployments. The cache
// keeps what a pass reads (metadata, replicas, selector, each container's name and image,
// status, a hash of the pod template) and drops the rest of the pod template, most of a
// Deployment's size: at 1,000 releases that is 2,000 pod templates the operator would
// otherwise hold for nothing.
// The template is only ever written from the spec, replaced whole (deploymentPatch), so
// nothing is computed against the dropped part.
// managedFields go too, as for every cached kind.
func TrimDeployment(obj any) (any, error) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		return obj, nil
	}
	containers := make([]corev1.Container, len(d.Spec.Template.Spec.Containers))
	for i, c := range d.Spec.Template.Spec.Containers {
		containers[i] = corev1.Container{Name: c.Name, Image: c.Image}
	}
	d.ManagedFields = nil
	d.Spec = appsv1.DeploymentSpec{
		Replicas: d.Spec.Replicas,
		Selector: d.Spec.Selector,
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{templateHashKey: podTemplateHash(&d.Spec.Template)}},
			Spec:       corev1.PodSpec{Containers: containers},
		},
	}
	return d, nil
}

// TrimReplicaSet is the informer-cache transform for the colours' ReplicaSets, which the
// promotion gate reads (replicaSetsSaturated): metadata, replicas, status, and the hash
// of the pod template in place of the template.
func TrimReplicaSet(obj any) (any, error) {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return obj, nil
	}
	rs.ManagedFields = nil
	rs.Spec = appsv1.ReplicaSetSpec{
		Replicas: rs.Spec.Replicas,
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{templateHashKey: podTemplateHash(&rs.Spec.Template)}},
		},
	}
	return rs, nil
}

// templateHashKey: the cache's copies of Deployments and ReplicaSets keep a hash of their
// pod template under this key of the (otherwise dropped) template's annotations. It is
// never written to the API server: no patch is computed from a cached template. Equal
// hashes mean a ReplicaSet runs its Deployment's current template, the test the
// Deployment controller itself uses to find its new ReplicaSet.
const templateHashKey = "deploy.softfactory.io/template-hash"

// podTemplateHash hashes a pod template as the API server stores it, without the
// pod-template-hash label the Deployment controller adds to its ReplicaSets' copies.
func podTemplateHash(t *corev1.PodTemplateSpec) string {
	c := t.DeepCopy()
	delete(c.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	return hashOf(c)
}

// cachedTemplateHash is the template hash a cache transform left, or "" on an object
// that did not come from the cache (an API response).
func cachedTemplateHash(t *corev1.PodTemplateSpec) string {
	return t.Annotations[templateHashKey]
}

// TrimJob is the informer-cache transform for the release's Jobs. A pass reads a Job's
// metadata (name, labels, the backup-file annotation, owner) and status (its Complete or
// Failed condition, completion time) and, to find its pods, its selector; the pod
// template, most of a Job's size (a backup Job carries its whole script), goes. A cached
// Job is never written back: Jobs are only created from a builder, and deleted.
func TrimJob(obj any) (any, error) {
	j, ok := obj.(*batchv1.Job)
	if !ok {
		return obj, nil
	}
	j.ManagedFields = nil
	j.Spec = batchv1.JobSpec{
		Selector:              j.Spec.Selector,
		BackoffLimit:          j.Spec.BackoffLimit,
		ActiveDeadlineSeconds: j.Spec.ActiveDeadlineSeconds,
	}
	return j, nil
}
