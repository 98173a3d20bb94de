package controller

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// releaseWithCompatibilityCheck is the harness release of imageV1 with a smoke test and
// the compatibility check on (the API server defaults it: enabled, 300 s).
func (h *harness) releaseWithCompatibilityCheck() *deployv1alpha1.SoftFactoryRelease {
	r := h.release(imageV1)
	r.Spec.Strategy.BlueGreen.SmokeTest = &deployv1alpha1.SmokeTestSpec{
		Command: []string{"pytest", "tests/smoke"},
		Env:     []corev1.EnvVar{{Name: "SMOKE_USER", Value: "probe"}},
	}
	r.Spec.Strategy.BlueGreen.CompatibilityCheck = &deployv1alpha1.CompatibilityCheckSpec{}
	return r
}

// migrateSecond applies imageV2 and completes its backup and migration.
func (h *harness) migrateSecond() string {
	GinkgoHelper()
	rev := h.startMigration()
	Expect(h.jobs(deployv1alpha1.ComponentCompatibilityCheck)).To(BeEmpty(), "no check before the migration completed")
	h.finishJob(h.name+"-migrate-"+rev, true)
	h.settle()
	return rev
}

var _ = Describe("The compatibility check", func() {
	var h *harness
	BeforeEach(func() { h = newHarness() })

	It("runs the serving revision's smoke test against the active Service once the migration completed, and flips only after it passed", func() {
		h.releaseFirst(h.releaseWithCompatibilityCheck())
		rev2 := h.migrateSecond()

		check := h.job(h.get().CompatibilityCheckJobName(rev2, 1))
		Expect(check).NotTo(BeNil())
		Expect(check.Labels).To(HaveKeyWithValue(deployv1alpha1.LabelComponent, deployv1alpha1.ComponentCompatibilityCheck))
		Expect(check.Spec.ActiveDeadlineSeconds).To(Equal(ptr.To[int64](300)))
		pod := check.Spec.Template.Spec
		Expect(pod.Containers[0].Image).To(Equal(imageV1), "the serving revision's image, read from its Deployment")
		Expect(pod.Containers[0].Command).To(Equal([]string{"pytest", "tests/smoke"}))
		url := "http://softfactory." + h.ns + ".svc:80"
		Expect(pod.Containers[0].Env).To(Equal([]corev1.EnvVar{
			{Name: "SERVICE_URL", Value: url}, {Name: "PREVIEW_URL", Value: url}, {Name: "SMOKE_USER", Value: "probe"},
		}))
		smoke := buildSmokeTestJob(h.get(), rev2).Spec.Template.Spec
		Expect(pod.SecurityContext).To(Equal(smoke.SecurityContext), "the smoke test's security")
		Expect(pod.Containers[0].SecurityContext).To(Equal(smoke.Containers[0].SecurityContext))
		Expect(pod.AutomountServiceAccountToken).To(Equal(new(false)))

		By("bringing green up while the check runs, and saying the flip waits for it")
		Expect(h.deployment(deployv1alpha1.Green)).NotTo(BeNil())
		p := h.condition(deployv1alpha1.ConditionPromoted)
		Expect(p.Reason).To(Equal(deployv1alpha1.ReasonCompatibilityCheckRunning))
		Expect(p.Message).To(ContainSubstring("the flip waits for it"))

		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()
		h.finishJob(h.get().SmokeTestJobName(rev2), true)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("blue"), "green passed its own gates, the check has not")

		h.finishJob(check.Name, true)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("green"))
		Expect(h.jobs(deployv1alpha1.ComponentCompatibilityCheck)).To(HaveLen(1))
	})

	It("stops the release before the flip when the serving revision fails its smoke test against the migrated database", func() {
		rev1 := h.releaseFirst(h.releaseWithCompatibilityCheck())
		rev2 := h.migrateSecond()
		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()
		h.finishJob(h.get().SmokeTestJobName(rev2), true)

		h.finishJob(h.get().CompatibilityCheckJobName(rev2, 1), false)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("blue"))
		d := h.condition(deployv1alpha1.ConditionDegraded)
		Expect(d.Status).To(Equal(metav1.ConditionTrue))
		Expect(d.Reason).To(Equal(deployv1alpha1.ReasonCompatibilityCheckFailed))
		Expect(d.Message).To(ContainSubstring("the serving revision " + rev1 + " failed its smoke test against the migrated database"))
		Expect(d.Message).To(ContainSubstring("not backward compatible"))
		Expect(d.Message).To(ContainSubstring("traffic never moved and blue (revision " + rev1 + ") keeps serving"))
		Expect(d.Message).To(ContainSubstring("softfactory-blue may fail at its next restart"))
		Expect(*h.deployment(deployv1alpha1.Green).Spec.Replicas).To(BeZero(), "rollback.onFailure ScaleDown")
	})

	It("runs again as the next attempt's Job when the failed revision is retried, and keeps a check that passed", func() {
		h.releaseFirst(h.releaseWithCompatibilityCheck())
		rev2 := h.migrateSecond()
		first := h.get().CompatibilityCheckJobName(rev2, 1)
		h.finishJob(first, false)
		h.settle()
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Reason).To(Equal(deployv1alpha1.ReasonCompatibilityCheckFailed))
		h.events()

		h.update(func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Annotations = map[string]string{deployv1alpha1.RetryAnnotation: rev2}
		})
		h.settle()
		second := h.get().CompatibilityCheckJobName(rev2, 2)
		Expect(h.events()).To(ContainElement(ContainSubstring("the compatibility check as Job " + second)))
		Expect(h.job(second)).NotTo(BeNil())
		Expect(h.job(second).Spec.Template.Spec.Containers[0].Image).To(Equal(imageV1))
		h.finishJob(second, true)
		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()

		By("keeping the passed check when a later step fails and the revision is retried again")
		h.finishJob(h.get().SmokeTestAttemptJobName(rev2, 2), false)
		h.settle()
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Reason).To(Equal(deployv1alpha1.ReasonSmokeTestFailed))
		h.events()
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Annotations = map[string]string{deployv1alpha1.RetryAnnotation: rev2 + "/2"}
		})
		h.settle()
		Expect(h.events()).To(ContainElement(ContainSubstring("the compatibility check " + second)))
		Expect(h.job(h.get().CompatibilityCheckJobName(rev2, 3))).To(BeNil())
		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()
		h.finishJob(h.get().SmokeTestAttemptJobName(rev2, 3), true)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("green"))
	})

	It("stops at once when the check's pod can never start", func() {
		h.releaseFirst(h.releaseWithCompatibilityCheck())
		rev2 := h.migrateSecond()
		name := h.get().CompatibilityCheckJobName(rev2, 1)
		h.addJobPod(name, waitingStatus("InvalidImageName", `couldn't parse image name "registry.example.com/softfactory:1.4.1 "`))
		h.settle()
		d := h.condition(deployv1alpha1.ConditionDegraded)
		Expect(d.Reason).To(Equal(deployv1alpha1.ReasonCompatibilityCheckFailed))
		Expect(d.Message).To(ContainSubstring("cannot start its pod"))
		Expect(d.Message).To(ContainSubstring("InvalidImageName"))
		Expect(h.activeSelectorColor()).To(Equal("blue"))
	})

	It("creates no second check Job when a fresh operator takes over", func() {
		h.releaseFirst(h.releaseWithCompatibilityCheck())
		rev2 := h.migrateSecond()
		Expect(h.jobs(deployv1alpha1.ComponentCompatibilityCheck)).To(HaveLen(1))

		h.rec = h.newReconciler()
		h.settle()
		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()
		h.rec = h.newReconciler()
		h.settle()
		jobs := h.jobs(deployv1alpha1.ComponentCompatibilityCheck)
		Expect(jobs).To(HaveLen(1))
		Expect(jobs[0].Name).To(Equal(h.get().CompatibilityCheckJobName(rev2, 1)))
		Expect(jobs[0].Status.Conditions).To(BeEmpty(), "still the first, running")
	})

	It("neither holds nor stops a flip under onServingDegraded: Promote once the serving colour is degraded", func() {
		r := h.releaseWithCompatibilityCheck()
		r.Spec.Strategy.BlueGreen.AutoPromote = new(false)
		r.Spec.Strategy.BlueGreen.OnServingDegraded = deployv1alpha1.ServingDegradedPromote
		h.releaseFirst(r)
		rev2 := h.migrateSecond()
		h.setReady(deployv1alpha1.Blue, 0)
		h.finishJob(h.get().CompatibilityCheckJobName(rev2, 1), false)
		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()
		h.finishJob(h.get().SmokeTestJobName(rev2), true)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("green"))
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Status).To(Equal(metav1.ConditionFalse))
	})

	It("is not run when disabled", func() {
		r := h.releaseWithCompatibilityCheck()
		r.Spec.Strategy.BlueGreen.CompatibilityCheck.Enabled = new(false)
		h.releaseFirst(r)
		rev2 := h.migrateSecond()
		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()
		h.finishJob(h.get().SmokeTestJobName(rev2), true)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("green"))
		Expect(h.jobs(deployv1alpha1.ComponentCompatibilityCheck)).To(BeEmpty())
	})
})
