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
	It("acts on its own last written status, not on the older release the cache still holds", func() {
		h := newHarness()
		h.create(h.release(imageV1))
		before := h.get()

		// From here on the cache holds the release as created, whatever is written.
		lagging := &laggingClient{countingClient: h.client, snapshot: before}
		h.rec.Client = lagging
		h.reconcile()
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhaseBackingUp), "the first pass wrote its status")
		Expect(h.events()).NotTo(BeEmpty())

		By("seeing the release as it was before that write: nothing written or announced again")
		writes := h.client.writes.Load()
		h.reconcile()
		Expect(h.client.writes.Load()).To(Equal(writes), "a pass on the older release would write the same status again (and conflict)")
		Expect(h.events()).To(BeEmpty(), "a pass on the older release would announce the same transitions again")

		By("moving on from the written status while the cache lags two writes behind")
		rev := h.get().Status.CurrentRevision
		h.finishJob(h.name+"-backup-"+rev, true)
		h.reconcile()
		Expect(h.job(h.name + "-migrate-" + rev)).NotTo(BeNil())
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhaseMigrating))
		Expect(h.events()).To(ContainElement(ContainSubstring("BackupCompleted")))

		h.reconcile()
		Expect(h.events()).To(BeEmpty(), "nothing announced twice from the release two writes back")

		By("the informer delivering the newest version: the written copy is dropped")
		h.rec.statusWrites.Delivered(h.get())
		Expect(h.rec.statusWrites.Held()).To(BeZero())
		lagging.snapshot = nil
		h.settle()
		Expect(h.jobs(deployv1alpha1.ComponentBackup)).To(HaveLen(1))
		Expect(h.jobs(deployv1alpha1.ComponentMigration)).To(HaveLen(1))
		Expect(h.events()).To(BeEmpty())
	})
})
