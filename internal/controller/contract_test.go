package controller

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	"github.com/softfactory/release-operator/internal/backup"
)

// addColorPod creates a pod of a colour's Deployment as its ReplicaSet would (the
// template's labels): envtest runs no ReplicaSet controller, so an old colour's pod that
// is still terminating after the scale-down is made by the test.
func (h *harness) addColorPod(c deployv1alpha1.Color) *corev1.Pod {
	GinkgoHelper()
	d := h.deployment(c)
	Expect(d).NotTo(BeNil())
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: d.Name + "-", Namespace: h.ns, Labels: d.Spec.Template.Labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "api", Image: "example"}}},
	}
	Expect(k8sClient.Create(ctx, pod)).To(Succeed())
	return pod
}

// deletePod deletes a pod at once and waits until the API server has it gone (no kubelet
// in envtest to finish a graceful deletion).
func (h *harness) deletePod(pod *corev1.Pod) {
	GinkgoHelper()
	Expect(k8sClient.Delete(ctx, pod, client.GracePeriodSeconds(0))).To(Succeed())
	Eventually(func() bool {
		return k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), &corev1.Pod{}) != nil
	}).WithTimeout(10 * time.Second).Should(BeTrue())
}

var contractSpec = deployv1alpha1.ContractSpec{
	Command: []string{"flask", "db", "contract"},
	Env:     []corev1.EnvVar{{Name: "CONTRACT_DRY_RUN", Value: "false"}},
}

