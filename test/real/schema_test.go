//go:build real && linux

package real

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// appV3 renames items.name to items.title: migration 0003 expands, 0004 contracts.
const appV3 = imageRegistry + "softfactory-app:3.0.0"

// The README's "renaming a column" example, for real: the sample app's items.name
// becomes items.title over one release with an expand/contract migration, under a load
// that writes items and reads them back through the whole of it. Version 2 serves while
// the expand step (0003: title added, kept in sync by a trigger, backfilled) runs;
// traffic flips to version 3; the contract step (0004: the trigger and name dropped)
// runs only once version 2's pods are gone. Then re-applying version 2's spec is refused:
// its column is gone.
var _ = Describe("A column renamed in two steps on a real cluster", Ordered, func() {
	var (
		db  *database
		key client.ObjectKey
		url string
		// v2 is version 2's spec as first released, and v2Revision its revision: the
		// spec re-applied after the contract.
		v2         *deployv1alpha1.SoftFactoryReleaseSpec
		v2Revision string
	)

	BeforeAll(func(ctx SpecContext) {
		ns := createNamespace(ctx, "schema")
		db = createDatabase(ctx, ns)
		key = client.ObjectKey{Namespace: ns, Name: "softfactory"}
	})
	AfterEach(func(ctx SpecContext) { reportOnFailure(ctx, key.Namespace) })

	It("renames items.name to items.title: expand before 3.0.0, contract after 2.0.0 is gone, no failed request",
		func(ctx SpecContext) {
			By("releasing 2.0.0: items.name")
			Expect(k8s.Create(ctx, newRelease(db, key.Name, appV2))).To(Succeed())
			r := waitForSuccess(ctx, key)
			v2, v2Revision = r.Spec.DeepCopy(), r.Status.CurrentRevision
			url = serviceURL(ctx, key.Namespace, r.ActiveServiceName())
			expectVersion(ctx, url, "2.0.0")
			Expect(db.psql(ctx, "SELECT version_num FROM alembic_version")).To(Equal("0002"))
			db.psql(ctx, "INSERT INTO items (name) VALUES ('anvil'), ('rocket'), ('magnet')")
			oldColor := r.Status.ActiveColor

			w := watchOldColor(ctx, r, oldColor)
			load := startLoad("rename a column: expand, flip, contract", url, "-items")
			By("releasing 3.0.0: expand (flask db upgrade 0003) before it starts, contract (0004) after 2.0.0 is gone")
			updateRelease(ctx, key, func(r *deployv1alpha1.SoftFactoryRelease) {
				r.Spec.Image = appV3
				r.Spec.Migration.Command = []string{"flask", "db", "upgrade", "0003"}
				r.Spec.Migration.Contract = &deployv1alpha1.ContractSpec{Command: []string{"flask", "db", "upgrade", "0004"}}
			})
			r = waitForSuccess(ctx, key)
			revision := r.Status.CurrentRevision
			r = waitForContract(ctx, key)
			// The load goes on through the checks below (each a kubectl exec): traffic after
			// the contract is part of "throughout".
			expectVersion(ctx, url, "3.0.0")

			By("the contract Job started only once no pod of 2.0.0's colour was left")
			contractJob := r.ContractJobName(revision, 1)
			jobs := jobsOf(ctx, r, revision)
			Expect(jobs[deployv1alpha1.ComponentContract]).To(HaveLen(1), "contract Jobs of revision %s", revision)
			Expect(jobs[deployv1alpha1.ComponentContract][0].Name).To(Equal(contractJob))
			Expect(jobs[deployv1alpha1.ComponentContractBackup]).To(HaveLen(1), "backups before the contract of %s", revision)
			seen, leftAtContract, lastGone := w.contractSeen()
			Expect(seen).NotTo(BeZero(), "the contract Job was never seen")
			Expect(leftAtContract).To(BeEmpty(), "pods of the old colour %s left when the contract Job appeared", oldColor)
			Expect(lastGone).NotTo(BeZero(), "no pod of the old colour %s was seen going away", oldColor)
			Expect(lastGone).To(BeTemporally("<", seen))
			promoted := meta.FindStatusCondition(r.Status.Conditions, deployv1alpha1.ConditionPromoted)
			line := fmt.Sprintf("contract step: the flip at %s, the last pod of the old colour gone %s later, "+
				"the contract Job seen %s after that (its backup first)",
				promoted.LastTransitionTime.UTC().Format(time.TimeOnly),
				lastGone.Sub(promoted.LastTransitionTime.Time).Round(time.Second), seen.Sub(lastGone).Round(time.Millisecond))
			AddReportEntry("contract timing", line)
			GinkgoWriter.Println(line)
			recordTrafficReport(line)
			old := &appsv1.Deployment{}
			Expect(k8s.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: r.DeploymentName(oldColor)}, old)).To(Succeed())
			Expect(*old.Spec.Replicas).To(BeZero())
			record := revisionRecord(r, revision)
			Expect(record.ContractBackup).NotTo(BeNil())
			Expect(record.ContractBackup.State).To(Equal(deployv1alpha1.StepSucceeded))
			Expect(record.Contract.StartedAt).NotTo(BeNil())
			Expect(record.ContractBackup.FinishedAt).NotTo(BeNil())
			Expect(record.Contract.StartedAt.Time).NotTo(BeTemporally("<", record.ContractBackup.FinishedAt.Time),
				"the contract started before its backup finished")
			By("the dump before the contract is on the backup volume, with items.name in it")
			dump := filepath.Base(record.ContractBackup.File)
			info, err := os.Stat(filepath.Join(db.backupDir, dump))
			Expect(err).NotTo(HaveOccurred(), "the pre-contract dump %s is not on the backup volume", dump)
			Expect(info.Size()).To(BeNumerically(">", 0))
			Expect(db.exec(ctx, "pg_restore", "--schema-only", "--table=items", "-f", "-", "/backups/"+dump)).To(
				MatchRegexp(`(?s)CREATE TABLE public\.items \(.*\bname text NOT NULL.*\btitle text`))

			By("the schema: title NOT NULL, no name, no trigger; Alembic at 0004")
			Expect(db.psql(ctx, "SELECT version_num FROM alembic_version")).To(Equal("0004"))
			Expect(db.psql(ctx, "SELECT string_agg(column_name || ':' || is_nullable, ',' ORDER BY column_name) "+
				"FROM information_schema.columns WHERE table_name = 'items'")).To(Equal("created_at:NO,id:NO,status:NO,title:NO"))
			Expect(db.psql(ctx, "SELECT count(*) FROM pg_trigger WHERE tgname = 'items_sync_name_title'")).To(Equal("0"))

			rep := load.Stop()
			expectNoFailedRequest(rep)
			By("both versions wrote and read items, and every item is there with its title")
			writers := map[string]int{}
			for _, it := range rep.Written {
				writers[it.Version]++
			}
			AddReportEntry("items written, by version", fmt.Sprint(writers))
			GinkgoWriter.Printf("Requests by kind %v; items written by version %v\n", rep.Kinds, writers)
			Expect(writers).To(HaveKey("2.0.0"), "version 2 wrote no item during the release")
			Expect(writers).To(HaveKey("3.0.0"), "version 3 wrote no item during the release")
			Expect(rep.Kinds["read-item"]).To(BeNumerically(">", 0))
			GinkgoWriter.Printf("Items read back, by writer -> reader version: %v\n", rep.ItemReads)
			Expect(rep.ItemReads).To(HaveKey("2.0.0 -> 3.0.0"), "3.0.0 never read an item 2.0.0 wrote")
			Expect(rep.Versions).To(HaveKey("2.0.0"))
			Expect(rep.VersionChanges[len(rep.VersionChanges)-1].Version).To(Equal("3.0.0"))
			titles := map[string]string{}
			for row := range strings.SplitSeq(db.psql(ctx, "SELECT id || E'\\t' || title FROM items"), "\n") {
				id, title, _ := strings.Cut(row, "\t")
				titles[id] = title
			}
			var missing []string
			for _, it := range rep.Written {
				if got, ok := titles[fmt.Sprint(it.ID)]; !ok || got != it.Label {
					missing = append(missing, fmt.Sprintf("%d %q (by %s): %q", it.ID, it.Label, it.Version, got))
				}
			}
			Expect(missing).To(BeEmpty(), "items written during the release and not found with their title")
			Expect(db.psql(ctx, "SELECT count(*) FROM items WHERE title IN ('anvil', 'rocket', 'magnet')")).To(Equal("3"),
				"the rows written before the release, backfilled")
		})

	It("refuses to roll back to 2.0.0 once the contract dropped its column, and keeps serving 3.0.0",
		func(ctx SpecContext) {
			r := mustGet(ctx, key)
			serving := activeSelector(ctx, r)
			load := startLoad("rollback past the contract refused", url, "-items")
			updateRelease(ctx, key, func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec = *v2.DeepCopy() })
			r = waitForDegraded(ctx, key, deployv1alpha1.ReasonSchemaContracted, time.Minute)
			GinkgoWriter.Printf("Conditions:\n%s", conditionsText(r))
			By("it stays refused: no Job, no scale-up of 2.0.0's colour, traffic on 3.0.0, under load")
			Consistently(func(g Gomega) {
				r := mustGet(ctx, key)
				degraded := meta.FindStatusCondition(r.Status.Conditions, deployv1alpha1.ConditionDegraded)
				g.Expect(degraded.Reason).To(Equal(deployv1alpha1.ReasonSchemaContracted))
				g.Expect(activeSelector(ctx, r)).To(Equal(serving))
				g.Expect(jobsOf(ctx, r, v2Revision)[deployv1alpha1.ComponentMigration]).To(HaveLen(1),
					"migration Jobs of %s (one is its first release's)", v2Revision)
				d := &appsv1.Deployment{}
				g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: key.Namespace,
					Name: r.DeploymentName(deployv1alpha1.Color(serving).Other())}, d)).To(Succeed())
				g.Expect(*d.Spec.Replicas).To(BeZero())
			}).WithContext(ctx).WithTimeout(15 * time.Second).WithPolling(time.Second).Should(Succeed())
			expectVersion(ctx, url, "3.0.0")
			rep := load.Stop()
			expectNoFailedRequest(rep)
			Expect(rep.Versions).To(HaveLen(1))
			Expect(rep.Versions).To(HaveKey("3.0.0"))
			Expect(activeSelector(ctx, r)).To(Equal(serving))
			Expect(db.psql(ctx, "SELECT version_num FROM alembic_version")).To(Equal("0004"))
		})
})

