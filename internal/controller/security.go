package controller

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// Every pod the operator makes passes Pod Security "restricted": non-root, no privilege
// escalation, every capability dropped, RuntimeDefault seccomp. The user may add to the
// API pod (podTemplate), but these defaults are what a platform team can rely on.

// restrictedPodSecurityContext is the pod-level half of "restricted". runAsUser is set
// only for images the operator chooses (PostgreSQL's uid 70 in postgres:alpine), since
// the user's image declares its own non-root user.
func restrictedPodSecurityContext(runAsUser *int64) *corev1.PodSecurityContext {
	sc := &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr.To(true),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	if runAsUser != nil {
		sc.RunAsUser = runAsUser
		sc.RunAsGroup = runAsUser
		// fsGroup lets the non-root backup user write to the backup volume.
		sc.FSGroup = runAsUser
	}
	return sc
}

// restrictedContainerSecurityContext is the container-level half of "restricted".
func restrictedContainerSecurityContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		RunAsNonRoot:             ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// postgresUID is the postgres user of the official postgres:*-alpine images.
const postgresUID int64 = 70
