package controller

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// buildActiveService is the Service clients use, selecting colour c.
func buildActiveService(r *deployv1alpha1.SoftFactoryRelease, c deployv1alpha1.Color) *corev1.Service {
	return buildService(r, r.ActiveServiceName(), r.Spec.Service.Type, c)
}

// buildPreviewService is the ClusterIP Service that reaches the colour under test: the
// endpoints the flip gate counts, and the address a smoke test calls.
func buildPreviewService(r *deployv1alpha1.SoftFactoryRelease, c deployv1alpha1.Color) *corev1.Service {
	return buildService(r, r.PreviewServiceName(), corev1.ServiceTypeClusterIP, c)
}

func buildService(r *deployv1alpha1.SoftFactoryRelease, name string, t corev1.ServiceType, c deployv1alpha1.Color) *corev1.Service {
	if t == "" {
		t = corev1.ServiceTypeClusterIP
	}
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: r.Namespace,
			// The EndpointSlice controller copies these labels onto the Service's slices,
			// which is how the operator's label-restricted cache sees them.
			Labels: labelsFor(r, deployv1alpha1.ComponentApp),
		},
		Spec: corev1.ServiceSpec{
			Type:     t,
			Selector: appSelector(r, c),
			Ports: []corev1.ServicePort{{
				Name:       "http",
				Port:       r.Spec.Service.Port,
				TargetPort: intstr.FromString("http"),
				Protocol:   corev1.ProtocolTCP,
			}},
		},
	}
}
