package controller

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	appsv1 "k8s.io/api/apps/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	"github.com/softfactory/release-operator/internal/queuepriority"
)

var _ = Describe("Work-queue priority", func() {
	owner := metav1.OwnerReference{
		APIVersion: deployv1alpha1.GroupVersion.String(), Kind: "SoftFactoryRelease", Name: "shop", UID: "1234",
		Controller: new(true),
	}
	deployment := func(rv string, ready int32) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "shop-green", Namespace: "prod", ResourceVersion: rv, Generation: 2,
				OwnerReferences: []metav1.OwnerReference{owner}},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2)},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 2,
				ReadyReplicas: ready, AvailableReplicas: ready},
		}
	}
	// queued fires the update through the controller's handler for Deployments into a
	// real priority queue and returns what comes out, with its priority.
	queued := func(h handler.EventHandler, old, new any) (reconcile.Request, int) {
		q := priorityqueue.New[reconcile.Request]("test")
		DeferCleanup(q.ShutDown)
		e := event.UpdateEvent{}
		switch o := old.(type) {
		case *appsv1.Deployment:
			e.ObjectOld, e.ObjectNew = o, new.(*appsv1.Deployment)
		case *discoveryv1.EndpointSlice:
			e.ObjectOld, e.ObjectNew = o, new.(*discoveryv1.EndpointSlice)
		}
		h.Update(ctx, e, q)
		Expect(q.Len()).To(Equal(1))
		item, priority, _ := q.GetWithPriority()
		return item, priority
	}
	shop := reconcile.Request{NamespacedName: client.ObjectKey{Namespace: "prod", Name: "shop"}}

	It("puts the pass of a release whose new colour just became available before the rest", func() {
		h := queuepriority.UpdatesWhere(handler.EnqueueRequestForOwner(k8sClient.Scheme(), k8sClient.RESTMapper(),
			&deployv1alpha1.SoftFactoryRelease{}, handler.OnlyControllerOwner()), gatePriority, deploymentReadinessMoved)

		item, priority := queued(h, deployment("1", 1), deployment("2", 2))
		Expect(item).To(Equal(shop))
		Expect(priority).To(Equal(gatePriority))

		_, priority = queued(h, deployment("1", 0), deployment("2", 1))
		Expect(priority).To(BeZero(), "one pod of two ready opens no gate")
		_, priority = queued(h, deployment("2", 2), deployment("3", 2))
		Expect(priority).To(BeZero(), "already available before this event")

		By("and a colour that lost a ready pod: a serving colour degrading stops or promotes the release")
		item, priority = queued(h, deployment("3", 2), deployment("4", 1))
		Expect(item).To(Equal(shop))
		Expect(priority).To(Equal(gatePriority))
	})

	It("does the same for an EndpointSlice that gained or lost ready endpoints", func() {
		slice := func(rv string, ready ...bool) *discoveryv1.EndpointSlice {
			s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "shop-preview-x1", Namespace: "prod", ResourceVersion: rv,
				Labels: map[string]string{deployv1alpha1.LabelManagedBy: deployv1alpha1.ManagedBy, deployv1alpha1.LabelInstance: "shop"}}}
			for _, r := range ready {
				s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Conditions: discoveryv1.EndpointConditions{Ready: new(r)}})
			}
			return s
		}
		h := queuepriority.UpdatesWhere(handler.EnqueueRequestsFromMapFunc(releaseOfLabelledObject), gatePriority, sliceReadyEndpointsMoved)

		item, priority := queued(h, slice("1", true, false), slice("2", true, true))
		Expect(item).To(Equal(shop))
		Expect(priority).To(Equal(gatePriority))
		_, priority = queued(h, slice("1", true, true), slice("2", true, false))
		Expect(priority).To(Equal(gatePriority), "the active Service's slice losing a ready endpoint: the serving colour degrading")
		_, priority = queued(h, slice("1", true, true), slice("2", true, true))
		Expect(priority).To(BeZero(), "no change in readiness")
	})

	It("puts a user's change to a release before passes that only follow children, and after flips", func() {
		release := func(rv string, generation int64) *deployv1alpha1.SoftFactoryRelease {
			return &deployv1alpha1.SoftFactoryRelease{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "prod",
				ResourceVersion: rv, Generation: generation}}
		}
		q := priorityqueue.New[reconcile.Request]("test")
		DeferCleanup(q.ShutDown)
		following := reconcile.Request{NamespacedName: client.ObjectKey{Namespace: "prod", Name: "cart"}}
		flipping := reconcile.Request{NamespacedName: client.ObjectKey{Namespace: "prod", Name: "till"}}
		q.Add(following)

		h := queuepriority.CreatesAndUpdates(&handler.EnqueueRequestForObject{}, changePriority)
		h.Update(ctx, event.UpdateEvent{ObjectOld: release("1", 1), ObjectNew: release("2", 2)}, q)
		q.AddWithOpts(priorityqueue.AddOpts{Priority: new(gatePriority)}, flipping)

		order := make([]reconcile.Request, 0, 3)
		priorities := make([]int, 0, 3)
		for range 3 {
			item, priority, _ := q.GetWithPriority()
			order = append(order, item)
			priorities = append(priorities, priority)
			q.Done(item)
		}
		Expect(order).To(Equal([]reconcile.Request{flipping, shop, following}))
		Expect(priorities).To(Equal([]int{gatePriority, changePriority, 0}))

		By("a release listed when the operator starts stays at low priority")
		h.Create(ctx, event.CreateEvent{Object: release("3", 2), IsInInitialList: true}, q)
		_, priority, _ := q.GetWithPriority()
		Expect(priority).To(Equal(handler.LowPriority))
	})
})
