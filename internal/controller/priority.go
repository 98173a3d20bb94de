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

// gatePriority is the work-queue priority of a pass that an event may let flip. When
// many releases move at once, the queue holds passes that create Deployments, point
// Services and write status; a release whose new colour has just become ready should
// not wait behind them, because its flip is what users are waiting for. (Events from the
// initial list and resyncs get controller-runtime's handler.LowPriority; the rest 0.)
const gatePriority = 10

// prioritiseGateEvents wraps h so that an update event for which opensGate holds is
// queued at gatePriority. Everything else goes through h unchanged.
func prioritiseGateEvents(h handler.EventHandler, opensGate func(old, new client.Object) bool) handler.EventHandler {
	return handler.Funcs{
		CreateFunc: h.Create,
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok && opensGate(e.ObjectOld, e.ObjectNew) {
				q = withPriority{PriorityQueue: pq, priority: gatePriority}
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
