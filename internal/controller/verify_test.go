package controller

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

func TestReplicaSetsSaturatedNeedsEveryFactTheDeploymentStatusWouldGive(t *testing.T) {
	const want = 2
	// The Deployment as its controller leaves it early in a rollout: it has seen the spec,
	// made revision 7 its current ReplicaSet and created that one's pods, none ready yet.
	deployment := func() *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "shop-green", Namespace: "prod", UID: types.UID("dep-uid"), Generation: 4,
				Annotations: map[string]string{deploymentRevisionAnnotation: "7", deployv1alpha1.RevisionAnnotation: "rev-b"}},
			Spec:   appsv1.DeploymentSpec{Replicas: ptr.To[int32](want)},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 4, Replicas: want, UpdatedReplicas: want},
		}
	}
	replicaSet := func(revision, ours string, replicas, ready int32) appsv1.ReplicaSet {
		return appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: "shop-green-" + revision, Namespace: "prod", Generation: 3,
				Annotations: map[string]string{deploymentRevisionAnnotation: revision},
				Labels:      map[string]string{deployv1alpha1.LabelRevision: ours},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "shop-green",
					UID: types.UID("dep-uid"), Controller: ptr.To(true)}}},
			Spec:   appsv1.ReplicaSetSpec{Replicas: ptr.To(replicas)},
			Status: appsv1.ReplicaSetStatus{ObservedGeneration: 3, Replicas: replicas, ReadyReplicas: ready, AvailableReplicas: ready},
		}
	}
	oldDrained := replicaSet("6", "rev-a", 0, 0)

	cases := []struct {
		name   string
		change func(d *appsv1.Deployment, rs []appsv1.ReplicaSet) []appsv1.ReplicaSet
		want   bool
	}{
		{"current ReplicaSet fully available, the old one drained", func(_ *appsv1.Deployment, rs []appsv1.ReplicaSet) []appsv1.ReplicaSet { return rs }, true},
		{"one pod not ready", func(_ *appsv1.Deployment, rs []appsv1.ReplicaSet) []appsv1.ReplicaSet {
			rs[1].Status.AvailableReplicas, rs[1].Status.ReadyReplicas = 1, 1
			return rs
		}, false},
		{"the old ReplicaSet still has a pod", func(_ *appsv1.Deployment, rs []appsv1.ReplicaSet) []appsv1.ReplicaSet {
			rs[0].Status.Replicas = 1
			return rs
		}, false},
		{"the Deployment controller has not seen the spec", func(d *appsv1.Deployment, rs []appsv1.ReplicaSet) []appsv1.ReplicaSet {
			d.Generation = 5
			return rs
		}, false},
		{"the Deployment controller has not counted the new pods", func(d *appsv1.Deployment, rs []appsv1.ReplicaSet) []appsv1.ReplicaSet {
			d.Status.UpdatedReplicas = 0
			return rs
		}, false},
		{"the current revision's ReplicaSet is not in the cache yet", func(_ *appsv1.Deployment, rs []appsv1.ReplicaSet) []appsv1.ReplicaSet {
			return rs[:1]
		}, false},
		{"the ReplicaSet controller has not seen its spec", func(_ *appsv1.Deployment, rs []appsv1.ReplicaSet) []appsv1.ReplicaSet {
			rs[1].Generation = 4
			return rs
		}, false},
		{"the current ReplicaSet runs another revision of ours", func(_ *appsv1.Deployment, rs []appsv1.ReplicaSet) []appsv1.ReplicaSet {
			rs[1].Labels[deployv1alpha1.LabelRevision] = "rev-a"
			return rs
		}, false},
		{"two ReplicaSets claim the current revision", func(_ *appsv1.Deployment, rs []appsv1.ReplicaSet) []appsv1.ReplicaSet {
			return append(rs, replicaSet("7", "rev-b", want, want))
		}, false},
		{"a ReplicaSet of another Deployment is ignored", func(_ *appsv1.Deployment, rs []appsv1.ReplicaSet) []appsv1.ReplicaSet {
			other := replicaSet("7", "rev-b", 3, 1)
			other.OwnerReferences[0].UID = "other-uid"
			return append(rs, other)
		}, true},
		{"scaled to another count than wanted", func(_ *appsv1.Deployment, rs []appsv1.ReplicaSet) []appsv1.ReplicaSet {
			rs[1] = replicaSet("7", "rev-b", 3, 3)
			return rs
		}, false},
	}
	for _, tc := range cases {
		d := deployment()
		rs := tc.change(d, []appsv1.ReplicaSet{oldDrained, replicaSet("7", "rev-b", want, want)})
		if got := replicaSetsSaturated(d, rs, want); got != tc.want {
			t.Errorf("%s: replicaSetsSaturated = %v, want %v", tc.name, got, tc.want)
		}
		if deploymentSaturated(d, want) {
			t.Errorf("%s: the Deployment's own status must not be saturated in this test", tc.name)
		}
	}
}
