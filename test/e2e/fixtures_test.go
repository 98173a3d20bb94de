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
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

const (
	// dbSecret and backupClaim are what every release here refers to; on kwok nothing
	// reads or mounts them, but pods are only admitted and scheduled when they exist.
	dbSecret    = "softfactory-db"
	backupClaim = "softfactory-backups"

	// outcomeLabel and the KWOK_* variables are read by the Stages in
	// config/kwok/stages-softfactory.yaml.
	outcomeLabel = "kwok.softfactory.io/outcome"
)

// createNamespace makes a fresh namespace, with Pod Security "restricted" enforced (so
// every pod the operator makes is checked by the API server), the database Secret and
// a bound backup claim. It is deleted when the container's specs are done.
func createNamespace(ctx context.Context, prefix string) string {
	GinkgoHelper()
	name := prefix + "-" + rand.String(5)
	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   name,
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
	}})).To(Succeed())
	Expect(k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: dbSecret, Namespace: name},
		StringData: map[string]string{"DATABASE_URL": "postgresql://softfactory:e2e@postgres.invalid:5432/softfactory"},
	})).To(Succeed())
	// A pre-bound volume stands in for a provisioner, which the local cluster lacks.
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-backups"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              "",
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/softfactory-backups"},
			},
			ClaimRef: &corev1.ObjectReference{Namespace: name, Name: backupClaim},
		},
	}
	Expect(k8s.Create(ctx, pv)).To(Succeed())
	Expect(k8s.Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: backupClaim, Namespace: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ptr.To(""),
			VolumeName:       pv.Name,
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			},
		},
	})).To(Succeed())
	DeferCleanup(func(ctx SpecContext) {
		if os.Getenv("E2E_KEEP_CLUSTER") != "" {
			return
		}
		_ = k8s.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
		_ = k8s.Delete(ctx, pv)
	})
	return name
}

// newRelease is the release every spec starts from: the runbook in full (backup, then
// migration, then blue/green), two replicas, and short delays so the suite stays quick.
func newRelease(namespace, name, image string) *deployv1alpha1.SoftFactoryRelease {
	return &deployv1alpha1.SoftFactoryRelease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: deployv1alpha1.SoftFactoryReleaseSpec{
			Image:    image,
			Replicas: ptr.To[int32](2),
			Database: &deployv1alpha1.DatabaseSpec{
				URLSecretRef: deployv1alpha1.SecretKeyRef{Name: dbSecret, Key: "DATABASE_URL"},
			},
			Backup: &deployv1alpha1.BackupSpec{Volume: deployv1alpha1.BackupVolume{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: backupClaim},
			}},
			Migration: &deployv1alpha1.MigrationSpec{Command: []string{"flask", "db", "upgrade"}},
			Strategy: deployv1alpha1.StrategySpec{BlueGreen: deployv1alpha1.BlueGreenSpec{
				ScaleDownDelaySeconds:   ptr.To[int32](2),
				ProgressDeadlineSeconds: 60,
			}},
		},
	}
}

// updateRelease changes a release's spec as a user's `kubectl edit` would, retrying on
// a conflict with the operator's status writes.
func updateRelease(ctx context.Context, key client.ObjectKey, change func(*deployv1alpha1.SoftFactoryRelease)) {
	GinkgoHelper()
	Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		r := &deployv1alpha1.SoftFactoryRelease{}
		if err := k8s.Get(ctx, key, r); err != nil {
			return err
		}
		change(r)
		return k8s.Update(ctx, r)
	})).To(Succeed())
}

// observedRelease is the release once the operator has written a status for its
// current spec: a status left from the previous spec says nothing about this one.
func observedRelease(ctx context.Context, key client.ObjectKey) *deployv1alpha1.SoftFactoryRelease {
	GinkgoHelper()
	r := &deployv1alpha1.SoftFactoryRelease{}
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, key, r)).To(Succeed())
		g.Expect(r.Status.ObservedGeneration).To(Equal(r.Generation),
			"the operator has not observed generation %d", r.Generation)
		g.Expect(r.Status.CurrentRevision).NotTo(BeEmpty())
	}).WithContext(ctx).Should(Succeed())
	return r
}

