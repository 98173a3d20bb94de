// Package queuepriority wraps controller-runtime event handlers so that chosen events
// are queued at a chosen priority on the controller's priority queue. On any other queue
// the handlers behave exactly as the ones they wrap.
package queuepriority

import (
	"context"
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]

// CreatesAndUpdates queues h's create and update events at priority; the initial list
// and resyncs keep the low priority h gives them, deletes and generic events go through
// h unchanged.
func CreatesAndUpdates(h handler.EventHandler, priority int) handler.EventHandler {
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q queue) {
			h.Create(ctx, e, At(q, priority))
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q queue) {
			h.Update(ctx, e, At(q, priority))
		},
		DeleteFunc:  h.Delete,
		GenericFunc: h.Generic,
	}
}

// UpdatesWhere queues h's update events for which pick holds at priority. Everything
// else goes through h unchanged.
func UpdatesWhere(h handler.EventHandler, priority int, pick func(old, new client.Object) bool) handler.EventHandler {
	return handler.Funcs{
		CreateFunc: h.Create,
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q queue) {
			if pick(e.ObjectOld, e.ObjectNew) {
				q = At(q, priority)
			}
			h.Update(ctx, e, q)
		},
		DeleteFunc:  h.Delete,
		GenericFunc: h.Generic,
	}
}

// At is q adding at priority unless the caller names another; q unchanged when it is
// not a priority queue.
func At(q queue, priority int) queue {
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
