package controller

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// A new operator version may build a different pod template for the same release (here:
// this version gives sidecars the restricted securityContext, an earlier one did not).
// The colours use the Recreate strategy, so replacing the serving colour's template
// would stop all of its pods at once: the serving colour keeps the template it was
// released with, and the new builders apply from the next release on.
var _ = Describe("An operator upgrade", func() {
	It("never restarts the serving colour's pods for a template its new builders would build differently", func() {
		h := newHarness()
		r := h.release(imageV1)
		r.Spec.PodTemplate = &deployv1alpha1.PodTemplateOverrides{Sidecars: []corev1.Container{{Name: "proxy", Image: "envoy"}}}
		h.releaseFirst(r)
		h.settle()

		By("making blue look like an earlier operator's: a sidecar without a securityContext, another spec hash")
		blue := h.deployment(deployv1alpha1.Blue)
		older := blue.DeepCopy()
		older.Spec.Template.Spec.Containers[1].SecurityContext = nil
		older.Annotations[deployv1alpha1.SpecHashAnnotation] = "built-by-an-earlier-operator"
		Expect(k8sClient.Patch(ctx, older, client.MergeFrom(blue))).To(Succeed())
		older = h.deployment(deployv1alpha1.Blue)
		Expect(older.Spec.Template.Spec.Containers[1].SecurityContext).To(BeNil())

		h.settle()
		after := h.deployment(deployv1alpha1.Blue)
		Expect(after.Generation).To(Equal(older.Generation), "the serving colour's template was replaced: Recreate would restart all its pods")
		Expect(after.Spec.Template.Spec.Containers[1].SecurityContext).To(BeNil())
		Expect(h.activeSelectorColor()).To(Equal("blue"))

		By("applying the new builders with the next release")
		h.startSecond(imageV1 + "-next")
		green := h.deployment(deployv1alpha1.Green)
		Expect(green.Spec.Template.Spec.Containers[1].SecurityContext).NotTo(BeNil())
	})
})
