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
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// The operator crashes (SIGKILL: no clean shutdown, no last status write) at the three
// moments where a careless restart would do harm: while the backup runs (a second
// backup, or a migration without one), while the migration runs (a second migration),
// and between the flip and the scale-down (the old colour forgotten, or scaled down
// early). Every Job's name derives from the revision, and every deadline is stored on an
// object, so a restarted operator must pick up exactly where the last one stopped.
var _ = Describe("An operator killed in the middle of a release", Ordered, Serial, func() {
	const name = "crashy"
	var (
		namespace string
		key       client.ObjectKey
		guard     *trafficGuard
	)

	BeforeAll(func(ctx SpecContext) {
		namespace = createNamespace(ctx, "e2e-restart")
		key = client.ObjectKey{Namespace: namespace, Name: name}
		guard = startTrafficGuard(clientset, namespace)
		DeferCleanup(guard.Stop)
		// Whatever happens in a spec, the next one (and the rest of the suite) gets a
		// running operator.
		DeferCleanup(func() {
			if !operator.Running() {
				Expect(operator.Start()).To(Succeed())
			}
		})

		By("serving a first release on blue")
		Expect(k8s.Create(ctx, newRelease(namespace, name, "registry.example.com/softfactory:2.0.0"))).To(Succeed())
		waitForSuccess(ctx, key)
	})

	AfterEach(func(ctx SpecContext) {
		violations := guard.Violations()
		if CurrentSpecReport().Failed() || len(violations) > 0 {
			reportOnFailure(ctx, namespace)
		}
		Expect(violations).To(BeEmpty(), "the active Service selected a colour with no ready endpoint")
	})

	It("runs one backup and one migration per revision and completes the release", func(ctx SpecContext) {
		const scaleDownDelay = 8
		updateRelease(ctx, key, func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Spec.Image = "registry.example.com/softfactory:2.1.0"
			// A migration of 6s (the kwok Stage softfactory-job-complete reads
			// KWOK_DURATION) leaves time to kill the operator while it runs; backups take
			// 5s on their own.
			r.Spec.Migration.Env = []corev1.EnvVar{{Name: "KWOK_DURATION", Value: "6s"}}
			r.Spec.Strategy.BlueGreen.ScaleDownDelaySeconds = ptr.To[int32](scaleDownDelay)
		})
		r := observedRelease(ctx, key)
		rev := r.Status.CurrentRevision
		backupName, migrationName := r.BackupJobName(rev), r.MigrationJobName(rev)

		By("killing the operator while the backup runs")
		backup := waitForRunningJob(ctx, namespace, backupName)
		Expect(operator.Kill()).To(Succeed())
		stillRunning(ctx, namespace, backupName)

		By("letting the backup finish with no operator: nothing else may start")
		Eventually(func(g Gomega) {
			complete, _ := jobFinished(findJob(ctx, namespace, backupName))
			g.Expect(complete).To(BeTrue())
		}).WithContext(ctx).Should(Succeed())
		Expect(findJob(ctx, namespace, migrationName)).To(BeNil())

		By("restarting it: it adopts the finished backup and starts the migration")
		Expect(operator.Start()).To(Succeed())
		migration := waitForRunningJob(ctx, namespace, migrationName)

		By("killing the operator while the migration runs, and restarting it at once")
		Expect(operator.Kill()).To(Succeed())
		stillRunning(ctx, namespace, migrationName)
		Expect(operator.Start()).To(Succeed())

		By("killing the operator right after the flip, before the old colour scales down")
		Eventually(func() string { return activeColour(ctx, r) }).WithContext(ctx).Should(Equal("green"))
		Expect(operator.Kill()).To(Succeed())
		killedAt := time.Now()
		blue := getDeployment(ctx, namespace, name+"-blue")
		Expect(ptr.Deref(blue.Spec.Replicas, 1)).To(BeEquivalentTo(2), "blue scaled down at the flip, without its delay")

		By("restarting it: blue scales down once the delay after the recorded flip has passed, not before")
		Expect(operator.Start()).To(Succeed())
		// The flip records its time on the active Service in the same write that moves
		// the selector, so no kill can separate them; the scale-down delay counts from it.
		svc := &corev1.Service{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: r.ActiveServiceName()}, svc)).To(Succeed())
		promotedAt, err := time.Parse(time.RFC3339Nano, svc.Annotations[deployv1alpha1.PromotedAtAnnotation])
		Expect(err).NotTo(HaveOccurred(), "no flip time recorded on the active Service")
		Expect(promotedAt).To(BeTemporally("<=", killedAt))
		scaleDownAt := promotedAt.Add(scaleDownDelay * time.Second)
		Eventually(func(g Gomega) {
			g.Expect(ptr.Deref(getDeployment(ctx, namespace, name+"-blue").Spec.Replicas, 1)).To(BeZero())
		}).WithContext(ctx).Should(Succeed())
		Expect(time.Now()).To(BeTemporally(">=", scaleDownAt), "blue scaled down before its delay had passed")

		r = waitForSuccess(ctx, key)
		Expect(r.Status.CurrentRevision).To(Equal(rev))
		Expect(r.Status.ActiveColor).To(Equal(deployv1alpha1.Green))
		Expect(r.Status.LastBackup.JobName).To(Equal(backupName))
		Expect(r.Status.LastMigration.JobName).To(Equal(migrationName))

		By("finding exactly one backup and one migration Job per revision, never recreated")
		jobs := expectOneJobPerStep(ctx, r)
		Expect(jobs).To(HaveLen(2))
		for revision, steps := range jobs {
			Expect(steps).To(HaveKey(deployv1alpha1.ComponentBackup), "revision %s", revision)
			Expect(steps).To(HaveKey(deployv1alpha1.ComponentMigration), "revision %s", revision)
		}
		Expect(jobs[rev][deployv1alpha1.ComponentBackup].UID).To(Equal(backup))
		Expect(jobs[rev][deployv1alpha1.ComponentMigration].UID).To(Equal(migration))
		Expect(guard.Colours(name)).To(Equal([]string{"blue", "green"}))
	})
})

// waitForRunningJob waits for the Job to exist and returns its UID; it fails when the
// Job is already finished, because then the kill that follows would not hit it running.
func waitForRunningJob(ctx SpecContext, namespace, name string) types.UID {
	GinkgoHelper()
	var job *batchv1.Job
	Eventually(func() *batchv1.Job {
		job = findJob(ctx, namespace, name)
		return job
	}).WithContext(ctx).ShouldNot(BeNil(), "Job %s was not created", name)
	complete, failed := jobFinished(job)
	Expect(complete || failed).To(BeFalse(), "Job %s finished before the operator could be killed during it", name)
	return job.UID
}

// stillRunning checks, right after a kill, that the Job was still running when the
// operator died: otherwise the spec would not test what it says.
func stillRunning(ctx SpecContext, namespace, name string) {
	GinkgoHelper()
	complete, failed := jobFinished(findJob(ctx, namespace, name))
	Expect(complete || failed).To(BeFalse(), "Job %s finished before the operator was killed", name)
}