// waitForSuccess waits until the release's current spec serves traffic and nothing is
// left in flight (the old colour scaled down): Ready=True, reason Succeeded. A release
// that fails on the way stops the wait at once.
func waitForSuccess(ctx context.Context, key client.ObjectKey) *deployv1alpha1.SoftFactoryRelease {
	GinkgoHelper()
	r := &deployv1alpha1.SoftFactoryRelease{}
	Eventually(func(g Gomega) {
		Expect(operator.CheckRunning()).To(Succeed())
		g.Expect(k8s.Get(ctx, key, r)).To(Succeed())
		g.Expect(r.Status.ObservedGeneration).To(Equal(r.Generation),
			"the operator has not observed generation %d", r.Generation)
		degraded := meta.FindStatusCondition(r.Status.Conditions, deployv1alpha1.ConditionDegraded)
		if degraded != nil && degraded.Status == metav1.ConditionTrue {
			StopTrying(fmt.Sprintf("release %s failed: %s: %s", key, degraded.Reason, degraded.Message)).Now()
		}
		ready := meta.FindStatusCondition(r.Status.Conditions, deployv1alpha1.ConditionReady)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Status).To(Equal(metav1.ConditionTrue), "Ready: %s: %s", ready.Reason, ready.Message)
		g.Expect(r.Status.Phase).To(Equal(deployv1alpha1.PhaseSucceeded))
	}).WithContext(ctx).Should(Succeed())
	return r
}

// waitForFailure waits until the release's current spec has stopped with Degraded=True
// and the given reason.
func waitForFailure(ctx context.Context, key client.ObjectKey, reason string) *deployv1alpha1.SoftFactoryRelease {
	GinkgoHelper()
	r := &deployv1alpha1.SoftFactoryRelease{}
	Eventually(func(g Gomega) {
		Expect(operator.CheckRunning()).To(Succeed())
		g.Expect(k8s.Get(ctx, key, r)).To(Succeed())
		g.Expect(r.Status.ObservedGeneration).To(Equal(r.Generation),
			"the operator has not observed generation %d", r.Generation)
		degraded := meta.FindStatusCondition(r.Status.Conditions, deployv1alpha1.ConditionDegraded)
		g.Expect(degraded).NotTo(BeNil())
		g.Expect(degraded.Status).To(Equal(metav1.ConditionTrue), "Degraded: %s: %s", degraded.Reason, degraded.Message)
		g.Expect(degraded.Reason).To(Equal(reason), "Degraded: %s", degraded.Message)
	}).WithContext(ctx).Should(Succeed())
	return r
}

func getDeployment(ctx context.Context, namespace, name string) *appsv1.Deployment {
	GinkgoHelper()
	d := &appsv1.Deployment{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, d)).To(Succeed())
	return d
}

func getService(ctx context.Context, namespace, name string) *corev1.Service {
	GinkgoHelper()
	s := &corev1.Service{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, s)).To(Succeed())
	return s
}

// activeColour is the colour the active Service selects, read from the Service itself.
func activeColour(ctx context.Context, r *deployv1alpha1.SoftFactoryRelease) string {
	GinkgoHelper()
	return getService(ctx, r.Namespace, r.ActiveServiceName()).Spec.Selector[deployv1alpha1.LabelColor]
}

// findJob returns the Job of that name, or nil when there is none (yet).
func findJob(ctx context.Context, namespace, name string) *batchv1.Job {
	GinkgoHelper()
	j := &batchv1.Job{}
	err := k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, j)
	if apierrors.IsNotFound(err) {
		return nil
	}
	Expect(err).NotTo(HaveOccurred())
	return j
}

// jobFinished reports whether a Job has its Complete or Failed condition.
func jobFinished(j *batchv1.Job) (complete, failed bool) {
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			complete = true
		case batchv1.JobFailed:
			failed = true
		}
	}
	return complete, failed
}

// expectOneJobPerStep checks the operator's first promise across restarts and retries:
// for every revision, at most one Job of each kind (backup, migration, ...) ever existed.
// Job names derive from the revision, so it also checks the names.
func expectOneJobPerStep(ctx context.Context, r *deployv1alpha1.SoftFactoryRelease) map[string]map[string]batchv1.Job {
	GinkgoHelper()
	jobs := &batchv1.JobList{}
	Expect(k8s.List(ctx, jobs, client.InNamespace(r.Namespace),
		client.MatchingLabels{deployv1alpha1.LabelInstance: r.Name})).To(Succeed())
	byRevision := map[string]map[string]batchv1.Job{}
	for _, j := range jobs.Items {
		rev, component := j.Labels[deployv1alpha1.LabelRevision], j.Labels[deployv1alpha1.LabelComponent]
		if byRevision[rev] == nil {
			byRevision[rev] = map[string]batchv1.Job{}
		}
		other, dup := byRevision[rev][component]
		Expect(dup).To(BeFalse(), "revision %s has two %s Jobs: %s and %s", rev, component, other.Name, j.Name)
		byRevision[rev][component] = j
		switch component {
		case deployv1alpha1.ComponentBackup:
			Expect(j.Name).To(Equal(r.BackupJobName(rev)))
		case deployv1alpha1.ComponentMigration:
			Expect(j.Name).To(Equal(r.MigrationJobName(rev)))
		}
	}
	return byRevision
}

