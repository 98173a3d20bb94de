package controller

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// setBlueActiveEndpoints plays the EndpointSlice controller for the active Service
// selecting blue: envtest runs none, so the test writes the slice itself, with one
// endpoint per named blue pod, ready or not as ready says.
func (h *harness) setBlueActiveEndpoints(ready map[string]bool) {
	GinkgoHelper()
	name := h.name + "-active"
	existing := &discoveryv1.EndpointSlice{}
	err := k8sClient.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: name}, existing)
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns, ResourceVersion: existing.ResourceVersion, Labels: map[string]string{
			discoveryv1.LabelServiceName:  h.name,
			deployv1alpha1.LabelManagedBy: deployv1alpha1.ManagedBy,
			deployv1alpha1.LabelInstance:  h.name,
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	i := 0
	for pod, ok := range ready {
		i++
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{fmt.Sprintf("10.0.1.%d", i)},
			Conditions: discoveryv1.EndpointConditions{Ready: new(ok)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: fmt.Sprintf("%s-blue-%s", h.name, pod)},
		})
	}
	if err == nil {
		Expect(k8sClient.Update(ctx, slice)).To(Succeed())
	} else {
		Expect(k8sClient.Create(ctx, slice)).To(Succeed())
	}
}

// twoReadyPods are both pods of the serving colour's ReplicaSet, ready.
func twoReadyPods() map[string]bool {
	return map[string]bool{"7f9c8-0": true, "7f9c8-1": true}
}

// startMigration applies the second image and completes its backup: its migration Job runs.
func (h *harness) startMigration() string {
	GinkgoHelper()
	h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Image = imageV2 })
	h.settle()
	rev := h.get().Status.CurrentRevision
	h.finishJob(h.name+"-backup-"+rev, true)
	h.settle()
	Expect(h.job(h.name + "-migrate-" + rev)).NotTo(BeNil())
	return rev
}

