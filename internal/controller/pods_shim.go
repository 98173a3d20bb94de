package controller

// TEMPORARY: stands in for the lead's "pods: observe the release's pods" commit on main
// until it is merged; deleted then.

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

func (s *releaseScope) podsOfJob(job *batchv1.Job) []*corev1.Pod         { return nil }
func (s *releaseScope) podsOfColor(c deployv1alpha1.Color) []*corev1.Pod { return nil }
func containerStarted(p *corev1.Pod) bool                                { return false }