// waitForContract waits until the current revision's contract step completed; a failed
// release or contract stops the wait at once.
func waitForContract(ctx SpecContext, key client.ObjectKey) *deployv1alpha1.SoftFactoryRelease {
	GinkgoHelper()
	r := &deployv1alpha1.SoftFactoryRelease{}
	Eventually(func(g Gomega) {
		Expect(operator.CheckRunning()).To(Succeed())
		g.Expect(k8s.Get(ctx, key, r)).To(Succeed())
		degraded := meta.FindStatusCondition(r.Status.Conditions, deployv1alpha1.ConditionDegraded)
		c := meta.FindStatusCondition(r.Status.Conditions, deployv1alpha1.ConditionContractSucceeded)
		if degraded != nil && degraded.Status == metav1.ConditionTrue ||
			c != nil && c.Reason == deployv1alpha1.ReasonContractFailed {
			StopTrying(fmt.Sprintf("release %s failed: %s", key, conditionsText(r))).Now()
		}
		g.Expect(c).NotTo(BeNil(), "no ContractSucceeded condition:\n%s", conditionsText(r))
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), conditionsText(r))
		rec := revisionRecord(r, r.Status.CurrentRevision)
		g.Expect(rec.Contract).NotTo(BeNil())
		g.Expect(rec.Contract.State).To(Equal(deployv1alpha1.StepSucceeded))
	}).WithContext(ctx).Should(Succeed())
	return r
}