var _ = Describe("The contract step of an expand/contract migration", func() {
	var h *harness
	BeforeEach(func() { h = newHarness() })

	contractJobs := func() []batchv1.Job { return h.jobs(deployv1alpha1.ComponentContract) }
	contractBackups := func() []batchv1.Job { return h.jobs(deployv1alpha1.ComponentContractBackup) }
	contractReason := func() string { return h.condition(deployv1alpha1.ConditionContractSucceeded).Reason }

	// flipToContractRevision releases v1 (no contract) on blue, then v2 with a contract
	// on green up to the flip, with blue still up for the scale-down delay.
	flipToContractRevision := func() (string, string) {
		GinkgoHelper()
		rev1 := h.releaseFirst(h.release(imageV1))
		Expect(h.condition(deployv1alpha1.ConditionContractSucceeded).Reason).To(Equal(deployv1alpha1.ReasonNotRequired))
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Spec.Image = imageV2
			r.Spec.Migration.Contract = contractSpec.DeepCopy()
		})
		h.settle()
		rev2 := h.get().Status.CurrentRevision
		Expect(rev2).NotTo(Equal(rev1))
		h.finishJob(h.name+"-backup-"+rev2, true)
		h.settle()
		h.finishJob(h.name+"-migrate-"+rev2, true)
		h.settle()
		c := h.condition(deployv1alpha1.ConditionContractSucceeded)
		Expect(c.Reason).To(Equal(deployv1alpha1.ReasonContractPending))
		Expect(c.Message).To(ContainSubstring("the flip to revision " + rev2))
		Expect(contractBackups()).To(BeEmpty(), "nothing of the contract step before the flip")
		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("green"))
		return rev1, rev2
	}

	// goneBlue takes the old colour past its scale-down and has its Deployment report
	// no replica (envtest runs no Deployment controller).
	goneBlue := func() {
		GinkgoHelper()
		h.clock.Step(31 * time.Second)
		h.settle()
		Expect(*h.deployment(deployv1alpha1.Blue).Spec.Replicas).To(BeZero())
		h.stopColor(deployv1alpha1.Blue)
		h.settle()
	}

	// throughBackup takes a flipped v2 to its contract Job.
	throughBackup := func(rev2 string) string {
		GinkgoHelper()
		goneBlue()
		h.finishJob(h.get().ContractBackupJobName(rev2, 1), true)
		h.settle()
		name := h.get().ContractJobName(rev2, 1)
		Expect(h.job(name)).NotTo(BeNil())
		return name
	}

	It("runs only after the flip, the scale-down and the last old pod, on a fresh verified backup first", func() {
		rev1, rev2 := flipToContractRevision()
		c := h.condition(deployv1alpha1.ConditionContractSucceeded)
		Expect(c.Reason).To(Equal(deployv1alpha1.ReasonContractPending))
		Expect(c.Message).To(ContainSubstring("the scale-down of softfactory-blue at " + h.clock.Now().Add(30*time.Second).UTC().Format(time.RFC3339)))
		Expect(h.condition(deployv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionFalse))
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhasePromoting))
		Expect(contractBackups()).To(BeEmpty(), "blue has replicas: an instant rollback to it is still possible")

		By("a pod of blue still terminating after the scale-down")
		pod := h.addColorPod(deployv1alpha1.Blue)
		h.clock.Step(31 * time.Second)
		h.settle()
		Expect(*h.deployment(deployv1alpha1.Blue).Spec.Replicas).To(BeZero())
		h.stopColor(deployv1alpha1.Blue)
		h.settle()
		Expect(h.condition(deployv1alpha1.ConditionContractSucceeded).Message).To(ContainSubstring("1 pod of blue still running"))
		Expect(h.condition(deployv1alpha1.ConditionReady).Reason).To(Equal(deployv1alpha1.ReasonContractPending))
		Expect(contractBackups()).To(BeEmpty(), "a pod of the old revision may still serve a request")

		By("the last pod of blue gone: the pre-contract backup starts, the contract Job not yet")
		h.deletePod(pod)
		h.settle()
		Expect(contractJobs()).To(BeEmpty(), "the contract waits for its backup")
		backups := contractBackups()
		Expect(backups).To(HaveLen(1))
		b := backups[0]
		Expect(b.Name).To(Equal(h.get().ContractBackupJobName(rev2, 1)))
		Expect(b.Annotations[deployv1alpha1.BackupFileAnnotation]).To(HavePrefix(h.name + "-" + rev2 + "-"))
		Expect(b.Annotations[deployv1alpha1.BackupFileAnnotation]).To(HaveSuffix(backup.PreContractSuffix))
		Expect(b.Spec.Template.Spec.Containers[0].Command).To(Equal(backup.BackupCommand()), "the pre-migration backup's script and verification")
		Expect(h.recordOf(rev2).ContractBackup.File).To(Equal(b.Annotations[deployv1alpha1.BackupFileAnnotation]))
		Expect(contractReason()).To(Equal(deployv1alpha1.ReasonContractBackupRunning))

		By("the backup verified: the contract Job runs as the migration does")
		h.finishJob(b.Name, true)
		h.settle()
		jobs := contractJobs()
		Expect(jobs).To(HaveLen(1))
		j := jobs[0]
		Expect(j.Name).To(Equal(h.get().ContractJobName(rev2, 1)))
		Expect(j.Labels).To(HaveKeyWithValue(deployv1alpha1.LabelRevision, rev2))
		container := j.Spec.Template.Spec.Containers[0]
		Expect(container.Image).To(Equal(imageV2), "no contract or migration image: the release image")
		Expect(container.Command).To(Equal(contractSpec.Command))
		Expect(container.Env).To(ContainElement(HaveField("Name", "DATABASE_URL")))
		Expect(container.Env).To(ContainElement(contractSpec.Env[0]))
		Expect(*j.Spec.ActiveDeadlineSeconds).To(Equal(int64(600)), "the API's default")
		migration := buildMigrationJob(h.get(), rev2)
		Expect(j.Spec.Template.Spec.SecurityContext).To(Equal(migration.Spec.Template.Spec.SecurityContext))
		Expect(contractReason()).To(Equal(deployv1alpha1.ReasonContractRunning))
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhasePromoting), "not Succeeded before the schema is")

		h.finishJob(j.Name, true)
		h.settle()
		Expect(contractReason()).To(Equal(deployv1alpha1.ReasonContractCompleted))
		Expect(h.condition(deployv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhaseSucceeded))
		Expect(h.recordOf(rev2).Contract.State).To(Equal(deployv1alpha1.StepSucceeded))
		Expect(h.events()).To(ContainElements(
			ContainSubstring("Created Job "+b.Name), ContainSubstring("Created Job "+j.Name)))

		By("a later release keeps the pre-contract dump of a revision in history from pruning")
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Image = imageV3 })
		h.settle()
		rev3 := h.get().Status.CurrentRevision
		Expect(rev3).NotTo(Equal(rev1))
		next := h.job(h.name + "-backup-" + rev3)
		Expect(next).NotTo(BeNil())
		Expect(next.Spec.Template.Spec.Containers[0].Env).To(ContainElement(And(
			HaveField("Name", backup.EnvKeepFiles), HaveField("Value", ContainSubstring(b.Annotations[deployv1alpha1.BackupFileAnnotation])))))
	})

	It("does not run the contract when its backup failed", func() {
		_, rev2 := flipToContractRevision()
		goneBlue()
		b := h.get().ContractBackupJobName(rev2, 1)
		h.finishJob(b, false)
		h.settle()
		h.settle()
		Expect(contractJobs()).To(BeEmpty())
		c := h.condition(deployv1alpha1.ConditionContractSucceeded)
		Expect(c.Reason).To(Equal(deployv1alpha1.ReasonContractFailed))
		Expect(c.Message).To(ContainSubstring("Backup Job " + b + " before the contract step"))
		Expect(c.Message).To(ContainSubstring("No contract Job was run"))
		Expect(c.Message).To(ContainSubstring("green (revision " + rev2 + ") keeps serving"))
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Reason).To(Equal(deployv1alpha1.ReasonContractFailed))
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhaseFailed))
		Expect(h.activeSelectorColor()).To(Equal("green"))
	})

	It("creates exactly one contract Job across restarts, a lost status write and a deleted Job", func() {
		_, rev2 := flipToContractRevision()
		goneBlue()
		By("the status write that recorded the backup lost: a new operator adopts the Job")
		Eventually(func() error {
			r := h.get()
			r.Status.RevisionRecordOf(rev2).ContractBackup = nil
			return k8sClient.Status().Update(ctx, r)
		}).Should(Succeed())
		h.rec = h.newReconciler()
		h.settle()
		Expect(contractBackups()).To(HaveLen(1))
		Expect(h.recordOf(rev2).ContractBackup).NotTo(BeNil())
		Expect(h.recordOf(rev2).ContractBackup.File).To(HaveSuffix(backup.PreContractSuffix), "the file is read back from the Job")

		name := throughBackup(rev2)
		h.rec = h.newReconciler()
		h.settle()
		h.rec = h.newReconciler()
		h.settle()
		Expect(contractJobs()).To(HaveLen(1))

		By("the contract Job deleted while running: Lost, never created again")
		h.deleteJob(name)
		h.settle()
		h.rec = h.newReconciler()
		h.settle()
		Expect(h.job(name)).To(BeNil())
		Expect(contractJobs()).To(BeEmpty())
		Expect(h.recordOf(rev2).Contract.State).To(Equal(deployv1alpha1.StepLost))
		c := h.condition(deployv1alpha1.ConditionContractSucceeded)
		Expect(c.Reason).To(Equal(deployv1alpha1.ReasonContractFailed))
		Expect(c.Message).To(ContainSubstring("deleted before it reported how it ended"))
		Expect(h.jobs(deployv1alpha1.ComponentRestore)).To(BeEmpty())
	})

	It("reports a failed contract and never restores the database, the new colour serving on", func() {
		_, rev2 := func() (string, string) {
			r := h.release(imageV1)
			r.Spec.Rollback.Restore = deployv1alpha1.RestoreAutomatic
			rev1 := h.releaseFirst(r)
			h.update(func(r *deployv1alpha1.SoftFactoryRelease) {
				r.Spec.Image = imageV2
				r.Spec.Migration.Contract = contractSpec.DeepCopy()
			})
			h.settle()
			rev2 := h.get().Status.CurrentRevision
			h.finishJob(h.name+"-backup-"+rev2, true)
			h.settle()
			h.finishJob(h.name+"-migrate-"+rev2, true)
			h.settle()
			h.makeColorAvailable(deployv1alpha1.Green)
			h.settle()
			return rev1, rev2
		}()
		name := throughBackup(rev2)
		h.runJobPod(name, true, "", "")
		h.finishJob(name, false)
		h.settle()
		h.settle()
		c := h.condition(deployv1alpha1.ConditionContractSucceeded)
		Expect(c.Reason).To(Equal(deployv1alpha1.ReasonContractFailed))
		Expect(c.Message).To(ContainSubstring("Contract Job " + name + " failed (BackoffLimitExceeded"))
		Expect(c.Message).To(ContainSubstring("after its container ran"))
		Expect(c.Message).To(ContainSubstring("The database is not restored"))
		Expect(c.Message).To(ContainSubstring(h.recordOf(rev2).ContractBackup.File))
		Expect(h.condition(deployv1alpha1.ConditionReady).Reason).To(Equal(deployv1alpha1.ReasonContractFailed))
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Status).To(Equal(metav1.ConditionTrue))
		Expect(h.jobs(deployv1alpha1.ComponentRestore)).To(BeEmpty(), "restore: Automatic applies to the expand migration only")
		Expect(h.recordOf(rev2).Restore).To(BeNil())
		Expect(h.activeSelectorColor()).To(Equal("green"))
		Expect(*h.deployment(deployv1alpha1.Green).Spec.Replicas).To(Equal(int32(2)))
		Expect(h.events()).To(ContainElement(ContainSubstring("ContractFailed")))
		hist := h.get().Status.History[0]
		Expect(hist.Revision).To(Equal(rev2))
		Expect(hist.Outcome).To(Equal(deployv1alpha1.OutcomeFailed))
		Expect(hist.Reason).To(Equal(deployv1alpha1.ReasonContractFailed))
		Expect(hist.PromotedAt).NotTo(BeNil(), "it was promoted before its contract failed")

		By("retrying it: the contract runs again as attempt 2, on a fresh backup")
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Annotations = map[string]string{deployv1alpha1.RetryAnnotation: rev2 + "/2"}
		})
		h.settle()
		rel := h.get()
		Expect(h.job(rel.ContractJobName(rev2, 2))).To(BeNil(), "the backup first")
		backup2 := rel.ContractBackupJobName(rev2, 2)
		Expect(h.job(backup2)).NotTo(BeNil())
		Expect(contractReason()).To(Equal(deployv1alpha1.ReasonContractBackupRunning))
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Status).To(Equal(metav1.ConditionFalse))
		h.finishJob(backup2, true)
		h.settle()
		contract2 := rel.ContractJobName(rev2, 2)
		Expect(h.job(contract2)).NotTo(BeNil())
		h.finishJob(contract2, true)
		h.settle()
		Expect(contractReason()).To(Equal(deployv1alpha1.ReasonContractCompleted))
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhaseSucceeded))
		Expect(h.get().Status.History[0].Outcome).To(Equal(deployv1alpha1.OutcomePromoted))
		Expect(contractJobs()).To(HaveLen(2), "attempts 1 and 2, each once")
	})

	It("stops at once when the contract's pod can never start", func() {
		_, rev2 := flipToContractRevision()
		name := throughBackup(rev2)
		h.runJobPod(name, false, "InvalidImageName", `couldn't parse image name "registry.example.com/Softfactory:2"`)
		h.settle()
		c := h.condition(deployv1alpha1.ConditionContractSucceeded)
		Expect(c.Reason).To(Equal(deployv1alpha1.ReasonContractFailed))
		Expect(c.Message).To(ContainSubstring("cannot start its pod, and this does not heal by itself"))
		Expect(c.Message).To(ContainSubstring("InvalidImageName"))
		Expect(c.Message).To(ContainSubstring("the schema is unchanged"))
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Reason).To(Equal(deployv1alpha1.ReasonContractFailed))
		Expect(h.job(name).Status.Conditions).To(BeEmpty(), "stopped long before the Job's deadline")
	})

	It("refuses to roll back past a contract unless the annotation names the revision", func() {
		rev1, rev2 := flipToContractRevision()
		name := throughBackup(rev2)
		h.finishJob(name, true)
		h.settle()
		Expect(contractReason()).To(Equal(deployv1alpha1.ReasonContractCompleted))
		jobsBefore := &batchv1.JobList{}
		Expect(k8sClient.List(ctx, jobsBefore, client.InNamespace(h.ns))).To(Succeed())

		By("re-applying v1's spec")
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Spec.Image = imageV1
			r.Spec.Migration.Contract = nil
		})
		h.settle()
		h.rec = h.newReconciler()
		h.settle()
		st := h.get().Status
		Expect(st.CurrentRevision).To(Equal(rev1))
		d := h.condition(deployv1alpha1.ConditionDegraded)
		Expect(d.Reason).To(Equal(deployv1alpha1.ReasonSchemaContracted))
		Expect(d.Message).To(ContainSubstring("Revision " + rev1 + " was released before revision " + rev2 + "'s contract step changed the schema (Job " + name))
		Expect(d.Message).To(ContainSubstring(deployv1alpha1.AllowRollbackPastContractAnnotation + "=" + rev1))
		Expect(d.Message).To(ContainSubstring("green (revision " + rev2 + ") keeps serving"))
		Expect(h.condition(deployv1alpha1.ConditionReady).Reason).To(Equal(deployv1alpha1.ReasonSchemaContracted))
		Expect(h.activeSelectorColor()).To(Equal("green"))
		Expect(*h.deployment(deployv1alpha1.Blue).Spec.Replicas).To(BeZero(), "blue is not scaled up")
		Expect(deploymentRevision(h.deployment(deployv1alpha1.Green))).To(Equal(rev2))
		jobsAfter := &batchv1.JobList{}
		Expect(k8sClient.List(ctx, jobsAfter, client.InNamespace(h.ns))).To(Succeed())
		Expect(jobsAfter.Items).To(HaveLen(len(jobsBefore.Items)), "no Job was created")
		Expect(h.events()).To(ContainElement(ContainSubstring("SchemaContracted")))

		By("the annotation naming another revision changes nothing")
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Annotations = map[string]string{deployv1alpha1.AllowRollbackPastContractAnnotation: rev2}
		})
		h.settle()
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Reason).To(Equal(deployv1alpha1.ReasonSchemaContracted))
		Expect(*h.deployment(deployv1alpha1.Blue).Spec.Replicas).To(BeZero())

		By("the annotation naming v1: it goes ahead as a re-applied revision does")
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Annotations = map[string]string{deployv1alpha1.AllowRollbackPastContractAnnotation: rev1}
		})
		h.settle()
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Status).To(Equal(metav1.ConditionFalse))
		blue := h.deployment(deployv1alpha1.Blue)
		Expect(deploymentRevision(blue)).To(Equal(rev1))
		Expect(*blue.Spec.Replicas).To(Equal(int32(2)), "v1 is on its way back to blue")
		h.makeColorAvailable(deployv1alpha1.Blue)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("blue"))
		Expect(h.condition(deployv1alpha1.ConditionContractSucceeded).Reason).To(Equal(deployv1alpha1.ReasonNotRequired))
		h.clock.Step(31 * time.Second)
		h.settle()
		h.stopColor(deployv1alpha1.Green)
		h.settle()
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhaseSucceeded), "v1 has no contract step: done once green is down")
		Expect(h.recordOf(rev2).Contract.State).To(Equal(deployv1alpha1.StepSucceeded), "the contract's record outlives the rollback")
	})

	It("lets a revision never seen before roll forward after a contract", func() {
		_, rev2 := flipToContractRevision()
		name := throughBackup(rev2)
		h.finishJob(name, true)
		h.settle()
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Spec.Image = imageV3
			r.Spec.Migration.Contract = nil
		})
		h.settle()
		rev3 := h.get().Status.CurrentRevision
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Status).To(Equal(metav1.ConditionFalse))
		Expect(h.job(h.name + "-backup-" + rev3)).NotTo(BeNil())
	})

	It("holds a new revision's backup while the contract Job of the serving one runs", func() {
		_, rev2 := flipToContractRevision()
		name := throughBackup(rev2)
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Image = imageV3 })
		h.settle()
		rev3 := h.get().Status.CurrentRevision
		Expect(h.job(h.name + "-backup-" + rev3)).To(BeNil())
		Expect(h.condition(deployv1alpha1.ConditionReady).Message).To(ContainSubstring("contract Job " + name))
		h.finishJob(name, true)
		h.settle()
		Expect(h.job(h.name + "-backup-" + rev3)).NotTo(BeNil())
		Expect(h.recordOf(rev2).Contract.State).To(Equal(deployv1alpha1.StepSucceeded), "its record is kept up to date after the flip moved on")
	})

	It("gives the contract Jobs of the longest release name valid names, attempts 1 and 20", func() {
		r := h.release(imageV1)
		r.Name = "a" + strings.Repeat("b", 38) + "c"
		r.Spec.Migration.Contract = contractSpec.DeepCopy()
		Expect(k8sClient.Create(ctx, r)).To(Succeed(), "the API accepts the release")
		rev := revisionOf(r)
		for _, attempt := range []int32{1, 20} {
			for _, j := range []*batchv1.Job{
				buildContractBackupJob(r, rev, attempt, backup.PreContractFileName(r.Name, rev, h.clock.Now())),
				buildContractJob(r, rev, attempt),
			} {
				// The API server checks the name and the pods' job-name label.
				Expect(k8sClient.Create(ctx, j)).To(Succeed(), "Job %s (%d characters)", j.Name, len(j.Name))
			}
		}
		Expect(r.ContractJobName(rev, 20)).To(HaveSuffix("-20"))
		Expect(ptr.Deref(buildContractJob(r, rev, 1).Spec.BackoffLimit, -1)).To(BeZero())
	})
})
