package controller

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
		h.rec.statusWrites.delivered(h.get())
		_, held := h.rec.statusWrites.byRelease.Load(client.ObjectKeyFromObject(before))
		Expect(held).To(BeFalse())
		lagging.snapshot = nil
		h.settle()
		Expect(h.jobs(deployv1alpha1.ComponentBackup)).To(HaveLen(1))
		Expect(h.jobs(deployv1alpha1.ComponentMigration)).To(HaveLen(1))
		Expect(h.events()).To(BeEmpty())
	})
})

var _ = Describe("The copies of written releases", func() {
	It("are dropped as soon as the cache holds the write, however the news arrives", func() {
		var w statusWrites
		held := func() int {
			n := 0
			w.byRelease.Range(func(_, _ any) bool { n++; return true })
			return n
		}
		written := func(name, rv string) *deployv1alpha1.SoftFactoryRelease {
			r := &deployv1alpha1.SoftFactoryRelease{}
			r.Namespace, r.Name, r.ResourceVersion = "prod", name, rv
			r.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "softfactory-release-operator"}}
			return r
		}

		w.wrote("1", written("a", "2"))
		Expect(w.newest(written("a", "1")).ResourceVersion).To(Equal("2"), "the cache still holds the replaced version")
		v, _ := w.byRelease.Load(client.ObjectKey{Namespace: "prod", Name: "a"})
		Expect(v.(*statusWrite).written.ManagedFields).To(BeEmpty())
		w.delivered(written("a", "1"))
		Expect(held()).To(Equal(1), "a resync of the replaced version drops nothing")
		w.delivered(written("a", "2"))
		Expect(held()).To(BeZero(), "the informer delivered the write")

		w.wrote("5", written("b", "6"))
		Expect(w.newest(written("b", "6")).ResourceVersion).To(Equal("6"))
		Expect(held()).To(BeZero(), "a pass found the write in the cache")

		By("a cache two writes behind")
		w.wrote("10", written("c", "11"))
		Expect(w.newest(written("c", "10")).ResourceVersion).To(Equal("11"))
		w.wrote("11", written("c", "12")) // the pass acted on 11 and wrote 12
		w.delivered(written("c", "10"))
		Expect(w.newest(written("c", "10")).ResourceVersion).To(Equal("12"), "10 is older than both writes")
		w.delivered(written("c", "11"))
		Expect(w.newest(written("c", "11")).ResourceVersion).To(Equal("12"))
		w.delivered(written("c", "12"))
		Expect(held()).To(BeZero())
	})
})