// revisionRecord is the status record of a revision (an empty one when there is none).
func revisionRecord(r *deployv1alpha1.SoftFactoryRelease, revision string) deployv1alpha1.RevisionRecord {
	for _, rec := range r.Status.Revisions {
		if rec.Revision == revision {
			return rec
		}
	}
	return deployv1alpha1.RevisionRecord{}
}

// oldColorWatch follows, through the API server as a user's watcher would, the app pods
// of one colour and the release's Jobs, and notes what was left of that colour when the
// contract Job first appeared.
type oldColorWatch struct {
	name, color string

	mu sync.Mutex
	// live are the colour's pods that exist, by name.
	live map[string]bool
	// lastGone is when the last of its pods was seen deleted.
	lastGone time.Time
	// contractAt is when the contract Job was first seen; leftAtContract the colour's
	// pods that still existed then.
	contractAt     time.Time
	leftAtContract []string
}

func watchOldColor(ctx SpecContext, r *deployv1alpha1.SoftFactoryRelease, color deployv1alpha1.Color) *oldColorWatch {
	GinkgoHelper()
	w := &oldColorWatch{name: r.Name, color: string(color), live: map[string]bool{}}
	factory := informers.NewSharedInformerFactoryWithOptions(clientset, 0, informers.WithNamespace(r.Namespace))
	pods := factory.Core().V1().Pods().Informer()
	jobs := factory.Batch().V1().Jobs().Informer()
	_, err := pods.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.onPod(o, false) },
		UpdateFunc: func(_, o any) { w.onPod(o, false) },
		DeleteFunc: func(o any) { w.onPod(o, true) },
	})
	Expect(err).NotTo(HaveOccurred())
	_, err = jobs.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: w.onJob})
	Expect(err).NotTo(HaveOccurred())
	stop := make(chan struct{})
	DeferCleanup(func() { close(stop) })
	factory.Start(stop)
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		Expect(ok).To(BeTrue(), "the %v informer did not sync", typ)
	}
	return w
}

func (w *oldColorWatch) onPod(obj any, deleted bool) {
	if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok || p.Labels[deployv1alpha1.LabelComponent] != deployv1alpha1.ComponentApp ||
		p.Labels[deployv1alpha1.LabelColor] != w.color {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if deleted {
		delete(w.live, p.Name)
		w.lastGone = time.Now()
		return
	}
	w.live[p.Name] = true
}

func (w *oldColorWatch) onJob(obj any) {
	j, ok := obj.(*batchv1.Job)
	if !ok || j.Labels[deployv1alpha1.LabelInstance] != w.name ||
		j.Labels[deployv1alpha1.LabelComponent] != deployv1alpha1.ComponentContract {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.contractAt.IsZero() {
		w.contractAt = time.Now()
		w.leftAtContract = slices.Sorted(maps.Keys(w.live))
	}
}

// contractSeen says when the contract Job was first seen, which pods of the colour were
// left then, and when the last of them was seen gone.
func (w *oldColorWatch) contractSeen() (seen time.Time, left []string, lastGone time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.contractAt, w.leftAtContract, w.lastGone
}
