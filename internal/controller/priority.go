package controller

import (
	"context"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Work-queue priorities. Most passes only follow children that are still progressing
// and are queued at 0; events from the initial list and resyncs get controller-runtime's
// handler.LowPriority.
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

// prioritiseReleaseChanges queues h's create and update events at changePriority; the
// initial list and resyncs keep the low priority h gives them.
func prioritiseReleaseChanges(h handler.EventHandler) handler.EventHandler {
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			h.Create(ctx, e, atPriority(q, changePriority))
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			h.Update(ctx, e, atPriority(q, changePriority))
		},
		DeleteFunc:  h.Delete,
		GenericFunc: h.Generic,
	}
}

// prioritiseGateEvents wraps h so that an update event for which opensGate holds is
// queued at gatePriority. Everything else goes through h unchanged.
func prioritiseGateEvents(h handler.EventHandler, opensGate func(old, new client.Object) bool) handler.EventHandler {
	return handler.Funcs{
		CreateFunc: h.Create,
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if opensGate(e.ObjectOld, e.ObjectNew) {
				q = atPriority(q, gatePriority)
			}
			h.Update(ctx, e, q)
		},
		DeleteFunc:  h.Delete,
		GenericFunc: h.Generic,
	}
}

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

// sliceGainedReadyEndpoints: an EndpointSlice lists more ready endpoints than before.
func sliceGainedReadyEndpoints(old, new client.Object) bool {
	o, okOld := old.(*discoveryv1.EndpointSlice)
	n, okNew := new.(*discoveryv1.EndpointSlice)
	return okOld && okNew && readyEndpointCount(n) > readyEndpointCount(o)
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

// atPriority is q adding at priority unless the caller names another; q unchanged when
// it is not a priority queue.
func atPriority(q workqueue.TypedRateLimitingInterface[reconcile.Request], priority int) workqueue.TypedRateLimitingInterface[reconcile.Request] {
	if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok {
		return withPriority{PriorityQueue: pq, priority: priority}
	}
	return q
}

// withPriority adds every item at one priority unless the caller names another.
type withPriority struct {
	priorityqueue.PriorityQueue[reconcile.Request]
	priority int
}

func (w withPriority) Add(item reconcile.Request) {
	w.AddWithOpts(priorityqueue.AddOpts{}, item)
}

func (w withPriority) AddAfter(item reconcile.Request, after time.Duration) {
	w.AddWithOpts(priorityqueue.AddOpts{After: after}, item)
}

func (w withPriority) AddRateLimited(item reconcile.Request) {
	w.AddWithOpts(priorityqueue.AddOpts{RateLimited: true}, item)
}

func (w withPriority) AddWithOpts(o priorityqueue.AddOpts, items ...reconcile.Request) {
	if o.Priority == nil {
		o.Priority = ptr.To(w.priority)
	}
	w.PriorityQueue.AddWithOpts(o, items...)
}
