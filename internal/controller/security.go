package controller

import (
	corev1 "k8s.io/api/core/v1"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// Every pod the operator makes passes Pod Security "restricted": non-root, no privilege
// escalation, every capability dropped, RuntimeDefault seccomp. The user may add to the
// API pod (podTemplate: a sidecar's own securityContext, volumes), and the namespace's
// Pod Security level judges that; these defaults are what a platform team can rely on.

// restrictedPodSecurityContext is the pod-level half of "restricted", running as the
// identity the user gave (nil: the image's own USER). runAsNonRoot is set whatever the
// identity: the API refuses runAsUser 0, and an image whose USER is root is refused by
// the kubelet rather than run.
func restrictedPodSecurityContext(runAs *deployv1alpha1.RunAsSpec) *corev1.PodSecurityContext {
	sc := &corev1.PodSecurityContext{
		RunAsNonRoot:   new(true),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	if runAs != nil {
		sc.RunAsUser = runAs.RunAsUser
		sc.RunAsGroup = runAs.RunAsGroup
		sc.FSGroup = runAs.FSGroup
	}
	return sc
}

// appRunAs is the identity of the pods that run the release image: the API pods, the
// migration and the smoke test.
func appRunAs(r *deployv1alpha1.SoftFactoryRelease) *deployv1alpha1.RunAsSpec {
	if r.Spec.PodTemplate == nil {
		return nil
	}
	return r.Spec.PodTemplate.SecurityContext
}

// backupRunAs is the identity of the backup and restore pods: PostgreSQL's uid 70 of
// the postgres:*-alpine images, field by field unless the user set another. fsGroup
// lets that non-root user write to the backup volume.
func backupRunAs(b *deployv1alpha1.BackupSpec) *deployv1alpha1.RunAsSpec {
	runAs := deployv1alpha1.RunAsSpec{}
	if b.SecurityContext != nil {
		runAs = *b.SecurityContext
	}
	for _, id := range []**int64{&runAs.RunAsUser, &runAs.RunAsGroup, &runAs.FSGroup} {
		if *id == nil {
			*id = new(postgresUID)
		}
	}
	return &runAs
}

// withRestrictedDefaults gives each container without a securityContext of its own the
// container-level half of "restricted". A container the user gave one keeps it whole:
// the namespace's Pod Security level, not the operator, judges what it asks for.
func withRestrictedDefaults(containers []corev1.Container) []corev1.Container {
	out := make([]corev1.Container, len(containers))
	for i, c := range containers {
		if c.SecurityContext == nil {
			c.SecurityContext = restrictedContainerSecurityContext()
		}
		out[i] = c
	}
	return out
}

// restrictedContainerSecurityContext is the container-level half of "restricted".
func restrictedContainerSecurityContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: new(false),
		RunAsNonRoot:             new(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// postgresUID is the postgres user of the official postgres:*-alpine images.
const postgresUID int64 = 70
