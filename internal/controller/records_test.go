package controller

import (
	"context"
	"maps"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// runJobPod plays the Job controller and the kubelet for one pod of a Job: envtest runs
// neither, so the test creates the pod (owned by the Job, with its template's labels)
// and writes its status: a container that ran and exited 1, or one waiting with reason.
func (h *harness) runJobPod(jobName string, ran bool, waitingReason, waitingMessage string) {
	GinkgoHelper()
	job := h.job(jobName)
	Expect(job).NotTo(BeNil(), "Job %s does not exist", jobName)
	labels := map[string]string{}
	maps.Copy(labels, job.Spec.Template.Labels)
	labels[batchv1.JobNameLabel] = job.Name
	labels[batchv1.ControllerUidLabel] = string(job.UID)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: jobName + "-x7k2p", Namespace: h.ns, Labels: labels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(job, batchv1.SchemeGroupVersion.WithKind("Job"))}},
		Spec: *job.Spec.Template.Spec.DeepCopy(),
	}
	Expect(k8sClient.Create(ctx, pod)).To(Succeed())
	now := metav1.NewTime(h.clock.Now())
	state := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: waitingReason, Message: waitingMessage}}
	phase := corev1.PodPending
	if ran {
		state = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", StartedAt: now, FinishedAt: now}}
		phase = corev1.PodFailed
	}
	pod.Status = corev1.PodStatus{Phase: phase, ContainerStatuses: []corev1.ContainerStatus{{
		Name: pod.Spec.Containers[0].Name, Image: pod.Spec.Containers[0].Image, State: state,
	}}}
	Expect(k8sClient.Status().Update(ctx, pod)).To(Succeed())
}

// deleteJobPods plays the Job controller deleting a Job's pods (at its deadline, or
// when the Job is deleted): envtest runs no garbage collector.
func (h *harness) deleteJobPods(jobName string) {
	GinkgoHelper()
	Expect(k8sClient.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(h.ns), client.MatchingLabels{batchv1.JobNameLabel: jobName})).To(Succeed())
}

// failJobAtDeadline plays the Job controller failing a Job whose activeDeadlineSeconds
// passed.
func (h *harness) failJobAtDeadline(name string) {
	GinkgoHelper()
	j := h.job(name)
	Expect(j).NotTo(BeNil())
	now := metav1.NewTime(h.clock.Now())
	j.Status.StartTime = &now
	j.Status.Conditions = []batchv1.JobCondition{
		{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, LastTransitionTime: now, Reason: "DeadlineExceeded", Message: "Job was active longer than specified deadline"},
		{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, LastTransitionTime: now, Reason: "DeadlineExceeded", Message: "Job was active longer than specified deadline"},
	}
	Expect(k8sClient.Status().Update(ctx, j)).To(Succeed())
}

// deleteJob deletes a Job as `kubectl delete job` does (its pods go with it).
func (h *harness) deleteJob(name string) {
	GinkgoHelper()
	j := h.job(name)
	Expect(j).NotTo(BeNil())
	Expect(k8sClient.Delete(ctx, j, client.PropagationPolicy(metav1.DeletePropagationBackground))).To(Succeed())
	h.deleteJobPods(name)
	Eventually(func() *batchv1.Job { return h.job(name) }).WithTimeout(10 * time.Second).Should(BeNil())
}

// stopColor plays the Deployment controller and kubelet once a colour is scaled to 0:
// its status reports no replica left.
func (h *harness) stopColor(c deployv1alpha1.Color) {
	GinkgoHelper()
	d := h.deployment(c)
	Expect(d).NotTo(BeNil())
	Expect(ptr.Deref(d.Spec.Replicas, 1)).To(BeZero(), "%s was not scaled to 0", d.Name)
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation}
	Expect(k8sClient.Status().Update(ctx, d)).To(Succeed())
}

// recordOf is the release's record of a revision.
func (h *harness) recordOf(rev string) *deployv1alpha1.RevisionRecord {
	return h.get().Status.RevisionRecordOf(rev)
}

