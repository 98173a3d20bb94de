//go:build e2e

/*
Copyright 2026.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package e2e

import (
	"maps"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// One release object lives through the runbook's cases in order, the way a team's
// production release does: two good releases, a failed migration, a green that never
// gets ready, and a release promoted by hand. Each case starts from where the last
// one left the cluster.
var _ = Describe("A release on a real control plane", Ordered, Serial, func() {
	const name = "softfactory"
	var (
		namespace string
		key       client.ObjectKey
		guard     *trafficGuard
	)

	BeforeAll(func(ctx SpecContext) {
		namespace = createNamespace(ctx, "e2e-release")
		key = client.ObjectKey{Namespace: namespace, Name: name}
		guard = startTrafficGuard(clientset, namespace)
		// Registered after the namespace's cleanup, so it runs before it: the guard
		// must stop before pods and Services go away in no particular order.
		DeferCleanup(guard.Stop)
	})

	AfterEach(func(ctx SpecContext) {
		violations := guard.Violations()
		if CurrentSpecReport().Failed() || len(violations) > 0 {
			reportOnFailure(ctx, namespace)
		}
		Expect(violations).To(BeEmpty(), "the active Service selected a colour with no ready endpoint")
	})

	It("promotes the first release to blue after its backup and migration", func(ctx SpecContext) {
		Expect(k8s.Create(ctx, newRelease(namespace, name, "registry.example.com/softfactory:1.0.0"))).To(Succeed())
		r := waitForSuccess(ctx, key)
		rev := r.Status.CurrentRevision

		Expect(r.Status.ActiveColor).To(Equal(deployv1alpha1.Blue))
		Expect(activeColour(ctx, r)).To(Equal("blue"))
		Expect(r.Status.ActiveImage).To(Equal("registry.example.com/softfactory:1.0.0"))
		blue := getDeployment(ctx, namespace, r.DeploymentName(deployv1alpha1.Blue))
		Expect(blue.Status.ReadyReplicas).To(BeEquivalentTo(2))

		By("running the backup, then the migration, once each")
		jobs := expectOneJobPerStep(ctx, r)[rev]
		Expect(jobs).To(HaveKey(deployv1alpha1.ComponentBackup))
		Expect(jobs).To(HaveKey(deployv1alpha1.ComponentMigration))
		backup, migration := jobs[deployv1alpha1.ComponentBackup], jobs[deployv1alpha1.ComponentMigration]
		Expect(backup.Status.CompletionTime).NotTo(BeNil())
		// The migration Job is only made once the backup has completed.
		Expect(migration.CreationTimestamp.Time).NotTo(BeTemporally("<", backup.Status.CompletionTime.Time))
		Expect(r.Status.LastBackup).NotTo(BeNil())
		Expect(r.Status.LastBackup.JobName).To(Equal(backup.Name))
		Expect(r.Status.LastMigration).NotTo(BeNil())
		Expect(r.Status.LastMigration.JobName).To(Equal(migration.Name))

		By("going on without alerts where prometheus-operator is not installed, and saying so")
		monitoring := meta.FindStatusCondition(r.Status.Conditions, deployv1alpha1.ConditionMonitoringReady)
		Expect(monitoring).NotTo(BeNil())
		Expect(monitoring.Status).To(Equal(metav1.ConditionFalse))
		Expect(monitoring.Reason).To(Equal(deployv1alpha1.ReasonPrometheusRuleCRDMissing))
	})

	It("promotes a second image to green and scales blue down after the delay", func(ctx SpecContext) {
		before := observedRelease(ctx, key)
		updateRelease(ctx, key, func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Spec.Image = "registry.example.com/softfactory:1.1.0"
		})
		r := waitForSuccess(ctx, key)
		Expect(r.Status.CurrentRevision).NotTo(Equal(before.Status.CurrentRevision))
		Expect(r.Status.ActiveColor).To(Equal(deployv1alpha1.Green))
		Expect(activeColour(ctx, r)).To(Equal("green"))
		Expect(r.Status.ActiveImage).To(Equal("registry.example.com/softfactory:1.1.0"))

		green := getDeployment(ctx, namespace, r.DeploymentName(deployv1alpha1.Green))
		Expect(green.Status.ReadyReplicas).To(BeEquivalentTo(2))
		// Blue stays, at zero, so a rollback is a scale-up and a flip.
		blue := getDeployment(ctx, namespace, r.DeploymentName(deployv1alpha1.Blue))
		Expect(ptr.Deref(blue.Spec.Replicas, 1)).To(BeZero())

		Expect(expectOneJobPerStep(ctx, r)).To(HaveLen(2))
		Expect(r.Status.History).To(HaveLen(2))
		Expect(r.Status.History[0].Revision).To(Equal(r.Status.CurrentRevision))
		Expect(r.Status.History[0].Outcome).To(Equal(deployv1alpha1.OutcomePromoted))
		Expect(r.Status.History[1].Revision).To(Equal(before.Status.CurrentRevision))
		Expect(guard.Colours(name)).To(Equal([]string{"blue", "green"}))
	})

	It("keeps green serving, untouched, when the migration fails", func(ctx SpecContext) {
		green := getDeployment(ctx, namespace, name+"-green")
		blue := getDeployment(ctx, namespace, name+"-blue")

		updateRelease(ctx, key, func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Spec.Image = "registry.example.com/softfactory:1.2.0"
			// The kwok Stage softfactory-job-fail makes this migration exit 1.
			r.Spec.Migration.Env = []corev1.EnvVar{{Name: "KWOK_OUTCOME", Value: "fail"}}
		})
		r := waitForFailure(ctx, key, deployv1alpha1.ReasonMigrationFailed)
		rev := r.Status.CurrentRevision

		ready := meta.FindStatusCondition(r.Status.Conditions, deployv1alpha1.ConditionReady)
		Expect(ready.Status).To(Equal(metav1.ConditionFalse))
		Expect(r.Status.Phase).To(Equal(deployv1alpha1.PhaseFailed))
		degraded := meta.FindStatusCondition(r.Status.Conditions, deployv1alpha1.ConditionDegraded)
		Expect(degraded.Message).To(ContainSubstring(r.MigrationJobName(rev)))

		By("never flipping, and leaving both Deployments as they were")
		Expect(activeColour(ctx, r)).To(Equal("green"))
		Expect(r.Status.ActiveColor).To(Equal(deployv1alpha1.Green))
		greenAfter := getDeployment(ctx, namespace, name+"-green")
		Expect(greenAfter.Generation).To(Equal(green.Generation))
		Expect(greenAfter.Annotations).To(HaveKeyWithValue(
			deployv1alpha1.RevisionAnnotation, green.Annotations[deployv1alpha1.RevisionAnnotation]))
		Expect(greenAfter.Status.ReadyReplicas).To(BeEquivalentTo(2))
		blueAfter := getDeployment(ctx, namespace, name+"-blue")
		Expect(blueAfter.Generation).To(Equal(blue.Generation), "blue was changed although the migration failed")
		Expect(ptr.Deref(blueAfter.Spec.Replicas, 1)).To(BeZero())

		jobs := expectOneJobPerStep(ctx, r)[rev]
		Expect(jobs).To(HaveKey(deployv1alpha1.ComponentBackup))
		Expect(jobs).To(HaveKey(deployv1alpha1.ComponentMigration))
		Expect(jobs).NotTo(HaveKey(deployv1alpha1.ComponentRestore), "restoreDatabase is off: no restore may run")
		Expect(r.Status.History[0].Revision).To(Equal(rev))
		Expect(r.Status.History[0].Outcome).To(Equal(deployv1alpha1.OutcomeFailed))
		Expect(r.Status.History[0].Reason).To(Equal(deployv1alpha1.ReasonMigrationFailed))
	})

	It("aborts a blue that never becomes ready once the progress deadline passes", func(ctx SpecContext) {
		const deadline = 6
		updateRelease(ctx, key, func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Spec.Image = "registry.example.com/softfactory:1.3.0"
			r.Spec.Migration.Env = nil
			// The kwok Stage softfactory-pod-never-ready: pods run, readiness never passes.
			r.Spec.PodTemplate = &deployv1alpha1.PodTemplateOverrides{Labels: map[string]string{outcomeLabel: "never-ready"}}
			r.Spec.Strategy.BlueGreen.ProgressDeadlineSeconds = deadline
		})
		rev := observedRelease(ctx, key).Status.CurrentRevision

		By("bringing blue up with the new revision, whose pods never get ready")
		var started time.Time
		Eventually(func(g Gomega) {
			blue := getDeployment(ctx, namespace, name+"-blue")
			g.Expect(blue.Annotations[deployv1alpha1.RevisionAnnotation]).To(Equal(rev))
			g.Expect(blue.Status.Replicas).To(BeEquivalentTo(2))
			var err error
			started, err = time.Parse(time.RFC3339, blue.Annotations[deployv1alpha1.ProgressStartedAnnotation])
			g.Expect(err).NotTo(HaveOccurred())
		}).WithContext(ctx).Should(Succeed())

		r := waitForFailure(ctx, key, deployv1alpha1.ReasonProgressDeadlineExceeded)
		degraded := meta.FindStatusCondition(r.Status.Conditions, deployv1alpha1.ConditionDegraded)
		// The annotation has whole seconds; the abort must not come before the deadline.
		Expect(degraded.LastTransitionTime.Time).To(BeTemporally(">=", started.Add(deadline*time.Second)))

		By("scaling the failed blue down and never moving traffic")
		Eventually(func(g Gomega) {
			blue := getDeployment(ctx, namespace, name+"-blue")
			g.Expect(ptr.Deref(blue.Spec.Replicas, 1)).To(BeZero())
		}).WithContext(ctx).Should(Succeed())
		Expect(activeColour(ctx, r)).To(Equal("green"))
		Expect(getDeployment(ctx, namespace, name+"-green").Status.ReadyReplicas).To(BeEquivalentTo(2))
		Expect(r.Status.History[0].Outcome).To(Equal(deployv1alpha1.OutcomeFailed))
		Expect(r.Status.History[0].Reason).To(Equal(deployv1alpha1.ReasonProgressDeadlineExceeded))
		Expect(guard.Colours(name)).To(Equal([]string{"blue", "green"}))
	})

	It("waits for a manual promotion and flips when the kubectl plugin promotes it", func(ctx SpecContext) {
		updateRelease(ctx, key, func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Spec.Image = "registry.example.com/softfactory:1.4.0"
			r.Spec.PodTemplate = nil
			r.Spec.Strategy.BlueGreen.ProgressDeadlineSeconds = 60
			r.Spec.Strategy.BlueGreen.AutoPromote = ptr.To(false)
		})

		By("holding blue, ready behind the preview Service, in AwaitingPromotion")
		r := &deployv1alpha1.SoftFactoryRelease{}
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, key, r)).To(Succeed())
			g.Expect(r.Status.ObservedGeneration).To(Equal(r.Generation))
			g.Expect(r.Status.Phase).To(Equal(deployv1alpha1.PhaseAwaitingPromotion))
		}).WithContext(ctx).Should(Succeed())
		rev := r.Status.CurrentRevision
		Expect(getDeployment(ctx, namespace, name+"-blue").Status.ReadyReplicas).To(BeEquivalentTo(2))
		// Nothing but a person moves traffic now.
		Consistently(func() string { return activeColour(ctx, r) }).WithContext(ctx).Should(Equal("green"))

		By("promoting with `kubectl sfrelease promote`")
		out, code := kubectlSFRelease(ctx, "promote", name, "-n", namespace)
		Expect(code).To(BeZero(), out)
		Expect(observedRelease(ctx, key).Annotations).To(HaveKeyWithValue(deployv1alpha1.PromoteAnnotation, rev))

		By("following it with `kubectl sfrelease status` until it settles")
		out, code = kubectlSFRelease(ctx, "status", name, "-n", namespace, "--timeout", "60s")
		Expect(code).To(BeZero(), out)

		r = waitForSuccess(ctx, key)
		Expect(r.Status.CurrentRevision).To(Equal(rev))
		Expect(activeColour(ctx, r)).To(Equal("blue"))
		Expect(ptr.Deref(getDeployment(ctx, namespace, name+"-green").Spec.Replicas, 1)).To(BeZero())
		Expect(guard.Colours(name)).To(Equal([]string{"blue", "green", "blue"}))

		By("listing every release with `kubectl sfrelease history`")
		out, code = kubectlSFRelease(ctx, "history", name, "-n", namespace)
		Expect(code).To(BeZero(), out)
		Expect(out).To(ContainSubstring(deployv1alpha1.ReasonMigrationFailed))
		Expect(out).To(ContainSubstring(deployv1alpha1.ReasonProgressDeadlineExceeded))
		// Job retention keeps the Jobs of the revisions the colours run (blue's and
		// green's); the failed revisions' Jobs go, their records stay in the history above.
		Eventually(func() []string { return slices.Sorted(maps.Keys(expectOneJobPerStep(ctx, r))) }).WithContext(ctx).
			Should(ConsistOf(rev, getDeployment(ctx, namespace, name+"-green").Annotations[deployv1alpha1.RevisionAnnotation]))

		By("leaving each colour one ReplicaSet, its current one, after blue ran three templates")
		for _, colour := range []string{"blue", "green"} {
			d := getDeployment(ctx, namespace, name+"-"+colour)
			Eventually(func(g Gomega) {
				list := &appsv1.ReplicaSetList{}
				g.Expect(k8s.List(ctx, list, client.InNamespace(namespace))).To(Succeed())
				var owned []string
				for _, rs := range list.Items {
					if metav1.IsControlledBy(&rs, d) {
						owned = append(owned, rs.Name)
					}
				}
				g.Expect(owned).To(HaveLen(1), "%s's Deployment keeps old ReplicaSets", colour)
			}).WithContext(ctx).Should(Succeed())
		}
		Expect(guard.Checks()).To(BeNumerically(">", 0))
	})
})
