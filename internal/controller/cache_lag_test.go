package controller

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// laggingClient plays an informer cache that has not yet delivered the operator's own
// last status write: while lagging, it returns a snapshot of the release taken before
// that write. envtest's direct client never lags, so the lag is faked here.
type laggingClient struct {
	*countingClient
	snapshot *deployv1alpha1.SoftFactoryRelease
}

func (c *laggingClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if rel, ok := obj.(*deployv1alpha1.SoftFactoryRelease); ok && c.snapshot != nil {
		c.snapshot.DeepCopyInto(rel)
		return nil
	}
	return c.countingClient.Get(ctx, key, obj, opts...)
}

var _ = Describe("Reading the release from a lagging cache", func() {
	It("waits for the cache to deliver its own last status write instead of acting on the older release", func() {
		h := newHarness()
		h.create(h.release(imageV1))
		before := h.get()

		lagging := &laggingClient{countingClient: h.client}
		h.rec.Client = lagging
		h.reconcile()
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhaseBackingUp), "the first pass wrote its status")
		Expect(h.events()).NotTo(BeEmpty())

		By("seeing the release as it was before that write: no write, no Event, a quick look again")
		lagging.snapshot = before
		writes := h.client.writes.Load()
		res := h.reconcile()
		Expect(res.RequeueAfter).To(Equal(cacheCatchUpDelay))
		Expect(h.client.writes.Load()).To(Equal(writes))
		Expect(h.events()).To(BeEmpty(), "a pass on the older release would announce the same transitions again")

		By("going on once the cache has caught up, with nothing announced twice")
		lagging.snapshot = nil
		h.settle()
		Expect(h.jobs(deployv1alpha1.ComponentBackup)).To(HaveLen(1))
		Expect(h.events()).To(BeEmpty())
	})
})
