package controller

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/softfactory/release-operator/internal/cacheshape"
)

func TestReplicaSetsSaturatedNeedsEveryFactTheDeploymentStatusWouldGive(t *testing.T) {
	const want = 2
	withHash := func(hash string) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{cacheshape.TemplateHashAnnotation: hash}}}
	}
	// The Deployment, as the cache holds it, once its controller has seen the new
	// template: nothing counted ready yet in its own status.
	deployment := func() *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "shop-green", Namespace: "prod", UID: types.UID("dep-uid"), Generation: 4},
			Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](want), Template: withHash("new")},
			Status:     appsv1.DeploymentStatus{ObservedGeneration: 4, Replicas: want},
		}
	}
	replicaSet := func(hash string, replicas, ready int32) appsv1.ReplicaSet {
		return appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: "shop-green-" + hash, Namespace: "prod", Generation: 3,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "shop-green",
					UID: types.UID("dep-uid"), Controller: ptr.To(true)}}},
			Spec:   appsv1.ReplicaSetSpec{Replicas: ptr.To(replicas), Template: withHash(hash)},
			Status: appsv1.ReplicaSetStatus{ObservedGeneration: 3, Replicas: replicas, ReadyReplicas: ready, AvailableReplicas: ready},
		}
	}

	cases := []struct {
		name   string
		change func(d *appsv1.Deployment, rs []appsv1.ReplicaSet) []appsv1.ReplicaSet
		want   bool
	}{
		{"the current template's ReplicaSet fully available, the old one drained", func(_ *appsv1.Deployment, rs []appsv1.ReplicaSet) []appsv1.ReplicaSet { return rs }, true},
		{"one pod not ready", func(_ *appsv1.Deployment, rs []appsv1.ReplicaSet) []appsv1.ReplicaSet {
			rs[1].Status.AvailableReplicas, rs[1].Status.ReadyReplicas = 1, 1
			return rs
		}, false},
		{"ready but not yet available (minReadySeconds)", func(_ *appsv1.Deployment, rs []appsv1.ReplicaSet) []appsv1.ReplicaSet {
			rs[1].Status.AvailableReplicas = 0
			return rs
		}, false},
		{"the old template's ReplicaSet still has a pod", func(_ *appsv1.Deployment, rs []appsv1.ReplicaSet) []appsv1.ReplicaSet {
			rs[0].Status.Replicas = 1
			return rs
		}, false},
		{"the old template's ReplicaSet is the one fully available (the new one not made yet)", func(_ *appsv1.Deployment, rs []appsv1.ReplicaSet) []appsv1.ReplicaSet {
			return []appsv1.ReplicaSet{replicaSet("old", want, want)}
		}, false},
		{"the Deployment controller has not said it has seen the spec, but made its ReplicaSet", func(d *appsv1.Deployment, rs []appsv1.ReplicaSet) []appsv1.ReplicaSet {
			d.Generation = 5
			return rs
		}, true},
		{"the current template's ReplicaSet from an earlier rollout, not yet scaled to the wanted count", func(_ *appsv1.Deployment, rs []appsv1.ReplicaSet) []appsv1.ReplicaSet {
			rs[1] = replicaSet("new", 0, 0)
			return rs
		}, false},
		{"the ReplicaSet controller has not seen its spec", func(_ *appsv1.Deployment, rs []appsv1.ReplicaSet) []appsv1.ReplicaSet {
			rs[1].Generation = 4
			return rs
		}, false},
		{"two ReplicaSets of the current template", func(_ *appsv1.Deployment, rs []appsv1.ReplicaSet) []appsv1.ReplicaSet {
			return append(rs, replicaSet("new", want, want))
		}, false},
		{"a ReplicaSet of another Deployment is ignored", func(_ *appsv1.Deployment, rs []appsv1.ReplicaSet) []appsv1.ReplicaSet {
			other := replicaSet("new", 3, 1)
			other.OwnerReferences[0].UID = "other-uid"
			return append(rs, other)
		}, true},
		{"scaled to another count than wanted", func(_ *appsv1.Deployment, rs []appsv1.ReplicaSet) []appsv1.ReplicaSet {
			rs[1] = replicaSet("new", 3, 3)
			return rs
		}, false},
		{"a Deployment not from the cache (no template hash)", func(d *appsv1.Deployment, rs []appsv1.ReplicaSet) []appsv1.ReplicaSet {
			d.Spec.Template = corev1.PodTemplateSpec{}
			return rs
		}, false},
	}
	for _, tc := range cases {
		d := deployment()
		rs := tc.change(d, []appsv1.ReplicaSet{replicaSet("old", 0, 0), replicaSet("new", want, want)})
		if got := replicaSetsSaturated(d, rs, want); got != tc.want {
			t.Errorf("%s: replicaSetsSaturated = %v, want %v", tc.name, got, tc.want)
		}
		if deploymentSaturated(d, want) {
			t.Errorf("%s: the Deployment's own status must not be saturated in this test", tc.name)
		}
	}
}
