package controller

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

var _ = Describe("Retrying a failed release", func() {
	var h *harness
	BeforeEach(func() { h = newHarness() })

	retry := func(value string) {
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) {
			if r.Annotations == nil {
				r.Annotations = map[string]string{}
			}
			r.Annotations[deployv1alpha1.RetryAnnotation] = value
		})
	}
	jobNames := func(component string) []string {
		jobs := h.jobs(component)
		names := make([]string, 0, len(jobs))
		for _, j := range jobs {
			names = append(names, j.Name)
		}
		return names
	}

	It("re-runs a migration whose container ran as attempt 2, on a fresh backup, and promotes", func() {
		h.releaseFirst(h.release(imageV1))
		rev2 := h.startSecondWithFailedMigration(imageV2)
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhaseFailed))
		firstDump := h.recordOf(rev2).Backup.File
		h.events()

		h.clock.Step(time.Minute) // the fresh dump gets its own timestamp
		retry(rev2 + "/2")
		h.settle()

		rec := h.recordOf(rev2)
		Expect(rec.Retries).To(HaveLen(1))
		Expect(rec.Retries[0].Request).To(Equal(rev2 + "/2"))
		Expect(rec.Retries[0].Reason).To(Equal(deployv1alpha1.ReasonMigrationFailed))
		Expect(rec.Retries[0].Message).To(ContainSubstring("failed"), "the failure it cleared is kept")
		Expect(historyRecord(h.get(), rev2)).To(BeNil(), "the revision is in flight again")
		Expect(h.events()).To(ContainElement(And(ContainSubstring("Retrying revision "+rev2+" (retry 1 of 20) after MigrationFailed"),
			ContainSubstring("a fresh backup as Job "+h.name+"-backup-"+rev2+"-2"), ContainSubstring("the migration as Job "+h.name+"-migrate-"+rev2+"-2"))))

		By("taking a fresh backup before the migration runs again: the failed one may have changed the database")
		Expect(rec.Backup.JobName).To(Equal(h.name + "-backup-" + rev2 + "-2"))
		Expect(rec.Backup.Attempt).To(Equal(int32(2)))
		Expect(h.job(h.name+"-migrate-"+rev2+"-2")).To(BeNil(), "no migration before the fresh backup is verified")
		h.finishJob(h.name+"-backup-"+rev2+"-2", true)
		h.settle()
		Expect(h.recordOf(rev2).Backup.File).NotTo(Equal(firstDump))

		By("running the migration again under the attempt's name")
		Expect(jobNames(deployv1alpha1.ComponentMigration)).To(ConsistOf(
			h.name+"-migrate-"+rev2, h.name+"-migrate-"+rev2+"-2", h.name+"-migrate-"+h.get().Status.StableRevision))
		h.finishJob(h.name+"-migrate-"+rev2+"-2", true)
		h.settle()
		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("green"))
		Expect(historyRecord(h.get(), rev2).Outcome).To(Equal(deployv1alpha1.OutcomePromoted))
	})

	It("re-runs a migration that never ran on the backup it already has", func() {
		h.releaseFirst(h.release(imageV1))
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Image = imageV2 })
		h.settle()
		rev2 := h.get().Status.CurrentRevision
		h.finishJob(h.name+"-backup-"+rev2, true)
		h.settle()
		h.finishJob(h.name+"-migrate-"+rev2, false) // no container of it was seen running
		h.settle()
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Reason).To(Equal(deployv1alpha1.ReasonMigrationNeverRan))

		retry(rev2)
		h.settle()
		Expect(jobNames(deployv1alpha1.ComponentBackup)).To(HaveLen(2), "rev1's and rev2's backups only: the dump is still the database")
		Expect(h.recordOf(rev2).Migration.JobName).To(Equal(h.name + "-migrate-" + rev2 + "-2"))
	})

	It("ends a migration Job whose pod can never start before its retry runs, so the two never meet", func() {
		h.releaseFirst(h.release(imageV1))
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Image = imageV2 })
		h.settle()
		rev2 := h.get().Status.CurrentRevision
		h.finishJob(h.name+"-backup-"+rev2, true)
		h.settle()
		// No kubelet in envtest: the test writes what one says of an image without a
		// non-root USER. The Job stays active until its deadline.
		stuck := h.name + "-migrate-" + rev2
		h.addJobPod(stuck, waitingStatus("CreateContainerConfigError", "container has runAsNonRoot and image will run as root"))
		h.settle()
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Reason).To(Equal(deployv1alpha1.ReasonMigrationNeverStarted))

		retry(rev2)
		h.settle()
		Expect(h.job(stuck)).To(BeNil(), "the Job that could start later is gone")
		rec := h.recordOf(rev2)
		Expect(rec.Retries).To(HaveLen(1))
		Expect(rec.Retries[0].Reason).To(Equal(deployv1alpha1.ReasonMigrationNeverStarted))
		Expect(rec.Migration.JobName).To(Equal(h.name + "-migrate-" + rev2 + "-2"))
		Expect(rec.Backup.JobName).To(Equal(h.name+"-backup-"+rev2), "nothing ran: the backup is still the database")
	})

	It("re-runs only a failed smoke test, with a new Job, and then promotes", func() {
		h.releaseFirst(h.release(imageV1))
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Spec.Image = imageV2
			r.Spec.Strategy.BlueGreen.SmokeTest = &deployv1alpha1.SmokeTestSpec{Command: []string{"pytest", "tests/smoke"}}
		})
		h.settle()
		rev2 := h.get().Status.CurrentRevision
		h.finishJob(h.name+"-backup-"+rev2, true)
		h.settle()
		h.finishJob(h.name+"-migrate-"+rev2, true)
		h.settle()
		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()
		h.finishJob(h.name+"-smoke-"+rev2, false)
		h.settle()
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Reason).To(Equal(deployv1alpha1.ReasonSmokeTestFailed))
		Expect(*h.deployment(deployv1alpha1.Green).Spec.Replicas).To(BeZero(), "the failed colour is scaled down")
		backups, migrations := jobNames(deployv1alpha1.ComponentBackup), jobNames(deployv1alpha1.ComponentMigration)
		h.events()

		retry(rev2 + "/2")
		h.settle()
		Expect(h.events()).To(ContainElement(And(ContainSubstring("the smoke test as Job "+h.name+"-smoke-"+rev2+"-2"),
			ContainSubstring("kept, as they succeeded: the backup"), ContainSubstring("the migration "+h.name+"-migrate-"+rev2))))
		Expect(jobNames(deployv1alpha1.ComponentBackup)).To(ConsistOf(backups), "the backup is not taken again")
		Expect(jobNames(deployv1alpha1.ComponentMigration)).To(ConsistOf(migrations), "a migration that succeeded never runs twice")
		Expect(*h.deployment(deployv1alpha1.Green).Spec.Replicas).To(Equal(int32(2)), "the target colour is rolled out again")
		Expect(h.activeSelectorColor()).To(Equal("blue"))

		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()
		Expect(jobNames(deployv1alpha1.ComponentSmokeTest)).To(ConsistOf(h.name+"-smoke-"+rev2, h.name+"-smoke-"+rev2+"-2"))
		Expect(h.activeSelectorColor()).To(Equal("blue"), "no flip before the new smoke test passed")
		h.finishJob(h.name+"-smoke-"+rev2+"-2", true)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("green"))
		Expect(historyRecord(h.get(), rev2).Outcome).To(Equal(deployv1alpha1.OutcomePromoted))

		By("ignoring the value left on the release once a new spec is applied: it acted already")
		h.events()
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Image = imageV3 })
		h.settle()
		Expect(h.events()).NotTo(ContainElement(ContainSubstring(deployv1alpha1.ReasonRetryRefused)))
	})

	It("acts on each annotation value once, and on a new value after a second failure", func() {
		h.releaseFirst(h.release(imageV1))
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Image = imageV2 })
		h.settle()
		rev2 := h.get().Status.CurrentRevision
		h.finishJob(h.name+"-backup-"+rev2, true)
		h.settle()
		h.finishJob(h.name+"-migrate-"+rev2, false)
		h.settle()

		retry(rev2 + "/2")
		h.settle()
		h.finishJob(h.name+"-migrate-"+rev2+"-2", false)
		h.settle()
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhaseFailed), "the value left on the release does not retry again")
		h.rec = h.newReconciler() // nor after a restart: the record says it acted
		h.settle()
		Expect(h.recordOf(rev2).Retries).To(HaveLen(1))
		Expect(h.job(h.name + "-migrate-" + rev2 + "-3")).To(BeNil())

		retry(rev2 + "/3")
		h.settle()
		Expect(h.recordOf(rev2).Retries).To(HaveLen(2))
		Expect(h.job(h.name + "-migrate-" + rev2 + "-3")).NotTo(BeNil())
	})

	It("refuses a retry of a revision that has not failed, or of another revision, and changes nothing", func() {
		h.releaseFirst(h.release(imageV1))
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Image = imageV2 })
		h.settle()
		rev2 := h.get().Status.CurrentRevision
		h.events()
		before := h.get().Status
		backups := jobNames(deployv1alpha1.ComponentBackup)

		retry(rev2)
		h.settle()
		h.settle()
		refusals := func() []string {
			var out []string
			for _, e := range h.events() {
				if strings.Contains(e, deployv1alpha1.ReasonRetryRefused) {
					out = append(out, e)
				}
			}
			return out
		}
		Expect(refusals()).To(ConsistOf(ContainSubstring("revision "+rev2+" has not failed")), "announced once")
		Expect(h.get().Status.Revisions).To(Equal(before.Revisions))
		Expect(h.get().Status.History).To(Equal(before.History))
		Expect(jobNames(deployv1alpha1.ComponentBackup)).To(ConsistOf(backups))

		By("refusing a value naming another revision once this one has failed")
		retry("0000000000/2")
		h.finishJob(h.name+"-backup-"+rev2, false)
		h.settle()
		failed := h.get().Status
		h.settle()
		Expect(refusals()).To(ConsistOf(ContainSubstring("it names revision 0000000000, but the release's current revision is " + rev2)))
		Expect(h.get().Status.Revisions).To(Equal(failed.Revisions))
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhaseFailed))
	})

	It("refuses the 21st retry of a revision", func() {
		h.releaseFirst(h.release(imageV1))
		rev2 := h.startSecondWithFailedMigration(imageV3)
		// Twenty earlier retries, as the operator would have recorded them.
		Eventually(func() error {
			r := h.get()
			rec := r.Status.RevisionRecordOf(rev2)
			rec.Retries = nil
			for i := range deployv1alpha1.MaxRetries {
				rec.Retries = append(rec.Retries, deployv1alpha1.RetryRecord{Request: fmt.Sprintf("%s/%d", rev2, i+2), Reason: deployv1alpha1.ReasonMigrationFailed})
			}
			return k8sClient.Status().Update(ctx, r)
		}).Should(Succeed())
		h.events()

		retry(fmt.Sprintf("%s/%d", rev2, deployv1alpha1.MaxRetries+2))
		h.settle()
		Expect(h.events()).To(ContainElement(And(ContainSubstring(deployv1alpha1.ReasonRetryRefused), ContainSubstring("retried 20 times"))))
		Expect(h.recordOf(rev2).Retries).To(HaveLen(deployv1alpha1.MaxRetries))
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhaseFailed))
	})

	It("never creates a second Job when a restarted operator lost the status write of a retried step", func() {
		h.releaseFirst(h.release(imageV1))
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Image = imageV2 })
		h.settle()
		rev2 := h.get().Status.CurrentRevision
		h.finishJob(h.name+"-backup-"+rev2, true)
		h.settle()
		h.finishJob(h.name+"-migrate-"+rev2, false)
		h.settle()
		retry(rev2 + "/2")
		lost := h.get().Status
		h.reconcile()
		Expect(h.job(h.name + "-migrate-" + rev2 + "-2")).NotTo(BeNil())

		By("losing that pass's status write, then starting a fresh operator")
		Eventually(func() error {
			r := h.get()
			r.Status = lost
			return k8sClient.Status().Update(ctx, r)
		}).Should(Succeed())
		h.rec = h.newReconciler()
		h.settle()
		rec := h.recordOf(rev2)
		Expect(rec.Retries).To(HaveLen(1))
		Expect(rec.Migration.JobName).To(Equal(h.name + "-migrate-" + rev2 + "-2"))
		var ours []batchv1.Job
		for _, j := range h.jobs(deployv1alpha1.ComponentMigration) {
			if j.Labels[deployv1alpha1.LabelRevision] == rev2 {
				ours = append(ours, j)
			}
		}
		Expect(ours).To(HaveLen(2), "the failed first attempt and one second attempt")

		By("losing only the record of the second attempt's Job: the next pass adopts it under the attempt's name")
		Eventually(func() error {
			r := h.get()
			r.Status.RevisionRecordOf(rev2).Migration = nil
			return k8sClient.Status().Update(ctx, r)
		}).Should(Succeed())
		h.rec = h.newReconciler()
		h.settle()
		Expect(h.recordOf(rev2).Migration.JobName).To(Equal(h.name + "-migrate-" + rev2 + "-2"))
		Expect(h.jobs(deployv1alpha1.ComponentMigration)).To(HaveLen(3), "rev1's, and rev2's two attempts")
	})

	It("waits for a restore under way, then migrates again on a fresh backup", func() {
		r := h.release(imageV1)
		r.Spec.Rollback.RestoreDatabase = true
		h.releaseFirst(r)
		rev2 := h.startSecondWithFailedMigration(imageV2)
		h.clock.Step(time.Minute) // a restore takes a while: the fresh dump gets its own timestamp
		retry(rev2 + "/2")
		h.settle()
		Expect(h.recordOf(rev2).Retries).To(BeEmpty(), "no retry while the restore stops the writers")
		Expect(h.events()).To(ContainElement(ContainSubstring("waits: the restore of revision " + rev2)))

		h.stopColor(deployv1alpha1.Color(h.activeSelectorColor())) // the serving colour's pods are gone
		h.settle()
		h.finishJob(h.name+"-restore-"+rev2, true)
		h.settle()
		h.makeColorAvailable(deployv1alpha1.Blue)
		h.settle()
		Expect(h.recordOf(rev2).Restore.Phase).To(Equal(deployv1alpha1.RestoreDone))
		Expect(h.recordOf(rev2).Retries).To(HaveLen(1))
		Expect(h.recordOf(rev2).Backup.JobName).To(Equal(h.name + "-backup-" + rev2 + "-2"))
		Expect(h.job(h.name + "-migrate-" + rev2 + "-2")).To(BeNil())

		By("never restoring a second time when the retried migration fails after running too")
		h.clock.Step(time.Minute)
		h.finishJob(h.name+"-backup-"+rev2+"-2", true)
		h.settle()
		h.runJobPod(h.name+"-migrate-"+rev2+"-2", true, "", "")
		h.finishJob(h.name+"-migrate-"+rev2+"-2", false)
		h.settle()
		Expect(h.jobs(deployv1alpha1.ComponentRestore)).To(HaveLen(1))
		msg := h.condition(deployv1alpha1.ConditionDegraded).Message
		Expect(msg).To(ContainSubstring("restore already ran on an earlier attempt"))
		Expect(msg).To(ContainSubstring(h.recordOf(rev2).Backup.File))
		Expect(msg).NotTo(ContainSubstring("the database is as it was before the release"))
	})

	It("retries an aborted release only once the abort annotation is gone", func() {
		h.releaseFirst(h.release(imageV1))
		rev2 := h.startSecond(imageV2)
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Annotations = map[string]string{deployv1alpha1.AbortAnnotation: rev2}
		})
		h.settle()
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Reason).To(Equal(deployv1alpha1.ReasonAborted))
		h.events()

		retry(rev2 + "/2")
		h.settle()
		Expect(h.events()).To(ContainElement(ContainSubstring("annotation still names revision " + rev2 + " and would abort it again")))
		Expect(h.recordOf(rev2).Retries).To(BeEmpty())

		By("going on once the abort annotation is removed, as kubectl sfrelease retry does in the same write")
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { delete(r.Annotations, deployv1alpha1.AbortAnnotation) })
		h.settle()
		Expect(h.recordOf(rev2).Retries).To(HaveLen(1))
		Expect(*h.deployment(deployv1alpha1.Green).Spec.Replicas).To(Equal(int32(2)))
		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("green"))
	})

	It("counts the progress deadline afresh from a retry of a colour kept up", func() {
		r := h.release(imageV1)
		r.Spec.Strategy.BlueGreen.ProgressDeadlineSeconds = 60
		r.Spec.Rollback.OnFailure = deployv1alpha1.FailurePolicyKeep
		h.releaseFirst(r)
		rev2 := h.startSecond(imageV2)
		h.clock.Step(61 * time.Second)
		h.settle()
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Reason).To(Equal(deployv1alpha1.ReasonProgressDeadlineExceeded))

		h.clock.Step(time.Hour)
		retry(rev2)
		h.settle()
		Expect(h.get().Status.Phase).NotTo(Equal(deployv1alpha1.PhaseFailed), "a fresh deadline, not the one that passed an hour ago")
		started := h.deployment(deployv1alpha1.Green).Annotations[deployv1alpha1.ProgressStartedAnnotation]
		Expect(started).To(Equal(h.clock.Now().UTC().Format(time.RFC3339)))
		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("green"))
	})
})

var _ = Describe("Retry Job names", func() {
	It("stay valid and distinct up to the last attempt for the longest release name", func() {
		r := &deployv1alpha1.SoftFactoryRelease{ObjectMeta: metav1.ObjectMeta{Name: "a" + strings.Repeat("b", 38) + "c"}}
		rev := "0123456789"
		seen := map[string]bool{}
		for attempt := int32(1); attempt <= deployv1alpha1.MaxRetries+1; attempt++ {
			for _, name := range []string{r.MigrationAttemptJobName(rev, attempt), r.SmokeTestAttemptJobName(rev, attempt),
				r.BackupAttemptJobName(rev, attempt), r.ContractJobName(rev, attempt), r.ContractBackupJobName(rev, attempt),
				r.CompatibilityCheckJobName(rev, attempt)} {
				// A Job's name is also its pods' job-name label: a DNS label of at most 63.
				Expect(validation.IsDNS1123Label(name)).To(BeEmpty(), name)
				Expect(seen).NotTo(HaveKey(name))
				seen[name] = true
			}
		}
		Expect(r.MigrationAttemptJobName(rev, 21)).To(HaveSuffix("-migrate-" + rev + "-21"))
	})
})
