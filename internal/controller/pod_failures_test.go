package controller

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// addGreenPod creates a pod of the green Deployment as its ReplicaSet would (the
// template's labels) and writes its status as a kubelet or scheduler would: neither runs
// in envtest.
func (h *harness) addGreenPod(status corev1.PodStatus) {
	GinkgoHelper()
	d := h.deployment(deployv1alpha1.Green)
	Expect(d).NotTo(BeNil())
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: d.Name + "-", Namespace: h.ns, Labels: d.Spec.Template.Labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "api", Image: "example"}}},
	}
	Expect(k8sClient.Create(ctx, pod)).To(Succeed())
	pod.Status = status
	Expect(k8sClient.Status().Update(ctx, pod)).To(Succeed())
}

// setReplicaFailure writes the ReplicaFailure condition the Deployment controller sets
// when its ReplicaSet cannot create pods (envtest runs neither controller).
func (h *harness) setReplicaFailure(c deployv1alpha1.Color, message string) {
	GinkgoHelper()
	d := h.deployment(c)
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Conditions: []appsv1.DeploymentCondition{{
		Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate", Message: message,
	}}}
	Expect(k8sClient.Status().Update(ctx, d)).To(Succeed())
}

const (
	runsAsRoot  = "container has runAsNonRoot and image will run as root (pod: \"softfactory-green-7d9c-x2k4q_prod(1b2c)\", container: api)"
	pullBackOff = "Back-off pulling image \"registry.example.com/softfactory:9.9.9\": ErrImagePull: not found"
	rejected    = "pods \"softfactory-green-7d9c-x2k4q\" is forbidden: violates PodSecurity \"restricted:latest\": hostPath volumes (volume \"data\")"
	overQuota   = "pods \"softfactory-green-7d9c-x2k4q\" is forbidden: exceeded quota: compute, requested: cpu=500m, used: cpu=2, limited: cpu=2"
)

var _ = Describe("Pods that cannot start", func() {
	var h *harness
	BeforeEach(func() {
		h = newHarness()
		h.rec.Client = &labelledOnlyClient{countingClient: h.client}
		h.releaseFirst(h.release(imageV1))
		h.startSecond(imageV2)
		Expect(h.deployment(deployv1alpha1.Green)).NotTo(BeNil())
	})

	expectStoppedAtOnce := func(words string) {
		GinkgoHelper()
		c := h.condition(deployv1alpha1.ConditionDegraded)
		Expect(c.Status).To(Equal(metav1.ConditionTrue))
		Expect(c.Reason).To(Equal(deployv1alpha1.ReasonPodsCannotStart))
		Expect(c.Message).To(ContainSubstring(words), "in the pod's own words")
		Expect(h.activeSelectorColor()).To(Equal("blue"), "blue keeps serving")
		Expect(*h.deployment(deployv1alpha1.Green).Spec.Replicas).To(BeZero(), "rollback.onFailure scales the failed colour down")
		Expect(*h.deployment(deployv1alpha1.Blue).Spec.Replicas).To(Equal(int32(2)))
	}

	It("stop the release at once when the image runs as root, in the pod's own words", func() {
		h.addGreenPod(waitingStatus("CreateContainerConfigError", runsAsRoot))
		h.settle() // on the same clock: seconds, not progressDeadlineSeconds
		expectStoppedAtOnce("container has runAsNonRoot and image will run as root")
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Message).To(ContainSubstring("non-root USER"), "and what to do")
	})

	It("stop the release at once on an invalid image name", func() {
		h.addGreenPod(waitingStatus("InvalidImageName", "Failed to apply default image tag \"Registry/X:1\": couldn't parse image name"))
		h.settle()
		expectStoppedAtOnce("InvalidImageName")
	})

	It("stop the release at once when Pod Security refuses the pod spec", func() {
		h.setReplicaFailure(deployv1alpha1.Green, rejected)
		h.settle()
		expectStoppedAtOnce("violates PodSecurity")
	})

	DescribeTable("keep waiting, with the reason shown, on what can heal by itself",
		func(write func(), words string) {
			write()
			h.settle()
			for _, t := range []string{deployv1alpha1.ConditionGreenAvailable, deployv1alpha1.ConditionReady} {
				c := h.condition(t)
				Expect(c.Reason).To(Equal(deployv1alpha1.ReasonProgressing), t)
				Expect(c.Message).To(ContainSubstring(words), t)
			}
			Expect(h.condition(deployv1alpha1.ConditionDegraded).Status).To(Equal(metav1.ConditionFalse))
			Expect(*h.deployment(deployv1alpha1.Green).Spec.Replicas).To(Equal(int32(2)))
		},
		Entry("an image pull back-off", func() { h.addGreenPod(waitingStatus("ImagePullBackOff", pullBackOff)) }, pullBackOff),
		Entry("a missing Secret in envFrom", func() {
			h.addGreenPod(waitingStatus("CreateContainerConfigError", "secret \"softfactory-env\" not found"))
		}, "secret \"softfactory-env\" not found"),
		Entry("an unschedulable pod", func() {
			h.addGreenPod(corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
				Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
				Message: "0/3 nodes are available: 3 Insufficient memory.",
			}}})
		}, "0/3 nodes are available: 3 Insufficient memory."),
		Entry("a quota", func() { h.setReplicaFailure(deployv1alpha1.Green, overQuota) }, "exceeded quota"),
	)
})