// trimHistory plays many later releases: revisionHistoryLimit has pushed every entry
// but the newest out of status.history.
func (h *harness) trimHistoryTo(keep func(deployv1alpha1.ReleaseRecord) bool) {
	GinkgoHelper()
	Eventually(func() error {
		r := h.get()
		var kept []deployv1alpha1.ReleaseRecord
		for _, rec := range r.Status.History {
			if keep(rec) {
				kept = append(kept, rec)
			}
		}
		r.Status.History = kept
		return k8sClient.Status().Update(ctx, r)
	}).Should(Succeed())
}

var _ = Describe("The records of a revision's steps", func() {
	var h *harness
	BeforeEach(func() { h = newHarness() })

	// failMigrationAfterItRan takes a second image to a migration whose container ran and
	// failed (pod status written by the test: no kubelet in envtest).
	failMigrationAfterItRan := func() string {
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Image = imageV2 })
		h.settle()
		rev := h.get().Status.CurrentRevision
		h.finishJob(h.name+"-backup-"+rev, true)
		h.settle()
		migrate := h.name + "-migrate-" + rev
		h.runJobPod(migrate, true, "", "")
		h.settle()
		Expect(h.recordOf(rev).Migration.ContainerStarted).To(BeTrue(), "a container that ran is recorded at once")
		h.finishJob(migrate, false)
		h.settle()
		return rev
	}

	It("restores a failed migration's dump at most once, whatever happens to history, the Job or the operator", func() {
		r := h.release(imageV1)
		r.Spec.Rollback.RestoreDatabase = true
		h.releaseFirst(r)
		rev2 := failMigrationAfterItRan()
		dump := h.recordOf(rev2).Backup.File

		By("stopping blue, the serving colour, before anything is restored")
		Expect(*h.deployment(deployv1alpha1.Blue).Spec.Replicas).To(BeZero())
		Expect(h.jobs(deployv1alpha1.ComponentRestore)).To(BeEmpty(), "no restore while blue's pods may still write")
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Message).To(ContainSubstring("waiting for every pod of the release to stop"))
		h.stopColor(deployv1alpha1.Blue)
		h.settle()

		By("restoring the dump once blue is gone")
		restores := h.jobs(deployv1alpha1.ComponentRestore)
		Expect(restores).To(HaveLen(1))
		Expect(restores[0].Annotations[deployv1alpha1.BackupFileAnnotation]).To(Equal(dump))
		Expect(h.recordOf(rev2).Restore.Job.State).To(Equal(deployv1alpha1.StepStarted))
		h.finishJob(restores[0].Name, true)
		h.settle()

		By("bringing blue back and waiting for it before the release settles as failed and restored")
		Expect(*h.deployment(deployv1alpha1.Blue).Spec.Replicas).To(Equal(int32(2)))
		Expect(h.recordOf(rev2).Restore.Phase).To(Equal(deployv1alpha1.RestoreResumingWriters))
		h.setReady(deployv1alpha1.Blue, 2)
		h.settle()
		Expect(h.recordOf(rev2).Restore.Phase).To(Equal(deployv1alpha1.RestoreDone))
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Reason).To(Equal(deployv1alpha1.ReasonMigrationFailed))
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Message).To(ContainSubstring("loaded " + dump + " back"))
		Expect(h.activeSelectorColor()).To(Equal("blue"))
		Expect(h.events()).To(ContainElements(ContainSubstring("StoppingWriters"), ContainSubstring("Restored"), ContainSubstring("ResumedWriters")))

		By("trimming the history, deleting the restore Job and starting a fresh operator on the same failed spec")
		h.trimHistoryTo(func(rec deployv1alpha1.ReleaseRecord) bool { return rec.Revision != rev2 })
		h.deleteJob(restores[0].Name)
		h.rec = h.newReconciler()
		h.settle()
		Expect(h.jobs(deployv1alpha1.ComponentRestore)).To(BeEmpty(), "a restore never runs twice for a revision")
		Expect(*h.deployment(deployv1alpha1.Blue).Spec.Replicas).To(Equal(int32(2)), "blue is not stopped again")
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Reason).To(Equal(deployv1alpha1.ReasonMigrationFailed))
		Expect(h.recordOf(rev2).Restore.Job.State).To(Equal(deployv1alpha1.StepSucceeded))
	})

	It("waits for the restore annotation in Manual mode, and holds a newer spec until the restore is done", func() {
		r := h.release(imageV1)
		r.Spec.Rollback.Restore = deployv1alpha1.RestoreManual
		h.releaseFirst(r)
		rev2 := failMigrationAfterItRan()

		By("preparing the restore and waiting for the user")
		Expect(h.jobs(deployv1alpha1.ComponentRestore)).To(BeEmpty())
		Expect(*h.deployment(deployv1alpha1.Blue).Spec.Replicas).To(Equal(int32(2)), "blue keeps serving until the user decides")
		Expect(h.recordOf(rev2).Restore.Phase).To(Equal(deployv1alpha1.RestoreAwaitingApproval))
		ready := h.condition(deployv1alpha1.ConditionReady)
		Expect(ready.Reason).To(Equal(deployv1alpha1.ReasonRestoreAwaitingApproval))
		Expect(ready.Message).To(ContainSubstring("kubectl sfrelease restore " + h.name))
		Expect(ready.Message).To(ContainSubstring(h.recordOf(rev2).Backup.File))
		Expect(h.events()).To(ContainElement(ContainSubstring(deployv1alpha1.ReasonRestoreAwaitingApproval)))

		By("ignoring an annotation that names another revision")
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Annotations = map[string]string{deployv1alpha1.RestoreAnnotation: "0000000000"}
		})
		h.settle()
		Expect(*h.deployment(deployv1alpha1.Blue).Spec.Replicas).To(Equal(int32(2)))

		By("stopping blue once the annotation names the revision")
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Annotations[deployv1alpha1.RestoreAnnotation] = rev2 })
		h.settle()
		Expect(*h.deployment(deployv1alpha1.Blue).Spec.Replicas).To(BeZero())
		Expect(h.condition(deployv1alpha1.ConditionReady).Reason).To(Equal(deployv1alpha1.ReasonRestoring))

		By("holding a newer spec while the restore is under way")
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Image = imageV3 })
		h.settle()
		rev3 := h.get().Status.CurrentRevision
		Expect(h.job(h.name+"-backup-"+rev3)).To(BeNil(), "no backup of a database being restored")
		Expect(h.condition(deployv1alpha1.ConditionReady).Reason).To(Equal(deployv1alpha1.ReasonWaitingForSafePoint))
		h.stopColor(deployv1alpha1.Blue)
		h.settle()
		restore := h.job(h.name + "-restore-" + rev2)
		Expect(restore).NotTo(BeNil())
		h.finishJob(restore.Name, true)
		h.settle()
		Expect(h.job(h.name+"-backup-"+rev3)).To(BeNil(), "nor while blue is not serving again")
		h.setReady(deployv1alpha1.Blue, 2)
		h.settle()
		Expect(h.recordOf(rev2).Restore.Phase).To(Equal(deployv1alpha1.RestoreDone))
		Expect(h.job(h.name+"-backup-"+rev3)).NotTo(BeNil(), "the newer spec goes ahead once blue serves again")
	})

	// migrateWithRestoreOptedIn takes a release that opted in to the restore to a second
	// image, past its backup, to its migration Job (not yet run), and names both.
	migrateWithRestoreOptedIn := func() (rev, migrate string) {
		r := h.release(imageV1)
		r.Spec.Rollback.RestoreDatabase = true
		h.releaseFirst(r)
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Image = imageV2 })
		h.settle()
		rev = h.get().Status.CurrentRevision
		h.finishJob(h.name+"-backup-"+rev, true)
		h.settle()
		return rev, h.name + "-migrate-" + rev
	}

	It("counts a migration as run when its Job counted a pod that ran to completion, though the Job then failed", func() {
		rev, migrate := migrateWithRestoreOptedIn()
		By("the Job controller counting a pod that succeeded (gone from the cache) as the deadline passed")
		j := h.job(migrate)
		j.Status.Succeeded = 1
		Expect(k8sClient.Status().Update(ctx, j)).To(Succeed())
		h.failJobAtDeadline(migrate)
		h.settle()

		Expect(h.recordOf(rev).Migration.ContainerStarted).To(BeTrue(), "the migration ran: the Job counted its pod")
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Reason).To(Equal(deployv1alpha1.ReasonMigrationFailed),
			"not MigrationNeverRan: the database may have changed")
	})

	It("leaves the database alone when the migration failed before its container ever ran", func() {
		_, migrate := migrateWithRestoreOptedIn()
		h.runJobPod(migrate, false, "ImagePullBackOff", `Back-off pulling image "registry.example.com/softfactory:1.4.2"`)
		h.settle()
		By("the Job controller failing the Job at its deadline and deleting its pod")
		h.deleteJobPods(migrate)
		h.failJobAtDeadline(migrate)
		h.settle()

		Expect(h.jobs(deployv1alpha1.ComponentRestore)).To(BeEmpty(), "nothing ran, so nothing is restored")
		Expect(*h.deployment(deployv1alpha1.Blue).Spec.Replicas).To(Equal(int32(2)), "blue keeps serving")
		c := h.condition(deployv1alpha1.ConditionDegraded)
		Expect(c.Reason).To(Equal(deployv1alpha1.ReasonMigrationNeverRan))
		Expect(c.Message).To(ContainSubstring("ImagePullBackOff"))
		Expect(c.Message).To(ContainSubstring("the database is left alone"))
		Expect(h.condition(deployv1alpha1.ConditionMigrationSucceeded).Reason).To(Equal(deployv1alpha1.ReasonMigrationNeverRan))
	})

	It("takes a new backup before migrating when the backup grew older than maxAge during a pause", func() {
		h.create(h.release(imageV1))
		h.settle()
		rev := h.get().Status.CurrentRevision
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Paused = true })
		h.finishJob(h.name+"-backup-"+rev, true)
		h.settle()
		h.clock.Step(61 * time.Minute)
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Paused = false })
		h.settle()

		Expect(h.jobs(deployv1alpha1.ComponentMigration)).To(BeEmpty(), "no migration on a dump an hour old")
		second := h.name + "-backup-" + rev + "-2"
		Expect(h.job(second)).NotTo(BeNil())
		Expect(h.recordOf(rev).Backup.Attempt).To(Equal(int32(2)))
		Expect(h.events()).To(ContainElement(ContainSubstring("BackupTooOld")))
		h.finishJob(second, true)
		h.settle()
		Expect(h.jobs(deployv1alpha1.ComponentMigration)).To(HaveLen(1))
		Expect(h.get().Status.LastBackup.JobName).To(Equal(second))
	})

	It("never migrates twice when an old spec whose migration Job was deleted is applied again", func() {
		rev1 := h.releaseFirst(h.release(imageV1))
		h.startSecond(imageV2)
		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()
		h.deleteJob(h.name + "-migrate-" + rev1)
		h.deleteJob(h.name + "-backup-" + rev1)
		h.clock.Step(48 * time.Hour)

		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Image = imageV1 })
		h.settle()
		Expect(h.job(h.name+"-migrate-"+rev1)).To(BeNil(), "the record says it migrated")
		Expect(h.jobs(deployv1alpha1.ComponentBackup)).To(HaveLen(1), "no backup taken again for a revision that migrated, however old its dump")
		Expect(h.condition(deployv1alpha1.ConditionMigrationSucceeded).Status).To(Equal(metav1.ConditionTrue))
		Expect(h.deployment(deployv1alpha1.Blue).Annotations[deployv1alpha1.RevisionAnnotation]).To(Equal(rev1))
	})

	It("deletes the finished Jobs of revisions older than revisionHistoryLimit, and only those", func() {
		r := h.release(imageV1)
		r.Spec.RevisionHistoryLimit = 2
		rev1 := h.releaseFirst(r)
		rev2 := h.startSecond(imageV2)
		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()
		rev3 := h.startSecond(imageV3)
		h.makeColorAvailable(deployv1alpha1.Blue)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("blue"))

		st := h.get().Status
		Expect(st.History).To(HaveLen(2))
		Expect(st.RevisionRecordOf(rev1)).To(BeNil(), "no colour runs revision 1 and history forgot it")
		Expect(st.RevisionRecordOf(rev2)).NotTo(BeNil())
		Expect(h.job(h.name + "-backup-" + rev1)).To(BeNil())
		Expect(h.job(h.name + "-migrate-" + rev1)).To(BeNil())
		for _, rev := range []string{rev2, rev3} {
			Expect(h.job(h.name + "-backup-" + rev)).NotTo(BeNil())
			Expect(h.job(h.name + "-migrate-" + rev)).NotTo(BeNil())
		}
		Expect(h.events()).To(ContainElement(ContainSubstring("Deleted finished Jobs "+h.name+"-backup-"+rev1+", "+h.name+"-migrate-"+rev1)),
			"one Event names the revision's Jobs together")
	})

	It("deletes the finished Jobs of a revision no colour runs, and keeps its record", func() {
		rev1 := h.releaseFirst(h.release(imageV1)) // the default revisionHistoryLimit (10)
		rev2 := h.startSecond(imageV2)
		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()
		rev3 := h.startSecond(imageV3)
		h.makeColorAvailable(deployv1alpha1.Blue)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("blue"))

		st := h.get().Status
		Expect(st.History).To(ContainElement(HaveField("Revision", rev1)), "revision 1 is still in history")
		Expect(st.RevisionRecordOf(rev1)).NotTo(BeNil(), "and its record stays: re-applying it never runs its steps again")
		Expect(h.job(h.name+"-backup-"+rev1)).To(BeNil(), "no colour runs revision 1: its Jobs go")
		Expect(h.job(h.name + "-migrate-" + rev1)).To(BeNil())
		for _, rev := range []string{rev2, rev3} {
			Expect(h.job(h.name+"-backup-"+rev)).NotTo(BeNil(), "the serving colour's and the other colour's Jobs stay for kubectl logs")
			Expect(h.job(h.name + "-migrate-" + rev)).NotTo(BeNil())
		}

		By("re-applying revision 1: no backup or migration again, its Jobs not made again")
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Image = imageV1 })
		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()
		Expect(h.job(h.name + "-backup-" + rev1)).To(BeNil())
		Expect(h.job(h.name + "-migrate-" + rev1)).To(BeNil())
		Expect(h.condition(deployv1alpha1.ConditionMigrationSucceeded).Status).To(Equal(metav1.ConditionTrue))
	})

	It("does not delete a Job again while the cache still lists it", func() {
		rev1 := h.releaseFirst(h.release(imageV1))
		h.startSecond(imageV2)
		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()
		var before batchv1.JobList
		Expect(h.client.List(ctx, &before, client.InNamespace(h.ns))).To(Succeed())
		h.startSecond(imageV3)
		h.makeColorAvailable(deployv1alpha1.Blue)
		h.settle()
		Expect(h.job(h.name + "-backup-" + rev1)).To(BeNil())

		// The cache as it is before the watch brings the deletion of revision 1's Jobs.
		var cached batchv1.JobList
		Expect(h.client.List(ctx, &cached, client.InNamespace(h.ns))).To(Succeed())
		for _, j := range before.Items {
			if j.Labels[deployv1alpha1.LabelRevision] == rev1 {
				cached.Items = append(cached.Items, j)
			}
		}
		lagging := &laggingJobList{countingClient: h.client, snapshot: &cached}
		h.rec.Client = lagging
		writes := h.client.writes.Load()
		h.reconcile()
		Expect(h.client.writes.Load()).To(Equal(writes), "the deleted Jobs are not deleted again")
	})

	It("changes nothing when the finished Jobs of a release in flight are deleted", func() {
		h.releaseFirst(h.release(imageV1))
		rev2 := h.startSecond(imageV2)
		h.settle()
		before := h.get().Status
		h.deleteJob(h.name + "-backup-" + rev2)
		h.deleteJob(h.name + "-migrate-" + rev2)
		writes := h.client.writes.Load()
		h.rec = h.newReconciler()
		h.reconcile()
		Expect(h.client.writes.Load()).To(Equal(writes), "no Job made again, no status changed")
		Expect(h.get().Status).To(Equal(before))
		Expect(h.job(h.name + "-backup-" + rev2)).To(BeNil())
		Expect(h.job(h.name + "-migrate-" + rev2)).To(BeNil())
	})
})

// laggingJobList plays an informer cache that has not yet delivered the deletion of Jobs:
// it lists the Jobs of a snapshot (envtest's direct client never lags).
type laggingJobList struct {
	*countingClient
	snapshot *batchv1.JobList
}

func (c *laggingJobList) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if jobs, ok := list.(*batchv1.JobList); ok {
		c.snapshot.DeepCopyInto(jobs)
		return nil
	}
	return c.countingClient.List(ctx, list, opts...)
}
