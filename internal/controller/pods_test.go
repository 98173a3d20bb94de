package controller

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	"github.com/softfactory/release-operator/internal/cacheshape"
)

// addJobPod creates a pod of the named Job as the Job controller would (its labels, a
// controller reference to the Job) and writes status as a kubelet would: no kubelet runs
// in envtest.
func (h *harness) addJobPod(jobName string, status corev1.PodStatus) {
	GinkgoHelper()
	job := h.job(jobName)
	Expect(job).NotTo(BeNil(), "Job %s", jobName)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: jobName + "-",
			Namespace:    h.ns,
			Labels:       job.Spec.Template.Labels,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID, Controller: new(true),
			}},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "example"}}},
	}
	Expect(k8sClient.Create(ctx, pod)).To(Succeed())
	pod.Status = status
	Expect(k8sClient.Status().Update(ctx, pod)).To(Succeed())
}

func waitingStatus(reason, message string) corev1.PodStatus {
	return corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
		Name: "main", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}},
	}}}
}

func terminatedStatus(reason string, exitCode int32, startedAt time.Time) corev1.PodStatus {
	return corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{{
		Name: "main", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			Reason: reason, ExitCode: exitCode, StartedAt: metav1.NewTime(startedAt),
		}},
	}}}
}

var _ = Describe("The release's pods", func() {
	started := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

	DescribeTable("containerStarted tells a container that ran from one that never did",
		func(status corev1.PodStatus, want bool) {
			Expect(containerStarted(&corev1.Pod{Status: status})).To(Equal(want))
		},
		Entry("no status yet", corev1.PodStatus{Phase: corev1.PodPending}, false),
		Entry("image pull back-off", waitingStatus("ImagePullBackOff", "Back-off pulling image"), false),
		Entry("runs as root under runAsNonRoot", waitingStatus("CreateContainerConfigError", "container has runAsNonRoot and image will run as root"), false),
		Entry("could not be started", terminatedStatus("StartError", 128, time.Unix(0, 0)), false),
		Entry("exited with an error", terminatedStatus("Error", 1, started), true),
		Entry("running", corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
			Name: "main", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(started)}},
		}}}, true),
		Entry("waiting again after a run that failed", corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
			Name:                 "main",
			State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1, StartedAt: metav1.NewTime(started)}},
		}}}, true),
	)

	It("wakes the release when a pod is deleted: a restore waits for the last writer to be gone", func() {
		// The Deployment says 0 replicas while its pods still terminate; the pod's own
		// deletion is the only event left when the last one goes.
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}}
		Expect(podEvents.Delete(event.DeleteEvent{Object: pod})).To(BeTrue())
		Expect(podEvents.Create(event.CreateEvent{Object: pod})).To(BeFalse(), "a pod with no state yet says nothing")
		Expect(podEvents.Update(event.UpdateEvent{ObjectOld: pod, ObjectNew: pod})).To(BeFalse())
	})

	It("keeps in the cache only what a pass reads, so a trimmed pod still answers containerStarted", func() {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{"a": "b"}, Annotations: map[string]string{"big": "x"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "i", Command: []string{"/bin/sh", "-c", "long script"}}}},
			Status:     terminatedStatus("Error", 1, started),
		}
		pod.Status.Conditions = []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady"},
			{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: "0/3 nodes are available"},
		}
		out, err := cacheshape.TrimPod(pod)
		Expect(err).NotTo(HaveOccurred())
		trimmed := out.(*corev1.Pod)
		Expect(trimmed.Annotations).To(BeNil())
		Expect(trimmed.Spec.Containers[0].Command).To(BeNil())
		Expect(trimmed.Labels).To(HaveKeyWithValue("a", "b"))
		Expect(containerStarted(trimmed)).To(BeTrue())
		Expect(trimmed.Status.Conditions).To(ConsistOf(HaveField("Type", corev1.PodScheduled)), "only the condition a pass reads")
		Expect(podWaitingReason(trimmed)).To(Equal("Unschedulable: 0/3 nodes are available"))
	})

	It("finds a Job's pods and a colour's pods when a pass observes the release", func() {
		h := newHarness()
		h.create(h.release(imageV1))
		h.settle()
		rev := h.get().Status.CurrentRevision
		backupJob := h.name + "-backup-" + rev
		h.addJobPod(backupJob, waitingStatus("ImagePullBackOff", "Back-off pulling image"))
		h.addJobPod(backupJob, terminatedStatus("Error", 1, started))

		s, err := h.rec.observe(ctx, h.get())
		Expect(err).NotTo(HaveOccurred())
		pods := s.podsOfJob(s.jobs[backupJob])
		Expect(pods).To(HaveLen(2))
		Expect(containerStarted(pods[0]) || containerStarted(pods[1])).To(BeTrue())
		Expect(s.podsOfColor(deployv1alpha1.Blue)).To(BeEmpty())
		Expect(s.podsOfJob(nil)).To(BeEmpty())
	})
})
