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
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// A release whose smoke test fails is retried with `kubectl sfrelease retry`, nothing
// else changed. The kwok Stage softfactory-job-fail fails every smoke-test pod whose
// container has KWOK_OUTCOME=fail, so the retry's new smoke-test Job fails as well: the
// point is what runs again (only the smoke test, under a new name) and what does not
// (the backup and the migration that succeeded).
var _ = Describe("A failed release retried without a spec change", Ordered, Serial, func() {
	const name = "retried"
	var (
		namespace string
		key       client.ObjectKey
	)

	BeforeAll(func(ctx SpecContext) {
		namespace = createNamespace(ctx, "e2e-retry")
		key = client.ObjectKey{Namespace: namespace, Name: name}
	})

	AfterEach(func(ctx SpecContext) {
		if CurrentSpecReport().Failed() {
			reportOnFailure(ctx, namespace)
		}
	})

	It("re-runs only the failed smoke test, as a new Job, and reports how it ended", func(ctx SpecContext) {
		r := newRelease(namespace, name, "registry.example.com/softfactory:2.0.0")
		r.Spec.Strategy.BlueGreen.SmokeTest = &deployv1alpha1.SmokeTestSpec{
			Command: []string{"pytest", "tests/smoke"},
			Env:     []corev1.EnvVar{{Name: "KWOK_OUTCOME", Value: "fail"}},
		}
		Expect(k8s.Create(ctx, r)).To(Succeed())
		failed := waitForFailure(ctx, key, deployv1alpha1.ReasonSmokeTestFailed)
		rev := failed.Status.CurrentRevision
		before := jobsOf(ctx, failed, rev)
		Expect(before).To(HaveKey(failed.BackupJobName(rev)))
		Expect(before).To(HaveKey(failed.MigrationJobName(rev)))
		Expect(before).To(HaveKey(failed.SmokeTestJobName(rev)))

		out, code := kubectlSFRelease(ctx, "-n", namespace, "retry", name)
		Expect(code).To(Equal(0))
		Expect(out).To(ContainSubstring("retry " + rev + "/2 of revision " + rev + " requested (it failed with SmokeTestFailed)"))

		By("running a second smoke-test Job under the attempt's name, which the Stage fails too")
		again := failed.SmokeTestAttemptJobName(rev, 2)
		Eventually(func(g Gomega) {
			got := &deployv1alpha1.SoftFactoryRelease{}
			g.Expect(k8s.Get(ctx, key, got)).To(Succeed())
			rec := got.Status.RevisionRecordOf(rev)
			g.Expect(rec).NotTo(BeNil())
			g.Expect(rec.Retries).To(HaveLen(1))
			degraded := meta.FindStatusCondition(got.Status.Conditions, deployv1alpha1.ConditionDegraded)
			g.Expect(degraded).NotTo(BeNil())
			g.Expect(degraded.Reason).To(Equal(deployv1alpha1.ReasonSmokeTestFailed))
			g.Expect(degraded.Message).To(ContainSubstring("Smoke test Job " + again + " failed"))
		}).WithContext(ctx).Should(Succeed())

		after := jobsOf(ctx, failed, rev)
		Expect(after).To(HaveLen(len(before) + 1))
		Expect(after).To(HaveKey(again))
		for name, j := range before {
			Expect(after[name].UID).To(Equal(j.UID), "Job %s was replaced", name)
		}
		got := observedRelease(ctx, key)
		Expect(got.Status.RevisionRecordOf(rev).Retries[0].Reason).To(Equal(deployv1alpha1.ReasonSmokeTestFailed))
		Expect(got.Status.RevisionRecordOf(rev).Migration.JobName).To(Equal(got.MigrationJobName(rev)), "the migration ran once")
	})
})

// jobsOf are the release's Jobs of one revision, by name.
func jobsOf(ctx SpecContext, r *deployv1alpha1.SoftFactoryRelease, rev string) map[string]batchv1.Job {
	GinkgoHelper()
	jobs := &batchv1.JobList{}
	Expect(k8s.List(ctx, jobs, client.InNamespace(r.Namespace), client.MatchingLabels{
		deployv1alpha1.LabelInstance: r.Name, deployv1alpha1.LabelRevision: rev,
	})).To(Succeed())
	byName := map[string]batchv1.Job{}
	for _, j := range jobs.Items {
		byName[j.Name] = j
	}
	return byName
}
