package controller

import (
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// defaultCompatibilityCheckDeadline is the API's default, for a spec not defaulted by the API server.
const defaultCompatibilityCheckDeadline = 300

// activeURL is how a Job reaches the serving colour: the active Service.
func activeURL(r *deployv1alpha1.SoftFactoryRelease) string {
	return fmt.Sprintf("http://%s.%s.svc:%d", r.ActiveServiceName(), r.Namespace, r.Spec.Service.Port)
}

// buildCompatibilityCheckJob runs the user's smoke test with the serving revision's image
// (servingImage, read from the serving Deployment: the spec names only the new one)
// against the active Service, so the old code on the migrated database. SERVICE_URL and
// PREVIEW_URL both point there, whichever of the two the smoke test reads. It never
// retries: a check that fails once is a finding.
func buildCompatibilityCheckJob(r *deployv1alpha1.SoftFactoryRelease, revision string, attempt int32, servingImage string) *batchv1.Job {
	url := activeURL(r)
	pod := smokeTestPodSpec(r, servingImage, []corev1.EnvVar{{Name: "SERVICE_URL", Value: url}, {Name: "PREVIEW_URL", Value: url}})
	pod.Containers[0].Name = deployv1alpha1.ComponentCompatibilityCheck
	deadline := r.Spec.Strategy.BlueGreen.CompatibilityCheck.ActiveDeadlineSeconds
	if deadline <= 0 {
		deadline = defaultCompatibilityCheckDeadline
	}
	return buildJob(r, r.CompatibilityCheckJobName(revision, attempt), deployv1alpha1.ComponentCompatibilityCheck, revision, ptr.To[int32](0), deadline, pod)
}
