package controller

import (
	appsv1 "k8s.io/api/apps/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Work-queue priorities (queued through internal/queuepriority). Most passes only follow
// children that are still progressing and are queued at 0; events from the initial list
// and resyncs get controller-runtime's handler.LowPriority.
const (
	// changePriority: the pass that starts what a user asked for, a release created or
	// its spec or annotations changed. When many releases are updated at once the queue
	// also holds passes of releases already under way; each changed release's first pass
	// patches its new colour's Deployment, which every later step waits on, so it goes
	// before them.
	changePriority = 5
	// gatePriority: a pass that an event may let flip. A release whose new colour has
	// just become ready should not wait behind other releases' Deployments, Services and
	// status writes, because its flip is what users are waiting for.
	gatePriority = 10
)

// deploymentBecameSaturated: a colour's Deployment has just become fully available.
func deploymentBecameSaturated(old, new client.Object) bool {
	o, okOld := old.(*appsv1.Deployment)
	n, okNew := new.(*appsv1.Deployment)
	return okOld && okNew &&
		deploymentSaturated(n, ptr.Deref(n.Spec.Replicas, 1)) && !deploymentSaturated(o, ptr.Deref(o.Spec.Replicas, 1))
}

// replicaSetBecameSaturated: a colour's ReplicaSet has just got every pod ready and
// available, the moment before its Deployment reports the same.
func replicaSetBecameSaturated(old, new client.Object) bool {
	o, okOld := old.(*appsv1.ReplicaSet)
	n, okNew := new.(*appsv1.ReplicaSet)
	return okOld && okNew && replicaSetSaturated(n) && !replicaSetSaturated(o)
}

// deploymentReadinessMoved: a Deployment became fully available (the promotion gate may
// open) or lost a ready pod (a serving colour may have degraded).
func deploymentReadinessMoved(old, new client.Object) bool {
	return deploymentBecameSaturated(old, new) || deploymentLostReadyPods(old, new)
}

// deploymentLostReadyPods: a Deployment has fewer ready pods than before.
func deploymentLostReadyPods(old, new client.Object) bool {
	o, okOld := old.(*appsv1.Deployment)
	n, okNew := new.(*appsv1.Deployment)
	return okOld && okNew && n.Status.ReadyReplicas < o.Status.ReadyReplicas
}

// sliceReadyEndpointsMoved: an EndpointSlice gained ready endpoints (the promotion gate
// may open) or lost some (a serving colour may have degraded).
func sliceReadyEndpointsMoved(old, new client.Object) bool {
	o, okOld := old.(*discoveryv1.EndpointSlice)
	n, okNew := new.(*discoveryv1.EndpointSlice)
	return okOld && okNew && readyEndpointCount(n) != readyEndpointCount(o)
}

func readyEndpointCount(s *discoveryv1.EndpointSlice) int {
	n := 0
	for _, ep := range s.Endpoints {
		if endpointReady(ep) {
			n++
		}
	}
	return n
}
