package cacheshape

import (
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

func sameMemory(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }

// childMeta is the metadata of a child of a release's blue colour as the API server
// returns it.
func childMeta(release, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: name, Namespace: "team-a", GenerateName: release + "-blue-7d9c5b-",
		UID: types.UID("uid-of-" + name), ResourceVersion: "4711",
		Labels: map[string]string{
			deployv1alpha1.LabelName: deployv1alpha1.AppName, deployv1alpha1.LabelInstance: release,
			deployv1alpha1.LabelComponent: deployv1alpha1.ComponentApp, deployv1alpha1.LabelManagedBy: deployv1alpha1.ManagedBy,
			deployv1alpha1.LabelColor: "blue", appsv1.DefaultDeploymentUniqueLabelKey: "7d9c5b",
		},
		Annotations: map[string]string{deployv1alpha1.RevisionAnnotation: "3"},
		OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "apps/v1", Kind: "ReplicaSet", Name: release + "-blue-7d9c5b",
			UID: types.UID("2f1e7d0c-6b0a-4c57-9d0e-" + release), Controller: new(true),
		}},
	}
}

// servingPod is a ready API pod as the cache's transforms receive it: decoded from the
// API server's protobuf, every string its own copy.
func servingPod(t testing.TB, release, name string) *corev1.Pod {
	t.Helper()
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}
	p := &corev1.Pod{
		ObjectMeta: childMeta(release, name),
		Spec: corev1.PodSpec{
			NodeName:   "kwok-node-3",
			Containers: []corev1.Container{{Name: "api", Image: "registry.example.com/softfactory/api:1.4.2"}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
			Name: "api", Image: "registry.example.com/softfactory/api:1.4.2", Ready: true, State: running,
			ImageID: "registry.example.com/softfactory/api@sha256:0123", ContainerID: "containerd://" + name,
		}}},
	}
	for _, c := range []corev1.PodConditionType{"PodReadyToStartContainers", corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady, corev1.PodScheduled} {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: c, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()})
	}
	return decoded(t, p)
}

// decoded is obj after a protobuf round trip: a fresh copy of every string.
func decoded[T interface {
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}](t testing.TB, obj T) T {
	t.Helper()
	data, err := obj.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	out := reflect.New(reflect.TypeOf(obj).Elem()).Interface().(T)
	if err := out.Unmarshal(data); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestInternSharesWhatCachedObjectsRepeat(t *testing.T) {
	a, b := servingPod(t, "shop", "shop-blue-7d9c5b-aaaaa"), servingPod(t, "shop", "shop-blue-7d9c5b-bbbbb")
	if sameMemory(a.Namespace, b.Namespace) {
		t.Fatal("the decoded pods already share their namespace: the test would prove nothing")
	}
	for _, p := range []*corev1.Pod{a, b} {
		if _, err := Intern(p); err != nil {
			t.Fatal(err)
		}
	}
	shared := map[string][2]string{
		"namespace":        {a.Namespace, b.Namespace},
		"a label value":    {a.Labels[deployv1alpha1.LabelManagedBy], b.Labels[deployv1alpha1.LabelManagedBy]},
		"an owner's UID":   {string(a.OwnerReferences[0].UID), string(b.OwnerReferences[0].UID)},
		"an owner's kind":  {a.OwnerReferences[0].Kind, b.OwnerReferences[0].Kind},
		"the image":        {a.Spec.Containers[0].Image, b.Status.ContainerStatuses[0].Image},
		"the node":         {a.Spec.NodeName, b.Spec.NodeName},
		"a condition type": {string(a.Status.Conditions[2].Type), string(b.Status.Conditions[2].Type)},
		"the phase":        {string(a.Status.Phase), string(b.Status.Phase)},
	}
	for what, pair := range shared {
		if !sameMemory(pair[0], pair[1]) {
			t.Errorf("%s is not shared between the two cached pods", what)
		}
	}
	for key := range a.Labels {
		var other string
		for k := range b.Labels {
			if k == key {
				other = k
			}
		}
		if !sameMemory(key, other) {
			t.Errorf("label key %q is not shared", key)
		}
	}
}

// A release's status and its Jobs name the same backup file: the cache keeps one copy.
func TestInternSharesAReleasesRecordsWithItsJobs(t *testing.T) {
	const file = "shop-b98ae941a6-20261202T163216Z.dump"
	job := decoded(t, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{
		Name: "shop-backup-b98ae941a6", Namespace: "team-a",
		Annotations: map[string]string{deployv1alpha1.BackupFileAnnotation: file},
	}})
	rel := &deployv1alpha1.SoftFactoryRelease{Status: deployv1alpha1.SoftFactoryReleaseStatus{
		LastBackup: &deployv1alpha1.BackupRecord{JobName: strings.Clone(job.Name), File: strings.Clone(file)},
		History:    []deployv1alpha1.ReleaseRecord{{BackupFile: strings.Clone(file)}},
	}}
	_, _ = Intern(job)
	_, _ = Intern(rel)
	if !sameMemory(rel.Status.LastBackup.File, job.Annotations[deployv1alpha1.BackupFileAnnotation]) ||
		!sameMemory(rel.Status.History[0].BackupFile, rel.Status.LastBackup.File) {
		t.Error("the backup file's name is kept more than once")
	}
	if !sameMemory(rel.Status.LastBackup.JobName, job.Name) {
		t.Error("the Job's name is kept twice, in the Job and in the release's status")
	}
}