var _ = Describe("A migration pod that cannot start", func() {
	It("fails the release at once and never starts a restore, even once its Job fails", func() {
		h := newHarness()
		r := h.release(imageV1)
		r.Spec.Rollback.RestoreDatabase = true
		h.create(r)
		h.settle()
		rev := h.get().Status.CurrentRevision
		h.finishJob(h.name+"-backup-"+rev, true)
		h.settle()
		migration := h.name + "-migrate-" + rev
		h.addJobPod(migration, waitingStatus("InvalidImageName", "couldn't parse image name \"Registry/X:1\""))
		h.settle()
		c := h.condition(deployv1alpha1.ConditionDegraded)
		Expect(c.Reason).To(Equal(deployv1alpha1.ReasonMigrationNeverStarted))
		Expect(c.Message).To(ContainSubstring("couldn't parse image name"))
		Expect(h.jobs(deployv1alpha1.ComponentRestore)).To(BeEmpty())

		By("the Job failing later, at its deadline (written by the test: no Job controller runs)")
		h.finishJob(migration, false)
		h.settle()
		Expect(h.jobs(deployv1alpha1.ComponentRestore)).To(BeEmpty(), "nothing ran, so nothing is restored")
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Reason).To(Equal(deployv1alpha1.ReasonMigrationNeverStarted))
	})

	It("is shown while it may still heal (an image pull back-off), and the release waits", func() {
		h := newHarness()
		h.create(h.release(imageV1))
		h.settle()
		rev := h.get().Status.CurrentRevision
		h.finishJob(h.name+"-backup-"+rev, true)
		h.settle()
		h.addJobPod(h.name+"-migrate-"+rev, waitingStatus("ImagePullBackOff", pullBackOff))
		h.settle()
		c := h.condition(deployv1alpha1.ConditionMigrationSucceeded)
		Expect(c.Reason).To(Equal(deployv1alpha1.ReasonMigrationRunning))
		Expect(c.Message).To(ContainSubstring(pullBackOff))
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Status).To(Equal(metav1.ConditionFalse))
	})
})

