//go:build e2e

package e2e

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// The serving colour breaks while the next revision's migration runs, as it would when a
// migration is not backward compatible and the serving pods restart on the changed
// schema. No traffic guard here: this spec takes the serving colour's ready endpoints
// away on purpose; what it checks is that the operator sees it and stops.
var _ = Describe("The serving colour, watched during a migration", Ordered, Serial, func() {
	const name = "watched"

	It("says ServingDegraded and stops the release when the serving colour's pods stop being ready mid-migration", func(ctx SpecContext) {
		namespace := createNamespace(ctx, "e2e-serving")
		key := client.ObjectKey{Namespace: namespace, Name: name}
		Expect(k8s.Create(ctx, newRelease(namespace, name, "registry.example.com/softfactory:2.0.0"))).To(Succeed())
		waitForSuccess(ctx, key)
		DeferCleanup(func(ctx SpecContext) {
			if CurrentSpecReport().Failed() {
				reportOnFailure(ctx, namespace)
			}
		})

		By("starting a migration that takes two minutes (the kwok Stages read KWOK_DURATION)")
		updateRelease(ctx, key, func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Spec.Image = "registry.example.com/softfactory:2.1.0"
			r.Spec.Migration.Env = []corev1.EnvVar{{Name: "KWOK_DURATION", Value: "120s"}}
		})
		var migrationJob string
		Eventually(func(g Gomega) {
			r := &deployv1alpha1.SoftFactoryRelease{}
			g.Expect(k8s.Get(ctx, key, r)).To(Succeed())
			rec := r.Status.RevisionRecordOf(r.Status.CurrentRevision)
			g.Expect(rec).NotTo(BeNil())
			g.Expect(rec.Migration).NotTo(BeNil())
			g.Expect(rec.Migration.State).To(Equal(deployv1alpha1.StepStarted))
			migrationJob = rec.Migration.JobName
			c := meta.FindStatusCondition(r.Status.Conditions, deployv1alpha1.ConditionServingDegraded)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(deployv1alpha1.ReasonServingHealthy), c.Message)
		}).WithContext(ctx).Should(Succeed())

		By("restarting blue's pods into pods that never pass readiness (kwok Stage softfactory-pod-never-ready)")
		patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"labels":{%q:"never-ready"}}}}}`, outcomeLabel)
		Expect(k8s.Patch(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name + "-blue"}},
			client.RawPatch(types.MergePatchType, []byte(patch)))).To(Succeed())

		r := waitForFailure(ctx, key, deployv1alpha1.ReasonServingDegraded)
		c := meta.FindStatusCondition(r.Status.Conditions, deployv1alpha1.ConditionServingDegraded)
		Expect(c.Status).To(Equal(metav1.ConditionTrue))
		Expect(c.Message).To(ContainSubstring("blue (revision "))
		Expect(c.Message).To(ContainSubstring("during migration Job " + migrationJob))
		degraded := meta.FindStatusCondition(r.Status.Conditions, deployv1alpha1.ConditionDegraded)
		Expect(degraded.Message).To(ContainSubstring("traffic never moved"))

		By("never deploying green nor moving traffic")
		Expect(activeColour(ctx, r)).To(Equal("blue"))
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name + "-green"}, &appsv1.Deployment{})).NotTo(Succeed())
		Expect(r.Status.History[0].Reason).To(Equal(deployv1alpha1.ReasonServingDegraded))
	})
})
