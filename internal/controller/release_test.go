package controller

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

const (
	imageV1 = "registry.example.com/softfactory:1.4.1"
	imageV2 = "registry.example.com/softfactory:1.4.2"
	imageV3 = "registry.example.com/softfactory:1.4.3"
)

var _ = Describe("A SoftFactory release", func() {
	var h *harness
	BeforeEach(func() { h = newHarness() })

	It("sends the first release to blue and points the Service at blue once blue is ready", func() {
		h.create(h.release(imageV1))
		h.settle()
		rev := h.get().Status.CurrentRevision
		Expect(rev).To(HaveLen(revisionLength))

		By("backing up first: the backup Job exists, no migration and no Deployment yet")
		Expect(h.job(h.name + "-backup-" + rev)).NotTo(BeNil())
		Expect(h.jobs(deployv1alpha1.ComponentMigration)).To(BeEmpty())
		Expect(h.deployment(deployv1alpha1.Blue)).To(BeNil())
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhaseBackingUp))

		h.finishJob(h.name+"-backup-"+rev, true)
		h.settle()
		By("migrating only after the backup completed")
		Expect(h.job(h.name + "-migrate-" + rev)).NotTo(BeNil())
		Expect(h.deployment(deployv1alpha1.Blue)).To(BeNil())
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhaseMigrating))

		h.finishJob(h.name+"-migrate-"+rev, true)
		h.settle()
		By("deploying blue with probes on the health path, and no active Service while nothing is ready")
		blue := h.deployment(deployv1alpha1.Blue)
		Expect(blue).NotTo(BeNil())
		Expect(*blue.Spec.Replicas).To(Equal(int32(2)))
		api := blue.Spec.Template.Spec.Containers[0]
		Expect(api.Image).To(Equal(imageV1))
		Expect(api.ReadinessProbe.HTTPGet.Path).To(Equal("/health"))
		Expect(h.service(h.name)).To(BeNil())
		Expect(h.service(h.name + "-preview").Spec.Selector).To(HaveKeyWithValue(deployv1alpha1.LabelColor, "blue"))

		h.makeColorAvailable(deployv1alpha1.Blue)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("blue"))
		st := h.get().Status
		Expect(st.ActiveColor).To(Equal(deployv1alpha1.Blue))
		Expect(st.ActiveImage).To(Equal(imageV1))
		Expect(st.StableRevision).To(Equal(rev))
		Expect(st.Phase).To(Equal(deployv1alpha1.PhaseSucceeded))
		Expect(st.LastBackup.File).To(MatchRegexp(`^softfactory-` + rev + `-20261125T120000Z\.dump$`))
		Expect(st.History).To(HaveLen(1))
		Expect(st.History[0].Outcome).To(Equal(deployv1alpha1.OutcomePromoted))
		Expect(h.condition(deployv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
		Expect(h.condition(deployv1alpha1.ConditionReady).ObservedGeneration).To(Equal(h.get().Generation))
	})

	It("deploys the second release to green and moves the selector only when green is fully ready", func() {
		h.releaseFirst(h.release(imageV1))
		rev2 := h.startSecond(imageV2)

		green := h.deployment(deployv1alpha1.Green)
		Expect(green).NotTo(BeNil())
		Expect(green.Spec.Template.Spec.Containers[0].Image).To(Equal(imageV2))
		Expect(h.service(h.name + "-preview").Spec.Selector).To(HaveKeyWithValue(deployv1alpha1.LabelColor, "green"))

		By("keeping traffic on blue while one of two green pods is ready")
		h.setReady(deployv1alpha1.Green, 1)
		h.setEndpoints(deployv1alpha1.Green, 1)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("blue"))
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhaseDeploying))

		By("keeping traffic on blue while green is ready but its endpoints are not yet listed")
		h.setReady(deployv1alpha1.Green, 2)
		version := h.get().ResourceVersion
		res := h.settle()
		Expect(h.activeSelectorColor()).To(Equal("blue"))
		Expect(h.get().ResourceVersion).To(Equal(version), "progress alone is not written within progressReportInterval of the last write")
		Expect(h.condition(deployv1alpha1.ConditionGreenAvailable).Reason).To(Equal(deployv1alpha1.ReasonProgressing))
		Expect(res.RequeueAfter).To(Equal(previewEndpointsGrace), "the gate looks again when the EndpointSlice controller's grace is over")

		h.clock.Step(res.RequeueAfter)
		res = h.settle()
		Expect(h.activeSelectorColor()).To(Equal("blue"), "asking for the endpoints again does not open the gate")
		Expect(h.service(h.name + "-preview").Annotations).To(HaveKeyWithValue(deployv1alpha1.EndpointsRequestedAnnotation, rev2))
		Expect(res.RequeueAfter).To(BeNumerically(">", 0))
		Expect(res.RequeueAfter).To(BeNumerically("<=", progressReportInterval), "the held report is written by a pass at the end of the interval")

		h.clock.Step(res.RequeueAfter)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("blue"))
		Expect(h.condition(deployv1alpha1.ConditionGreenAvailable).Reason).To(Equal(deployv1alpha1.ReasonWaitingForEndpoints))
		Expect(h.condition(deployv1alpha1.ConditionGreenAvailable).Message).To(ContainSubstring("lists 1/2 ready endpoints"))
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhaseVerifying))

		By("flipping once the preview Service lists every green pod as ready, and reporting it at once")
		h.setEndpoints(deployv1alpha1.Green, 2)
		h.settle()
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhasePromoting), "a flip is never held, however recent the last write")
		Expect(h.activeSelectorColor()).To(Equal("green"))
		svc := h.service(h.name)
		Expect(svc.Spec.Selector).To(Equal(map[string]string{
			deployv1alpha1.LabelInstance: h.name, deployv1alpha1.LabelComponent: "app", deployv1alpha1.LabelColor: "green",
		}))
		st := h.get().Status
		Expect(st.ActiveColor).To(Equal(deployv1alpha1.Green))
		Expect(st.StableRevision).To(Equal(rev2))
		Expect(st.History[0].Revision).To(Equal(rev2))
		Expect(h.events()).To(ContainElement(ContainSubstring("switched from blue to green")))
	})

	It("flips as soon as green's ReplicaSet is fully available, before its Deployment reports it", func() {
		h.releaseFirst(h.release(imageV1))
		h.startSecond(imageV2)
		h.setEndpoints(deployv1alpha1.Green, 2)

		By("keeping traffic on blue while the ReplicaSet has one of two pods ready")
		h.setGreenReplicaSetReady(1)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("blue"))

		By("flipping once it has both, while the Deployment's own status still counts none ready")
		h.setGreenReplicaSetReady(2)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("green"))
		Expect(h.deployment(deployv1alpha1.Green).Status.ReadyReplicas).To(BeZero())
		Expect(h.condition(deployv1alpha1.ConditionGreenAvailable).Message).To(ContainSubstring("2/2 replicas ready and 2 ready endpoints"))
	})

	It("asks for the preview's endpoints again, once per revision, when green stays fully available but not listed ready past the grace", func() {
		h.releaseFirst(h.release(imageV1))
		rev2 := h.startSecond(imageV2)
		requested := func() string {
			return h.service(h.name + "-preview").Annotations[deployv1alpha1.EndpointsRequestedAnnotation]
		}

		By("asking nothing while green's pods start")
		h.setGreenReplicaSetReady(1)
		h.settle()
		Expect(requested()).To(BeEmpty())

		By("asking nothing within the grace after green's ReplicaSet is fully available")
		h.setGreenReplicaSetReady(2)
		res := h.settle()
		Expect(requested()).To(BeEmpty())
		Expect(res.RequeueAfter).To(Equal(previewEndpointsGrace))
		h.clock.Step(previewEndpointsGrace / 2)
		res = h.settle()
		Expect(requested()).To(BeEmpty())
		Expect(res.RequeueAfter).To(Equal(previewEndpointsGrace/2), "the grace counts from the pass that first saw the lag")

		By("asking once the grace is over and the preview still lists none of green ready")
		h.clock.Step(previewEndpointsGrace / 2)
		h.settle()
		Expect(requested()).To(Equal(rev2))
		Expect(h.activeSelectorColor()).To(Equal("blue"), "the gate still waits for the endpoints")
		before := h.client.writes.Load()
		h.clock.Step(time.Second)
		h.reconcile()
		Expect(h.client.writes.Load()).To(Equal(before), "asked once per revision")

		By("flipping once the EndpointSlice controller lists green ready")
		// envtest runs no EndpointSlice controller: the test writes the preview's slice.
		h.setEndpoints(deployv1alpha1.Green, 2)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("green"))
	})

	It("does not ask for the preview's endpoints when they are listed ready within the grace", func() {
		h.releaseFirst(h.release(imageV1))
		h.startSecond(imageV2)
		h.setGreenReplicaSetReady(2)
		h.settle()
		h.clock.Step(previewEndpointsGrace - time.Millisecond)
		h.setEndpoints(deployv1alpha1.Green, 2)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("green"))
		h.clock.Step(time.Second)
		h.settle()
		Expect(h.service(h.name + "-preview").Annotations).NotTo(HaveKey(deployv1alpha1.EndpointsRequestedAnnotation))
	})

	It("does not ask for the preview's endpoints when they are listed ready with green's pods", func() {
		h.releaseFirst(h.release(imageV1))
		h.startSecond(imageV2)
		h.setEndpoints(deployv1alpha1.Green, 2)
		h.setGreenReplicaSetReady(2)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("green"))
		Expect(h.service(h.name + "-preview").Annotations).NotTo(HaveKey(deployv1alpha1.EndpointsRequestedAnnotation))
	})

	It("does not migrate when the backup failed, and keeps blue serving", func() {
		h.releaseFirst(h.release(imageV1))
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Image = imageV2 })
		h.settle()
		rev2 := h.get().Status.CurrentRevision
		h.finishJob(h.name+"-backup-"+rev2, false)
		h.settle()
		h.settle()

		Expect(h.job(h.name + "-migrate-" + rev2)).To(BeNil())
		Expect(h.jobs(deployv1alpha1.ComponentMigration)).To(HaveLen(1), "only the first release's migration exists")
		Expect(h.activeSelectorColor()).To(Equal("blue"))
		Expect(h.deployment(deployv1alpha1.Green)).To(BeNil())
		degraded := h.condition(deployv1alpha1.ConditionDegraded)
		Expect(degraded.Status).To(Equal(metav1.ConditionTrue))
		Expect(degraded.Reason).To(Equal(deployv1alpha1.ReasonBackupFailed))
		Expect(degraded.Message).To(ContainSubstring("No migration was run"))
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhaseFailed))
	})

	It("leaves the selector and blue untouched when the migration fails", func() {
		h.releaseFirst(h.release(imageV1))
		blueBefore := h.deployment(deployv1alpha1.Blue)
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Image = imageV2 })
		h.settle()
		rev2 := h.get().Status.CurrentRevision
		h.finishJob(h.name+"-backup-"+rev2, true)
		h.settle()
		h.runJobPod(h.name+"-migrate-"+rev2, true, "", "")
		h.finishJob(h.name+"-migrate-"+rev2, false)
		h.settle()

		Expect(h.activeSelectorColor()).To(Equal("blue"))
		Expect(h.deployment(deployv1alpha1.Green)).To(BeNil(), "no green after a failed migration")
		blueAfter := h.deployment(deployv1alpha1.Blue)
		Expect(blueAfter.Generation).To(Equal(blueBefore.Generation))
		Expect(blueAfter.Spec.Template.Spec.Containers[0].Image).To(Equal(imageV1))
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Reason).To(Equal(deployv1alpha1.ReasonMigrationFailed))
		Expect(h.jobs(deployv1alpha1.ComponentRestore)).To(BeEmpty(), "no restore unless the user opted in")
		Expect(h.get().Status.History[0].Outcome).To(Equal(deployv1alpha1.OutcomeFailed))
	})

	It("restores the pre-release dump after a failed migration only when the user opted in", func() {
		r := h.release(imageV1)
		r.Spec.Rollback.RestoreDatabase = true
		h.releaseFirst(r)
		rev2 := h.startSecondWithFailedMigration(imageV2)
		h.stopColor(deployv1alpha1.Blue) // the restore waits for the serving colour's pods to be gone
		h.settle()

		restores := h.jobs(deployv1alpha1.ComponentRestore)
		Expect(restores).To(HaveLen(1))
		backupFile := h.job(h.name + "-backup-" + rev2).Annotations[deployv1alpha1.BackupFileAnnotation]
		Expect(restores[0].Annotations[deployv1alpha1.BackupFileAnnotation]).To(Equal(backupFile))
		Expect(restores[0].Spec.Template.Spec.Containers[0].Env).To(ContainElement(corev1.EnvVar{Name: "BACKUP_FILE", Value: backupFile}))

		h.finishJob(restores[0].Name, true)
		h.settle()
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Message).To(ContainSubstring("the database is as it was before the release"))
		Expect(h.jobs(deployv1alpha1.ComponentRestore)).To(HaveLen(1), "the restore runs once")
	})

	It("aborts when green is not available within the progress deadline, keeping blue serving", func() {
		r := h.release(imageV1)
		r.Spec.Strategy.BlueGreen.ProgressDeadlineSeconds = 120
		h.releaseFirst(r)
		h.startSecond(imageV2)
		h.setReady(deployv1alpha1.Green, 1)
		res := h.settle()
		Expect(res.RequeueAfter).To(Equal(progressReportInterval), "the \"1/2 ready\" report waits for the interval")
		h.clock.Step(progressReportInterval)
		res = h.settle()
		Expect(h.condition(deployv1alpha1.ConditionGreenAvailable).Message).To(ContainSubstring("has 1/2 replicas ready"))
		Expect(res.RequeueAfter).To(BeNumerically("~", 120*time.Second-progressReportInterval, time.Second), "a requeue is computed for the deadline")

		h.clock.Step(119 * time.Second)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("blue"))
		Expect(*h.deployment(deployv1alpha1.Green).Spec.Replicas).To(BeZero(), "green is scaled down")
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Reason).To(Equal(deployv1alpha1.ReasonProgressDeadlineExceeded))

		By("staying aborted across an operator restart")
		h.clock.Step(time.Hour)
		h.rec = h.newReconciler()
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("blue"))
		Expect(*h.deployment(deployv1alpha1.Green).Spec.Replicas).To(BeZero())
		Expect(h.events()).To(ContainElement(ContainSubstring("did not become available within 120s")))
	})

	It("keeps a failed green for inspection when rollback.onFailure is Keep", func() {
		r := h.release(imageV1)
		r.Spec.Strategy.BlueGreen.ProgressDeadlineSeconds = 60
		r.Spec.Rollback.OnFailure = deployv1alpha1.FailurePolicyKeep
		h.releaseFirst(r)
		h.startSecond(imageV2)
		h.clock.Step(61 * time.Second)
		h.settle()
		Expect(*h.deployment(deployv1alpha1.Green).Spec.Replicas).To(Equal(int32(2)))
		Expect(h.activeSelectorColor()).To(Equal("blue"))

		By("never sending traffic to it, even when it becomes ready after the deadline")
		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("blue"))
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhaseFailed))
	})

	It("waits for the promote annotation in manual mode and ignores a stale one", func() {
		r := h.release(imageV1)
		r.Spec.Strategy.BlueGreen.AutoPromote = new(false)
		h.releaseFirst(r)
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Annotations = map[string]string{deployv1alpha1.PromoteAnnotation: "0123456789"}
		})
		rev2 := h.startSecond(imageV2)
		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()

		Expect(h.activeSelectorColor()).To(Equal("blue"), "a promote annotation for another revision is stale")
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhaseAwaitingPromotion))
		Expect(h.condition(deployv1alpha1.ConditionPromoted).Message).To(ContainSubstring(rev2))

		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Annotations[deployv1alpha1.PromoteAnnotation] = rev2 })
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("green"))
	})

	It("aborts the release named by the abort annotation and leaves traffic where it is", func() {
		h.releaseFirst(h.release(imageV1))
		rev2 := h.startSecond(imageV2)
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Annotations = map[string]string{deployv1alpha1.AbortAnnotation: rev2}
		})
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("blue"))
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Reason).To(Equal(deployv1alpha1.ReasonAborted))
		Expect(*h.deployment(deployv1alpha1.Green).Spec.Replicas).To(BeZero())
	})

	It("scales the old colour down only after the scale-down delay, keeping its Deployment", func() {
		r := h.release(imageV1)
		r.Spec.Strategy.BlueGreen.ScaleDownDelaySeconds = ptr.To[int32](30)
		h.releaseFirst(r)
		h.startSecond(imageV2)
		h.makeColorAvailable(deployv1alpha1.Green)
		res := h.settle()
		Expect(h.activeSelectorColor()).To(Equal("green"))
		Expect(res.RequeueAfter).To(BeNumerically("~", 30*time.Second, time.Second))
		Expect(*h.deployment(deployv1alpha1.Blue).Spec.Replicas).To(Equal(int32(2)))
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhasePromoting))

		Expect(h.deployment(deployv1alpha1.Blue).Annotations).NotTo(HaveKey(deployv1alpha1.ScaleDownAtAnnotation),
			"the delay counts from the flip time on the Service; the flip needs no second write")
		Expect(h.service(h.name).Annotations).To(HaveKeyWithValue(deployv1alpha1.PromotedAtAnnotation, h.clock.Now().UTC().Format(time.RFC3339Nano)))

		h.clock.Step(20 * time.Second)
		By("a fresh operator honours the stored flip time instead of restarting the clock")
		h.rec = h.newReconciler()
		res = h.settle()
		Expect(*h.deployment(deployv1alpha1.Blue).Spec.Replicas).To(Equal(int32(2)))
		Expect(res.RequeueAfter).To(BeNumerically("~", 10*time.Second, time.Second))

		h.clock.Step(11 * time.Second)
		h.settle()
		blue := h.deployment(deployv1alpha1.Blue)
		Expect(blue).NotTo(BeNil(), "the old colour's Deployment stays for rollback")
		Expect(*blue.Spec.Replicas).To(BeZero())
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhaseSucceeded))
	})

	It("gives an old colour with no flip time to count from the full delay, stored so a restart keeps it", func() {
		r := h.release(imageV1)
		r.Spec.Strategy.BlueGreen.ScaleDownDelaySeconds = ptr.To[int32](30)
		h.releaseFirst(r)
		h.startSecond(imageV2)
		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("green"))

		By("someone removing the flip time from the Service 20 s after the flip")
		h.clock.Step(20 * time.Second)
		svc := h.service(h.name)
		delete(svc.Annotations, deployv1alpha1.PromotedAtAnnotation)
		Expect(k8sClient.Update(ctx, svc)).To(Succeed())
		res := h.settle()
		Expect(h.deployment(deployv1alpha1.Blue).Annotations).To(HaveKeyWithValue(deployv1alpha1.ScaleDownAtAnnotation,
			h.clock.Now().Add(30*time.Second).UTC().Format(time.RFC3339)))
		Expect(res.RequeueAfter).To(BeNumerically("~", 30*time.Second, time.Second))

		h.clock.Step(15 * time.Second)
		h.rec = h.newReconciler()
		h.settle()
		Expect(*h.deployment(deployv1alpha1.Blue).Spec.Replicas).To(Equal(int32(2)), "a fresh operator keeps the stored deadline")
		h.clock.Step(16 * time.Second)
		h.settle()
		Expect(*h.deployment(deployv1alpha1.Blue).Spec.Replicas).To(BeZero())
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhaseSucceeded))
	})

	It("creates no Job when the same spec is applied again", func() {
		h.releaseFirst(h.release(imageV1))
		before := len(h.jobs(deployv1alpha1.ComponentBackup)) + len(h.jobs(deployv1alpha1.ComponentMigration))
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Labels = map[string]string{"team": "platform"} // a re-apply that changes nothing in the spec
			r.Spec.Image = imageV1
		})
		h.settle()
		Expect(len(h.jobs(deployv1alpha1.ComponentBackup)) + len(h.jobs(deployv1alpha1.ComponentMigration))).To(Equal(before))
		Expect(before).To(Equal(2))
	})

	It("creates no second Job when a fresh operator starts in the middle of a migration", func() {
		h.create(h.release(imageV1))
		h.settle()
		rev := h.get().Status.CurrentRevision
		h.finishJob(h.name+"-backup-"+rev, true)
		h.settle()
		Expect(h.jobs(deployv1alpha1.ComponentMigration)).To(HaveLen(1))

		for range 3 {
			h.rec = h.newReconciler()
			h.settle()
		}
		Expect(h.jobs(deployv1alpha1.ComponentBackup)).To(HaveLen(1))
		Expect(h.jobs(deployv1alpha1.ComponentMigration)).To(HaveLen(1))
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhaseMigrating))
	})

	It("supersedes a release still deploying with a newer spec", func() {
		h.releaseFirst(h.release(imageV1))
		rev2 := h.startSecond(imageV2)
		h.setReady(deployv1alpha1.Green, 1) // v2 is half way up

		rev3 := h.startSecond(imageV3)
		Expect(rev3).NotTo(Equal(rev2))
		green := h.deployment(deployv1alpha1.Green)
		Expect(green.Spec.Template.Spec.Containers[0].Image).To(Equal(imageV3))
		Expect(green.Annotations[deployv1alpha1.RevisionAnnotation]).To(Equal(rev3))
		Expect(h.activeSelectorColor()).To(Equal("blue"))
		Expect(historyRecord(h.get(), rev2).Outcome).To(Equal(deployv1alpha1.OutcomeSuperseded))

		h.setReady(deployv1alpha1.Green, 2)
		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("green"))
		Expect(h.get().Status.StableRevision).To(Equal(rev3))
	})

	It("never supersedes a running migration: the new revision waits for it", func() {
		h.releaseFirst(h.release(imageV1))
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Image = imageV2 })
		h.settle()
		rev2 := h.get().Status.CurrentRevision
		h.finishJob(h.name+"-backup-"+rev2, true)
		h.settle()
		Expect(h.job(h.name + "-migrate-" + rev2)).NotTo(BeNil())

		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Image = imageV3 })
		h.settle()
		rev3 := h.get().Status.CurrentRevision
		Expect(h.job(h.name+"-backup-"+rev3)).To(BeNil(), "nothing of v3 starts while v2 migrates")
		Expect(h.condition(deployv1alpha1.ConditionReady).Reason).To(Equal(deployv1alpha1.ReasonWaitingForSafePoint))

		h.finishJob(h.name+"-migrate-"+rev2, true)
		h.settle()
		Expect(h.job(h.name + "-backup-" + rev3)).NotTo(BeNil())
	})

	It("does not hold the user's fix for a migration whose image can never run", func() {
		h.releaseFirst(h.release(imageV1))
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Image = imageV2 })
		h.settle()
		rev2 := h.get().Status.CurrentRevision
		h.finishJob(h.name+"-backup-"+rev2, true)
		h.settle()
		// No kubelet in envtest: the test writes what one says of an image without a
		// non-root USER. The Job stays active until its deadline.
		h.addJobPod(h.name+"-migrate-"+rev2, waitingStatus("CreateContainerConfigError", "container has runAsNonRoot and image will run as root"))
		h.settle()
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Reason).To(Equal(deployv1alpha1.ReasonMigrationNeverStarted))

		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Image = imageV3 })
		h.settle()
		rev3 := h.get().Status.CurrentRevision
		Expect(h.job(h.name+"-backup-"+rev3)).NotTo(BeNil(), "the fix waited for a migration that can never start")
	})

	It("freezes while paused and resumes where it was", func() {
		h.releaseFirst(h.release(imageV1))
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Spec.Image = imageV2
			r.Spec.Paused = true
		})
		h.settle()
		rev2 := h.get().Status.CurrentRevision
		Expect(h.job(h.name + "-backup-" + rev2)).To(BeNil())
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhasePaused))

		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Paused = false })
		h.settle()
		Expect(h.job(h.name + "-backup-" + rev2)).NotTo(BeNil())
	})

	It("takes scheduled backups of the serving revision with a CronJob, and removes it when the schedule is cleared", func() {
		r := h.release(imageV1)
		r.Spec.Backup.Schedule = "0 3 * * *"
		rev := h.releaseFirst(r)
		cj := &batchv1.CronJob{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: h.name + "-backup-scheduled"}, cj)).To(Succeed())
		Expect(cj.Spec.Schedule).To(Equal("0 3 * * *"))
		Expect(cj.Spec.ConcurrencyPolicy).To(Equal(batchv1.ForbidConcurrent))
		env := cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Env
		Expect(env).To(ContainElement(corev1.EnvVar{Name: "REVISION", Value: rev}))
		Expect(env).NotTo(ContainElement(HaveField("Name", "BACKUP_FILE")), "the script names each scheduled dump itself")

		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Backup.Schedule = "" })
		h.settle()
		err := k8sClient.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: h.name + "-backup-scheduled"}, cj)
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the CronJob is gone: %v", err)
	})

	It("makes no write call at all when reconciling a settled release", func() {
		h.releaseFirst(h.release(imageV1))
		h.startSecond(imageV2)
		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()
		h.clock.Step(time.Minute)
		h.settle()
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhaseSucceeded))

		before := h.client.writes.Load()
		for range 5 {
			h.rec = h.newReconciler()
			h.reconcile()
		}
		Expect(h.client.writes.Load() - before).To(BeZero())
	})
})