// Every kind the cache holds keeps every value: interning changes where a string's bytes
// live, never what it says.
func TestInternKeepsEveryValue(t *testing.T) {
	cond := func(ty string) metav1.Condition {
		return metav1.Condition{Type: ty, Status: metav1.ConditionTrue, Reason: "Done", Message: "it is done"}
	}
	cases := map[string]any{
		"pod": servingPod(t, "shop", "shop-blue-7d9c5b-aaaaa"),
		"replicaset": decoded(t, &appsv1.ReplicaSet{
			ObjectMeta: childMeta("shop", "shop-blue-7d9c5b"),
			Spec: appsv1.ReplicaSetSpec{
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}, MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: metav1.LabelSelectorOpIn, Values: []string{"x", "y"}}}},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{TemplateHashAnnotation: "abc"}}},
			},
			Status: appsv1.ReplicaSetStatus{Conditions: []appsv1.ReplicaSetCondition{{Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionFalse, Reason: "r", Message: strings.Repeat("m", 300)}}},
		}),
		"deployment": decoded(t, &appsv1.Deployment{
			ObjectMeta: childMeta("shop", "shop-blue"),
			Spec: appsv1.DeploymentSpec{
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}},
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "api", Image: "img:1"}}}},
			},
			Status: appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"}}},
		}),
		"job": decoded(t, &batchv1.Job{
			ObjectMeta: childMeta("shop", "shop-backup-3"),
			Spec:       batchv1.JobSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/controller-uid": "u"}}},
			Status:     batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}},
		}),
		"service": decoded(t, &corev1.Service{
			ObjectMeta: childMeta("shop", "shop"),
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{deployv1alpha1.LabelColor: "green"}, Type: corev1.ServiceTypeClusterIP,
				ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10"}, IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
				SessionAffinity: corev1.ServiceAffinityNone,
				Ports:           []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromString("http"), AppProtocol: new("http")}},
			},
		}),
		"endpointslice": decoded(t, &discoveryv1.EndpointSlice{
			ObjectMeta:  childMeta("shop", "shop-abcde"),
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints: []discoveryv1.Endpoint{{
				Addresses: []string{"10.244.0.5"}, NodeName: new("kwok-node-3"), Zone: new("z"),
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "team-a", Name: "shop-blue-7d9c5b-aaaaa"},
			}},
			Ports: []discoveryv1.EndpointPort{{Name: new("http"), Protocol: new(corev1.ProtocolTCP), Port: new(int32(8080))}},
		}),
		"cronjob": decoded(t, &batchv1.CronJob{ObjectMeta: childMeta("shop", "shop-backup")}),
		"release": &deployv1alpha1.SoftFactoryRelease{
			ObjectMeta: childMeta("shop", "shop"),
			Spec:       deployv1alpha1.SoftFactoryReleaseSpec{Image: "img:2"},
			Status: deployv1alpha1.SoftFactoryReleaseStatus{
				Phase: deployv1alpha1.PhaseSucceeded, ActiveColor: "green", ActiveImage: "img:2", CurrentRevision: "r2", StableRevision: "r2",
				Conditions:    []metav1.Condition{cond("Ready"), cond("Progressing")},
				LastBackup:    &deployv1alpha1.BackupRecord{JobName: "shop-backup-r2", File: "shop-r2.dump", Revision: "r2"},
				LastMigration: &deployv1alpha1.MigrationRecord{JobName: "shop-migrate-r2", Revision: "r2"},
				History:       []deployv1alpha1.ReleaseRecord{{Revision: "r2", Image: "img:2", Color: "green", BackupFile: "shop-r2.dump", Outcome: deployv1alpha1.OutcomePromoted, Reason: "Promoted"}},
				Revisions: []deployv1alpha1.RevisionRecord{{
					Revision:  "r2",
					Backup:    &deployv1alpha1.StepRecord{JobName: "shop-backup-r2", State: deployv1alpha1.StepSucceeded, File: "shop-r2.dump"},
					Migration: &deployv1alpha1.StepRecord{JobName: "shop-migrate-r2", State: deployv1alpha1.StepFailed, PodReason: "ImagePullBackOff", Message: "m"},
					Restore:   &deployv1alpha1.RestoreRecord{Phase: deployv1alpha1.RestoreDone, ServingColor: "blue", Job: &deployv1alpha1.StepRecord{JobName: "shop-restore-r2"}},
					Retries:   []deployv1alpha1.RetryRecord{{Request: "r2", Reason: "Retried"}},
				}},
			},
		},
	}
	for kind, obj := range cases {
		before := reflect.ValueOf(obj).MethodByName("DeepCopyObject").Call(nil)[0].Interface()
		after, err := Intern(obj)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if after != obj {
			t.Errorf("%s: Intern returned another object; a transform must return the one it shaped", kind)
		}
		if !reflect.DeepEqual(before, after) {
			t.Errorf("%s changed:\nbefore %+v\nafter  %+v", kind, before, after)
		}
	}
	// A tombstone, or a kind the cache does not shape, passes as it is.
	tomb := struct{ Key string }{"team-a/shop"}
	if out, err := Intern(tomb); err != nil || out != tomb {
		t.Errorf("Intern(tombstone) = %v, %v", out, err)
	}
}