var _ = Describe("The serving colour, watched during a release", func() {
	var h *harness
	BeforeEach(func() { h = newHarness() })

	It("says ServingDegraded at once and stops the release when the serving colour loses its endpoints during the migration", func() {
		rev1 := h.releaseFirst(h.release(imageV1))
		h.setBlueActiveEndpoints(twoReadyPods())
		h.settle()
		Expect(h.condition(deployv1alpha1.ConditionServingDegraded)).To(BeNil(), "a settled release watches nothing")

		rev2 := h.startMigration()
		c := h.condition(deployv1alpha1.ConditionServingDegraded)
		Expect(c).NotTo(BeNil())
		Expect(c.Status).To(Equal(metav1.ConditionFalse))
		Expect(c.Reason).To(Equal(deployv1alpha1.ReasonServingHealthy))
		Expect(c.Message).To(ContainSubstring("2 of 2 ready endpoints on Service softfactory, 2 of 2 ready replicas"))
		h.events()

		By("blue's pods leaving the active Service's endpoints while the migration runs")
		h.clock.Step(90e9)
		h.setBlueActiveEndpoints(map[string]bool{"7f9c8-0": false, "7f9c8-1": false})
		h.settle()
		c = h.condition(deployv1alpha1.ConditionServingDegraded)
		Expect(c.Status).To(Equal(metav1.ConditionTrue))
		Expect(c.Reason).To(Equal(deployv1alpha1.ReasonServingDegraded))
		Expect(c.Message).To(ContainSubstring(fmt.Sprintf("blue (revision %s): 0 of 2 ready endpoints on Service softfactory", rev1)))
		Expect(c.Message).To(ContainSubstring("(an outage), since 12:01:30Z, during migration Job softfactory-migrate-" + rev2))
		Expect(c.LastTransitionTime.Time).To(BeTemporally("==", h.clock.Now()))

		By("stopping the release under the default policy, saying what was seen and what to do")
		d := h.condition(deployv1alpha1.ConditionDegraded)
		Expect(d.Status).To(Equal(metav1.ConditionTrue))
		Expect(d.Reason).To(Equal(deployv1alpha1.ReasonServingDegraded))
		Expect(d.Message).To(ContainSubstring("0 of 2 ready endpoints"))
		Expect(d.Message).To(ContainSubstring("traffic never moved and blue (revision " + rev1 + ") keeps serving"))
		Expect(d.Message).To(ContainSubstring("not backward compatible"))
		Expect(d.Message).To(ContainSubstring(deployv1alpha1.RetryAnnotation))
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhaseFailed))
		Expect(h.get().Status.History[0].Reason).To(Equal(deployv1alpha1.ReasonServingDegraded))
		Expect(h.events()).To(ContainElement(And(HavePrefix("Warning ServingDegraded"), ContainSubstring("0 of 2 ready endpoints"))))

		By("never deploying green nor flipping once the migration completes")
		h.finishJob(h.name+"-migrate-"+rev2, true)
		h.settle()
		Expect(h.deployment(deployv1alpha1.Green)).To(BeNil())
		Expect(h.activeSelectorColor()).To(Equal("blue"))

		By("staying stopped when blue recovers, while ServingDegraded says it recovered")
		h.setBlueActiveEndpoints(twoReadyPods())
		h.settle()
		Expect(h.condition(deployv1alpha1.ConditionServingDegraded).Reason).To(Equal(deployv1alpha1.ReasonServingHealthy))
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Reason).To(Equal(deployv1alpha1.ReasonServingDegraded))
		Expect(h.deployment(deployv1alpha1.Green)).To(BeNil())
		Expect(h.activeSelectorColor()).To(Equal("blue"))
	})

	It("says ServingDegraded when the serving Deployment loses ready pods, before any EndpointSlice of it is seen", func() {
		h.releaseFirst(h.release(imageV1))
		h.startMigration()
		Expect(h.condition(deployv1alpha1.ConditionServingDegraded).Reason).To(Equal(deployv1alpha1.ReasonServingHealthy))

		h.setReady(deployv1alpha1.Blue, 1)
		h.settle()
		c := h.condition(deployv1alpha1.ConditionServingDegraded)
		Expect(c.Status).To(Equal(metav1.ConditionTrue))
		Expect(c.Message).To(ContainSubstring("no EndpointSlice of it seen yet on Service softfactory, 1 of 2 ready replicas"))
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Reason).To(Equal(deployv1alpha1.ReasonServingDegraded))
	})

	It("watches from the start of the new colour's rollout when the release has no migration", func() {
		r := h.release(imageV1)
		r.Spec.Database, r.Spec.Backup, r.Spec.Migration = nil, nil, nil
		h.create(r)
		h.settle()
		h.makeColorAvailable(deployv1alpha1.Blue)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("blue"))

		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Image = imageV2 })
		h.settle()
		rev2 := h.get().Status.CurrentRevision
		c := h.condition(deployv1alpha1.ConditionServingDegraded)
		Expect(c).NotTo(BeNil())
		Expect(c.Reason).To(Equal(deployv1alpha1.ReasonServingHealthy))
		Expect(c.Message).To(ContainSubstring("while softfactory-green takes revision " + rev2))

		h.setReady(deployv1alpha1.Blue, 1)
		h.settle()
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Reason).To(Equal(deployv1alpha1.ReasonServingDegraded))
		Expect(*h.deployment(deployv1alpha1.Green).Spec.Replicas).To(BeZero(), "the new colour follows rollback.onFailure (ScaleDown)")
		Expect(h.activeSelectorColor()).To(Equal("blue"))
	})

	It("opens and closes the watch in the very passes that open and close its window, so the watch costs no status write of its own", func() {
		r := h.release(imageV1)
		r.Spec.Database, r.Spec.Backup, r.Spec.Migration = nil, nil, nil
		h.create(r)
		h.settle()
		h.makeColorAvailable(deployv1alpha1.Blue)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("blue"))

		By("the pass that gives green the revision reports the watch in the same status write")
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Image = imageV2 })
		Eventually(func() *appsv1.Deployment {
			h.reconcile()
			return h.deployment(deployv1alpha1.Green)
		}).ShouldNot(BeNil())
		c := h.condition(deployv1alpha1.ConditionServingDegraded)
		Expect(c).NotTo(BeNil(), "the window opened in this pass: a later pass would write again only to say so")
		Expect(c.Reason).To(Equal(deployv1alpha1.ReasonServingHealthy))

		By("the pass that flips drops it in the same status write")
		h.makeColorAvailable(deployv1alpha1.Green)
		Eventually(func() string {
			h.reconcile()
			return h.activeSelectorColor()
		}).Should(Equal("green"))
		Expect(h.condition(deployv1alpha1.ConditionServingDegraded)).To(BeNil(), "the window closed in this pass")
	})

	It("promotes the new colour as soon as it is available under policy Promote, without the promote annotation", func() {
		r := h.release(imageV1)
		r.Spec.Strategy.BlueGreen.AutoPromote = new(false)
		r.Spec.Strategy.BlueGreen.OnServingDegraded = deployv1alpha1.ServingDegradedPromote
		h.releaseFirst(r)
		h.setBlueActiveEndpoints(twoReadyPods())
		h.startSecond(imageV2)

		By("waiting for the promote annotation while blue is healthy")
		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhaseAwaitingPromotion))
		Expect(h.activeSelectorColor()).To(Equal("blue"))
		h.events()

		By("flipping at once when blue loses its endpoints, and saying why")
		h.setBlueActiveEndpoints(map[string]bool{"7f9c8-0": false, "7f9c8-1": true})
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("green"))
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Status).To(Equal(metav1.ConditionFalse))
		Expect(h.get().Status.History[0].Outcome).To(Equal(deployv1alpha1.OutcomePromoted))
		Expect(h.events()).To(ContainElement(And(HavePrefix("Warning ServingDegraded"),
			ContainSubstring("Promoting softfactory-green without waiting (onServingDegraded: Promote)"), ContainSubstring("1 of 2 ready endpoints"))))
		Expect(h.condition(deployv1alpha1.ConditionServingDegraded)).To(BeNil(), "settled: nothing is watched any more")
	})

	It("tells under policy Promote that the new colour takes traffic as soon as it is available", func() {
		r := h.release(imageV1)
		r.Spec.Strategy.BlueGreen.AutoPromote = new(false)
		r.Spec.Strategy.BlueGreen.OnServingDegraded = deployv1alpha1.ServingDegradedPromote
		h.releaseFirst(r)
		h.startSecond(imageV2)
		h.setReady(deployv1alpha1.Blue, 0)
		h.settle()
		c := h.condition(deployv1alpha1.ConditionServingDegraded)
		Expect(c.Status).To(Equal(metav1.ConditionTrue))
		Expect(c.Message).To(ContainSubstring("0 of 2 ready replicas (an outage)"))
		Expect(c.Message).To(ContainSubstring("onServingDegraded is Promote: softfactory-green takes traffic as soon as it is available"))
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Status).To(Equal(metav1.ConditionFalse), "Promote does not stop the release")
		Expect(h.activeSelectorColor()).To(Equal("blue"), "green is not available yet")
	})

	It("never trips on a healthy serving colour, including a rolling restart that keeps its endpoints", func() {
		h.releaseFirst(h.release(imageV1))
		h.setBlueActiveEndpoints(twoReadyPods())
		h.startSecond(imageV2)

		By("a restart surging a third pod, then replacing the old ones one by one")
		for _, step := range []map[string]bool{
			{"7f9c8-0": true, "7f9c8-1": true, "a1b2c-0": false},
			{"7f9c8-0": true, "7f9c8-1": true, "a1b2c-0": true},
			{"7f9c8-1": true, "a1b2c-0": true, "a1b2c-1": false},
			{"7f9c8-1": true, "a1b2c-0": true, "a1b2c-1": true},
			{"a1b2c-0": true, "a1b2c-1": true},
		} {
			h.setBlueActiveEndpoints(step)
			h.settle()
			c := h.condition(deployv1alpha1.ConditionServingDegraded)
			Expect(c.Status).To(Equal(metav1.ConditionFalse), "%v", step)
			Expect(c.Reason).To(Equal(deployv1alpha1.ReasonServingHealthy))
		}
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Status).To(Equal(metav1.ConditionFalse))

		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("green"))
		Expect(h.condition(deployv1alpha1.ConditionServingDegraded)).To(BeNil())
	})
})