// kubectlSFRelease runs the kubectl plugin the way a user does, `kubectl sfrelease ...`:
// kubectl finds kubectl-sfrelease on PATH. It returns the combined output and the exit code.
func kubectlSFRelease(ctx context.Context, args ...string) (string, int) {
	GinkgoHelper()
	cmd := exec.CommandContext(ctx, kubectl, append([]string{"sfrelease"}, args...)...)
	cmd.Env = append(os.Environ(),
		"KUBECONFIG="+kubeconfig, "PATH="+pluginDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	code := 0
	if exitErr, ok := err.(*exec.ExitError); ok {
		code = exitErr.ExitCode()
	} else {
		Expect(err).NotTo(HaveOccurred())
	}
	GinkgoWriter.Printf("$ kubectl sfrelease %s\n%s(exit %d)\n", strings.Join(args, " "), out, code)
	return string(out), code
}

// reportOnFailure prints what a person needs to understand a failed spec: the operator's
// log, the namespace's Events in order, and the objects the release owns.
func reportOnFailure(ctx context.Context, namespace string) {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	p("\n===== operator log (last 200 lines of %s) =====\n%s\n", operator.LogPath, operator.LogTail(200))

	p("\n===== events in %s =====\n", namespace)
	events := &corev1.EventList{}
	if err := k8s.List(ctx, events, client.InNamespace(namespace)); err != nil {
		p("listing events: %v\n", err)
	}
	slices.SortStableFunc(events.Items, func(a, b corev1.Event) int { return eventTime(a).Compare(eventTime(b)) })
	for _, e := range events.Items {
		p("%s %-7s %-24s %s/%s: %s\n", eventTime(e).Format("15:04:05.000"), e.Type, e.Reason,
			e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Message)
	}

	p("\n===== releases =====\n")
	releases := &deployv1alpha1.SoftFactoryReleaseList{}
	_ = k8s.List(ctx, releases, client.InNamespace(namespace))
	for _, r := range releases.Items {
		r.ManagedFields = nil
		out, _ := yaml.Marshal(r)
		p("%s\n", out)
	}

	p("\n===== deployments =====\n")
	deployments := &appsv1.DeploymentList{}
	_ = k8s.List(ctx, deployments, client.InNamespace(namespace))
	for _, d := range deployments.Items {
		p("%s replicas=%d ready=%d updated=%d available=%d generation=%d/%d annotations=%v\n", d.Name,
			ptr.Deref(d.Spec.Replicas, 1), d.Status.ReadyReplicas, d.Status.UpdatedReplicas, d.Status.AvailableReplicas,
			d.Status.ObservedGeneration, d.Generation, d.Annotations)
	}

	p("\n===== jobs =====\n")
	jobs := &batchv1.JobList{}
	_ = k8s.List(ctx, jobs, client.InNamespace(namespace))
	for _, j := range jobs.Items {
		complete, failed := jobFinished(&j)
		p("%s uid=%s created=%s complete=%t failed=%t active=%d\n", j.Name, j.UID,
			j.CreationTimestamp.Format("15:04:05"), complete, failed, j.Status.Active)
	}

	p("\n===== services and endpoint slices =====\n")
	services := &corev1.ServiceList{}
	_ = k8s.List(ctx, services, client.InNamespace(namespace))
	for _, s := range services.Items {
		p("service %s selector=%v annotations=%v\n", s.Name, s.Spec.Selector, s.Annotations)
	}
	endpointSlices := &discoveryv1.EndpointSliceList{}
	_ = k8s.List(ctx, endpointSlices, client.InNamespace(namespace))
	for _, s := range endpointSlices.Items {
		var eps []string
		for _, ep := range s.Endpoints {
			name := "?"
			if ep.TargetRef != nil {
				name = ep.TargetRef.Name
			}
			eps = append(eps, fmt.Sprintf("%s ready=%v", name, ptr.Deref(ep.Conditions.Ready, true)))
		}
		p("slice %s (service %s): %s\n", s.Name, s.Labels[discoveryv1.LabelServiceName], strings.Join(eps, ", "))
	}

	p("\n===== pods =====\n")
	pods := &corev1.PodList{}
	_ = k8s.List(ctx, pods, client.InNamespace(namespace))
	for _, pod := range pods.Items {
		p("%s phase=%s ready=%t deleting=%t node=%s colour=%s revision=%s\n",
			pod.Name, pod.Status.Phase, podReady(&pod), pod.DeletionTimestamp != nil, pod.Spec.NodeName,
			pod.Labels[deployv1alpha1.LabelColor], pod.Labels[deployv1alpha1.LabelRevision])
	}
	AddReportEntry("state of "+namespace, b.String(), ReportEntryVisibilityFailureOrVerbose)
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	default:
		return e.CreationTimestamp.Time
	}
}
