package controller

import (
	"encoding/json"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	"github.com/softfactory/release-operator/internal/objecthash"
)

const (
	// apiContainerName is the SoftFactory API container in every app pod.
	apiContainerName = "api"
	// databaseURLEnv is the variable the Flask app and the Jobs read the database from.
	databaseURLEnv = "DATABASE_URL"
)

// buildDeployment is the desired Deployment of one colour running a revision.
// Pure: the same release, colour, revision and replicas give the same object.
func buildDeployment(r *deployv1alpha1.SoftFactoryRelease, c deployv1alpha1.Color, revision string, replicas int32) *appsv1.Deployment {
	selector := appSelector(r, c)
	podLabels := labelsFor(r, deployv1alpha1.ComponentApp)
	podLabels[deployv1alpha1.LabelColor] = string(c)
	podLabels[deployv1alpha1.LabelRevision] = revision
	var podAnnotations map[string]string
	if r.Spec.PodTemplate != nil {
		podLabels = labels.Merge(r.Spec.PodTemplate.Labels, podLabels) // the operator's labels win: a selector never breaks
		podAnnotations = r.Spec.PodTemplate.Annotations
	}

	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name:      r.DeploymentName(c),
			Namespace: r.Namespace,
			Labels: labels.Merge(map[string]string{
				deployv1alpha1.LabelColor: string(c),
			}, labelsFor(r, deployv1alpha1.ComponentApp)),
			Annotations: map[string]string{deployv1alpha1.RevisionAnnotation: revision},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas:                new(replicas),
			Selector:                &metav1.LabelSelector{MatchLabels: selector},
			ProgressDeadlineSeconds: new(r.Spec.Strategy.BlueGreen.ProgressDeadlineSeconds),
			// A colour's old ReplicaSets serve nothing: a rollback is the other colour's
			// Deployment, and a pass reads only the current ReplicaSet. Kept, they piled
			// up to three per colour (six per release after six revisions), in etcd and
			// in the operator's cache: ~7 MB of live heap at 1,000 releases.
			RevisionHistoryLimit: ptr.To[int32](0),
			// The colour being replaced never serves traffic, so its old pods can go at
			// once; this also stops a half-updated colour from mixing two revisions.
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: podAnnotations},
				Spec:       buildAppPodSpec(r),
			},
		},
	}
	if d.Spec.ProgressDeadlineSeconds != nil && *d.Spec.ProgressDeadlineSeconds == 0 {
		d.Spec.ProgressDeadlineSeconds = nil
	}
	d.Annotations[deployv1alpha1.SpecHashAnnotation] = objecthash.Of(d.Spec.Template, d.Spec.Strategy, d.Spec.ProgressDeadlineSeconds)
	return d
}

// startupTimeout is how long the API process may take to open its port.
const (
	startupTimeout            = 5 * time.Minute
	startupProbePeriodSeconds = 2
)

// buildAppPodSpec is the API pod: the image, probes on the health path, the user's env
// and overrides, and the restricted security defaults.
func buildAppPodSpec(r *deployv1alpha1.SoftFactoryRelease) corev1.PodSpec {
	hc := r.Spec.HealthCheck
	// Readiness is the runbook's check: the API answers on the health path, which also
	// checks the database. A pod failing it leaves the endpoints until it passes again.
	readiness := &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: hc.Path,
			Port: intstr.FromString("http"),
		}},
		InitialDelaySeconds: hc.InitialDelaySeconds,
		PeriodSeconds:       hc.PeriodSeconds,
		TimeoutSeconds:      hc.TimeoutSeconds,
		FailureThreshold:    hc.FailureThreshold,
	}
	// Liveness asks only whether the process still accepts connections. On the health
	// path it restarted every API pod when the database blipped (seen on the real
	// cluster): a restart cures nothing there and turns an unready API into an outage.
	// Three times as patient as readiness.
	portOpen := corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("http")}}
	liveness := &corev1.Probe{
		ProbeHandler:     portOpen,
		PeriodSeconds:    hc.PeriodSeconds,
		TimeoutSeconds:   hc.TimeoutSeconds,
		FailureThreshold: hc.FailureThreshold * 3,
	}
	// Liveness waits until the port first opens, however long the app takes to boot (a
	// worker can take 20 s on a busy node); one that never opens it is restarted after
	// startupTimeout, and the progress deadline reports it.
	startup := &corev1.Probe{
		ProbeHandler:     portOpen,
		PeriodSeconds:    startupProbePeriodSeconds,
		TimeoutSeconds:   hc.TimeoutSeconds,
		FailureThreshold: int32(startupTimeout / (startupProbePeriodSeconds * time.Second)),
	}

	api := corev1.Container{
		Name:            apiContainerName,
		Image:           r.Spec.Image,
		Ports:           []corev1.ContainerPort{{Name: "http", ContainerPort: r.Spec.Port, Protocol: corev1.ProtocolTCP}},
		Env:             appEnv(r),
		EnvFrom:         r.Spec.EnvFrom,
		Resources:       r.Spec.Resources,
		ReadinessProbe:  readiness,
		LivenessProbe:   liveness,
		StartupProbe:    startup,
		SecurityContext: restrictedContainerSecurityContext(),
	}
	spec := corev1.PodSpec{
		Containers:      []corev1.Container{api},
		SecurityContext: restrictedPodSecurityContext(appRunAs(r)),
	}
	applySchedulingOverrides(r, &spec)
	if o := r.Spec.PodTemplate; o != nil {
		spec.Containers[0].VolumeMounts = o.VolumeMounts
		spec.Containers = append(spec.Containers, withRestrictedDefaults(o.Sidecars)...)
		spec.Volumes = o.Volumes
		spec.TopologySpreadConstraints = o.TopologySpreadConstraints
		spec.TerminationGracePeriodSeconds = o.TerminationGracePeriodSeconds
	}
	return spec
}