var _ = Describe("A Job whose pod is never created", func() {
	It("says so within seconds, pointing at the Job's Events", func() {
		h := newHarness()
		h.create(h.release(imageV1))
		h.settle()
		backup := h.job(h.name + "-backup-" + h.get().Status.CurrentRevision)
		Expect(backup).NotTo(BeNil())
		Eventually(func() error { return h.client.Get(ctx, client.ObjectKeyFromObject(backup), &batchv1.Job{}) }).
			Should(Succeed(), "the pass reads the Job from the cache")
		// The grace counts from the Job's creationTimestamp, the API server's clock: the
		// fake clock is set to it once the Job exists (setting it before the create ran
		// it behind by however long the create took, seconds on a cold cache).
		h.clock.SetTime(backup.CreationTimestamp.Time)
		res := h.settle()
		Expect(res.RequeueAfter).To(BeNumerically("~", jobNoPodGrace, time.Second), "the release looks again after the grace")
		h.clock.Step(res.RequeueAfter)
		h.settle()
		c := h.condition(deployv1alpha1.ConditionBackupSucceeded)
		Expect(c.Message).To(ContainSubstring("no pod exists"))
		Expect(c.Message).To(ContainSubstring("kubectl describe job"))
	})
})

var _ = Describe("A backup that cannot write its dump", func() {
	It("says Permission denied, and what to do about the volume", func() {
		h := newHarness()
		h.create(h.release(imageV1))
		h.settle()
		backupJob := h.name + "-backup-" + h.get().Status.CurrentRevision
		// The pod's terminated state as the kubelet reports it, with the script's last
		// words from /dev/termination-log (internal/backup/lib.sh fail); written by the test.
		status := terminatedStatus("Error", 1, h.clock.Now())
		status.ContainerStatuses[0].State.Terminated.Message =
			"backup.sh: error: pg_dump: error: could not open output file \"/backups/softfactory.partial\": Permission denied"
		h.addJobPod(backupJob, status)
		h.finishJob(backupJob, false)
		h.settle()
		for _, t := range []string{deployv1alpha1.ConditionBackupSucceeded, deployv1alpha1.ConditionDegraded} {
			c := h.condition(t)
			Expect(c.Reason).To(Equal(deployv1alpha1.ReasonBackupFailed), t)
			Expect(c.Message).To(ContainSubstring("Permission denied"), t)
			Expect(c.Message).To(ContainSubstring("not writable by the backup user (uid 70)"), t)
			Expect(c.Message).To(ContainSubstring("fsGroup"), t)
		}
		Expect(h.jobs(deployv1alpha1.ComponentMigration)).To(BeEmpty())
	})
})

var _ = Describe("A smoke-test pod that cannot start", func() {
	It("stops the release at once, in the pod's own words, instead of waiting out the Job's deadline", func() {
		h := newHarness()
		h.releaseFirst(h.release(imageV1))
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Spec.Strategy.BlueGreen.SmokeTest = &deployv1alpha1.SmokeTestSpec{
				Image: "registry.example.com/softfactory-smoke:root", Command: []string{"pytest", "tests/smoke"},
			}
		})
		rev := h.startSecond(imageV2)
		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()
		smoke := h.job(h.get().SmokeTestJobName(rev))
		Expect(smoke).NotTo(BeNil(), "the smoke test runs once green is available")

		// Its own image runs as root: the kubelet says so (written by the test: envtest
		// runs no kubelet), and the Job stays active until its deadline.
		h.addJobPod(smoke.Name, waitingStatus("CreateContainerConfigError", runsAsRoot))
		h.settle() // on the same clock: no deadline has passed
		c := h.condition(deployv1alpha1.ConditionDegraded)
		Expect(c.Status).To(Equal(metav1.ConditionTrue))
		Expect(c.Reason).To(Equal(deployv1alpha1.ReasonSmokeTestFailed))
		Expect(c.Message).To(ContainSubstring("cannot start its pod"))
		Expect(c.Message).To(ContainSubstring("container has runAsNonRoot and image will run as root"), "in the pod's own words")
		Expect(c.Message).To(ContainSubstring("non-root USER"), "and what to do")
		Expect(h.activeSelectorColor()).To(Equal("blue"), "traffic never moved")
		Expect(*h.deployment(deployv1alpha1.Green).Spec.Replicas).To(BeZero(), "rollback.onFailure scales the failed colour down")
	})
})
