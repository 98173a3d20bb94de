package controller

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// TrimDeployment is the informer-cache transform for the colours' Deployments. The cache
// keeps what a pass reads (metadata, replicas, selector, each container's name and image,
// status) and drops the rest of the pod template, most of a Deployment's size: at 1,000
// releases that is 2,000 pod templates the operator would otherwise hold for nothing.
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
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: containers}},
	}
	return d, nil
}

// TrimReplicaSet is the informer-cache transform for the colours' ReplicaSets, which the
// promotion gate reads (replicaSetsSaturated): metadata (owner, labels, annotations,
// generation), replicas and status. The pod template and selector are dropped: the
// gate never compares templates, it matches the Deployment's revision annotation.
func TrimReplicaSet(obj any) (any, error) {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return obj, nil
	}
	rs.ManagedFields = nil
	rs.Spec = appsv1.ReplicaSetSpec{Replicas: rs.Spec.Replicas}
	return rs, nil
}