var _ = Describe("The release's Events", func() {
	It("tell each step of a release once: one Event per action, conditions only where they add news", func() {
		h := newHarness()
		r := h.release(imageV1)
		r.Spec.Strategy.BlueGreen.ScaleDownDelaySeconds = ptr.To[int32](30)
		h.releaseFirst(r)
		h.events()

		h.startSecond(imageV2)
		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()
		h.clock.Step(31 * time.Second)
		h.settle()
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhaseSucceeded))

		byReason := map[string]int{}
		for _, e := range h.events() {
			fields := strings.SplitN(e, " ", 3)
			byReason[fields[1]]++
			Expect(e).NotTo(ContainSubstring(deployv1alpha1.ConditionGreenAvailable+":"), "the Deploying and Promoted actions tell this")
			Expect(e).NotTo(ContainSubstring(deployv1alpha1.ConditionPromoted+":"), "the Promoted action tells this")
		}
		Expect(byReason).To(Equal(map[string]int{
			"JobCreated":                            2, // backup, migration
			deployv1alpha1.ReasonBackupCompleted:    1,
			deployv1alpha1.ReasonMigrationCompleted: 1,
			deployv1alpha1.ReasonProgressing:        1, // Ready: releasing revision ... to green
			"Deploying":                             1,
			"Promoted":                              1,
			deployv1alpha1.ReasonScaleDownPending:   1, // Ready
			"ScaledDown":                            1,
			deployv1alpha1.ReasonSucceeded:          1, // Ready
		}))
	})
})