func TestInternLeavesLongStrings(t *testing.T) {
	long := strings.Repeat("x", internMaxLen+1)
	a, b := servingPod(t, "shop", "a"), servingPod(t, "shop", "b")
	a.Status.Message, b.Status.Message = strings.Clone(long), strings.Clone(long)
	_, _ = Intern(a)
	_, _ = Intern(b)
	if sameMemory(a.Status.Message, b.Status.Message) {
		t.Error("a message longer than internMaxLen was interned")
	}
}

func TestInternTableForgetsValuesNoLongerUsed(t *testing.T) {
	tab := newInternTable()
	first := tab.of(strings.Clone("first"))
	for i := range 2 * internGeneration {
		tab.of(fmt.Sprint("value-", i))
	}
	if n := len(tab.recent) + len(tab.older); n > 2*internGeneration {
		t.Fatalf("the table holds %d strings, more than two generations of %d", n, internGeneration)
	}
	again := tab.of(strings.Clone("first"))
	if again != first {
		t.Fatal("a value changed")
	}
	if sameMemory(first, again) {
		t.Error(`the table still holds "first", unused for two generations`)
	}
}

func TestInternTableKeepsValuesInUse(t *testing.T) {
	tab := newInternTable()
	hot := tab.of(strings.Clone("bench"))
	for i := range 3 * internGeneration {
		tab.of(fmt.Sprint("value-", i))
		if i%1000 == 0 && !sameMemory(tab.of(strings.Clone("bench")), hot) {
			t.Fatalf("after %d other values, a value looked up all along got a new copy", i)
		}
	}
}

// BenchmarkCachedPodBytes reports the heap one cached serving pod holds after the
// cache's transforms, with and without Intern (retained-B/pod; 2,000 pods, as at 1,000
// releases).
func BenchmarkCachedPodBytes(b *testing.B) {
	const pods = 2000
	for _, interned := range []bool{false, true} {
		b.Run(fmt.Sprintf("interned=%t", interned), func(b *testing.B) {
			var perPod float64
			for range b.N {
				table = newInternTable()
				kept := make([]*corev1.Pod, 0, pods)
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				for i := range pods {
					release := fmt.Sprintf("shop-%04d", i/2) // two pods per release
					obj, _ := TrimPod(servingPod(b, release, fmt.Sprintf("%s-blue-7d9c5b-%05d", release, i)))
					if interned {
						obj, _ = Intern(obj)
					}
					kept = append(kept, obj.(*corev1.Pod))
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perPod = float64(after.HeapAlloc-before.HeapAlloc) / pods
				runtime.KeepAlive(kept)
			}
			b.ReportMetric(perPod, "retained-B/pod")
		})
	}
}