// applySchedulingOverrides gives a pod the service account, pull secrets and node
// placement of spec.podTemplate: the API pods, and the Jobs too, since a cluster that
// needs them for the app needs them for its Jobs.
func applySchedulingOverrides(r *deployv1alpha1.SoftFactoryRelease, pod *corev1.PodSpec) {
	o := r.Spec.PodTemplate
	if o == nil {
		return
	}
	pod.ServiceAccountName = o.ServiceAccountName
	pod.ImagePullSecrets = o.ImagePullSecrets
	pod.NodeSelector = o.NodeSelector
	pod.Tolerations = o.Tolerations
	pod.Affinity = o.Affinity
	pod.PriorityClassName = o.PriorityClassName
}

// appEnv is the API container's env: DATABASE_URL by reference to the user's Secret
// (unless the user sets it), then the user's own variables. The operator never reads
// the Secret itself.
func appEnv(r *deployv1alpha1.SoftFactoryRelease) []corev1.EnvVar {
	var env []corev1.EnvVar
	if r.Spec.Database != nil && !hasEnv(r.Spec.Env, databaseURLEnv) {
		env = append(env, databaseURLFromSecret(r.Spec.Database))
	}
	return append(env, r.Spec.Env...)
}

func databaseURLFromSecret(db *deployv1alpha1.DatabaseSpec) corev1.EnvVar {
	return corev1.EnvVar{Name: databaseURLEnv, ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: db.URLSecretRef.Name},
			Key:                  db.URLSecretRef.Key,
		},
	}}
}

func hasEnv(env []corev1.EnvVar, name string) bool {
	for _, e := range env {
		if e.Name == name {
			return true
		}
	}
	return false
}

// deploymentPatch is the strategic merge patch that takes current to desired: the
// operator's annotations and labels merged in, the replicas set, and, when the template
// changed, the pod template and strategy replaced whole ("$patch: replace"), so that
// whatever the new template no longer has (a nodeSelector key, a pod annotation, a
// probe) is removed without the patch being computed against the live object. A colour
// taking a new revision also loses its scale-down deadline: it is no longer the old
// colour waiting to scale down.
func deploymentPatch(current, desired *appsv1.Deployment, templateChanged bool) ([]byte, error) {
	annotations := map[string]any{}
	for k, v := range desired.Annotations {
		annotations[k] = v
	}
	if desired.Annotations[deployv1alpha1.RevisionAnnotation] != current.Annotations[deployv1alpha1.RevisionAnnotation] {
		annotations[deployv1alpha1.ScaleDownAtAnnotation] = nil
	}
	spec := map[string]any{"replicas": desired.Spec.Replicas}
	if templateChanged {
		template, err := replaceWhole(desired.Spec.Template)
		if err != nil {
			return nil, err
		}
		strategy, err := replaceWhole(desired.Spec.Strategy)
		if err != nil {
			return nil, err
		}
		spec["template"] = template
		spec["strategy"] = strategy
		spec["progressDeadlineSeconds"] = desired.Spec.ProgressDeadlineSeconds
		spec["revisionHistoryLimit"] = desired.Spec.RevisionHistoryLimit
	}
	return json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": annotations, "labels": desired.Labels},
		"spec":     spec,
	})
}

// replaceWhole renders v as a JSON object carrying the strategic-merge directive that
// makes the API server replace the field with it instead of merging into it.
func replaceWhole(v any) (map[string]any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, err
	}
	out["$patch"] = "replace"
	return out, nil
}
