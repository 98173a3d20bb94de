//go:build real && linux

package real

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// One release of the sample app goes through the runbook's good and bad days in order,
// on one database, as a team would rehearse them: each spec starts from where the last
// one left the release, and a load generator inside the network namespace sends
// requests to the active Service through each of them.
var _ = Describe("The sample app on a real cluster", Ordered, ContinueOnFailure, func() {
	var (
		db  *database
		key client.ObjectKey
		// url is the active Service's ClusterIP: reachable inside the namespace only.
		url string
	)

	BeforeAll(func(ctx SpecContext) {
		ns := createNamespace(ctx, "real")
		db = createDatabase(ctx, ns)
		key = client.ObjectKey{Namespace: ns, Name: "softfactory"}
	})
	AfterEach(func(ctx SpecContext) { reportOnFailure(ctx, key.Namespace) })

	It("makes a first release, then upgrades with a backup, a real migration and no failed request", func(ctx SpecContext) {
		By("releasing 1.0.0: backup of the empty database, migration 0001, blue")
		Expect(k8s.Create(ctx, newRelease(db, key.Name, appV1))).To(Succeed())
		r := waitForSuccess(ctx, key)
		url = serviceURL(ctx, key.Namespace, r.ActiveServiceName())
		expectVersion(ctx, url, "1.0.0")
		Expect(db.psql(ctx, "SELECT version_num FROM alembic_version")).To(Equal("0001"))

		By("writing rows that the upgrade must keep and backfill")
		db.psql(ctx, "INSERT INTO items (name) VALUES ('anvil'), ('rocket'), ('magnet')")
		before := r.Status.ActiveColor

		load := startLoad("first release: upgrade 1.0.0 to 2.0.0", url)
		By("upgrading to 2.0.0 (migration 0002 adds items.status and backfills it)")
		updateRelease(ctx, key, func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Image = appV2 })
		r = waitForSuccess(ctx, key)
		rep := load.Stop()
		expectNoFailedRequest(rep)

		By("traffic moved: answers come from 2.0.0, and the last change of version was to it")
		Expect(r.Status.ActiveColor).NotTo(Equal(before))
		Expect(r.Status.ActiveImage).To(Equal(appV2))
		expectVersion(ctx, url, "2.0.0")
		Expect(rep.Versions).To(HaveKey("2.0.0"))
		Expect(rep.VersionChanges).NotTo(BeEmpty())
		Expect(rep.VersionChanges[len(rep.VersionChanges)-1].Version).To(Equal("2.0.0"))

		By("the old colour is scaled to zero, its Deployment kept for a rollback")
		old := &appsv1.Deployment{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: r.DeploymentName(before)}, old)).To(Succeed())
		Expect(*old.Spec.Replicas).To(BeZero())

		By("the dump is on the backup volume, and pg_restore --list reads it")
		Expect(r.Status.LastBackup).NotTo(BeNil())
		file := r.Status.LastBackup.File
		info, err := os.Stat(filepath.Join(db.backupDir, filepath.Base(file)))
		Expect(err).NotTo(HaveOccurred(), "the dump %s is not on the backup volume", file)
		Expect(info.Size()).To(BeNumerically(">", 0))
		list := db.exec(ctx, "pg_restore", "--list", "/backups/"+filepath.Base(file))
		Expect(list).To(ContainSubstring("TABLE DATA public items"))
		Expect(list).To(ContainSubstring("TABLE DATA public alembic_version"))

		By("the migration changed the schema and backfilled the rows written before it")
		Expect(db.psql(ctx, "SELECT version_num FROM alembic_version")).To(Equal("0002"))
		Expect(db.psql(ctx, "SELECT is_nullable FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'status'")).To(Equal("NO"))
		Expect(db.psql(ctx, "SELECT count(*) FROM items WHERE name IN ('anvil', 'rocket', 'magnet') AND status = 'active'")).To(Equal("3"))
	})

	It("keeps the serving colour answering when a migration fails for real", func(ctx SpecContext) {
		serving := activeSelector(ctx, mustGet(ctx, key))
		load := startLoad("migration fails (Alembic error)", url)
		updateRelease(ctx, key, func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Image = appBroken })
		r := waitForDegraded(ctx, key, deployv1alpha1.ReasonMigrationFailed, 4*time.Minute)
		// A few seconds more of traffic after the failure, as a user would keep watching.
		time.Sleep(5 * time.Second)
		rep := load.Stop()
		expectNoFailedRequest(rep)

		Expect(activeSelector(ctx, r)).To(Equal(serving), "traffic moved after a failed migration")
		Expect(rep.Versions).To(HaveLen(1))
		Expect(rep.Versions).To(HaveKey("2.0.0"))
		By("the failed upgrade changed nothing: Alembic rolled it back")
		Expect(db.psql(ctx, "SELECT version_num FROM alembic_version")).To(Equal("0002"))
		Expect(r.Status.ActiveImage).To(Equal(appV2))
	})

	It("runs each Job once when the operator is killed during the backup and during the migration", func(ctx SpecContext) {
		load := startLoad("operator killed in backup and in migration", url)
		updateRelease(ctx, key, func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Spec.Image = appV2
			r.Spec.Env = []corev1.EnvVar{{Name: "RELEASE_NOTE", Value: "restarts"}}
		})
		var r *deployv1alpha1.SoftFactoryRelease
		Eventually(func(g Gomega) {
			r = mustGet(ctx, key)
			g.Expect(r.Status.ObservedGeneration).To(Equal(r.Generation))
			g.Expect(r.Status.CurrentRevision).NotTo(Equal(r.Status.StableRevision))
		}).WithContext(ctx).Should(Succeed())
		revision := r.Status.CurrentRevision

		By("killing the operator while the backup Job runs")
		Eventually(func(g Gomega) {
			j := findJob(ctx, key.Namespace, r.BackupJobName(revision))
			g.Expect(j).NotTo(BeNil())
			g.Expect(jobFinished(j)).To(BeFalse())
		}).WithContext(ctx).WithPolling(100 * time.Millisecond).Should(Succeed())
		Expect(operator.Kill()).To(Succeed())
		time.Sleep(3 * time.Second)
		Expect(operator.Start()).To(Succeed())

		By("killing the operator while the migration Job runs")
		Eventually(func(g Gomega) {
			j := findJob(ctx, key.Namespace, r.MigrationJobName(revision))
			g.Expect(j).NotTo(BeNil())
			g.Expect(jobFinished(j)).To(BeFalse())
		}).WithContext(ctx).WithPolling(100 * time.Millisecond).Should(Succeed())
		Expect(operator.Kill()).To(Succeed())
		time.Sleep(3 * time.Second)
		Expect(operator.Start()).To(Succeed())

		r = waitForSuccess(ctx, key)
		rep := load.Stop()
		expectNoFailedRequest(rep)
		jobs := jobsOf(ctx, r, revision)
		Expect(jobs[deployv1alpha1.ComponentBackup]).To(HaveLen(1), "backup Jobs of revision %s", revision)
		Expect(jobs[deployv1alpha1.ComponentMigration]).To(HaveLen(1), "migration Jobs of revision %s", revision)
		Expect(r.Status.CurrentRevision).To(Equal(revision))
		Expect(r.Status.StableRevision).To(Equal(revision))
	})

	It("never moves traffic to a version that cannot reach the database, and aborts at the deadline", func(ctx SpecContext) {
		r := mustGet(ctx, key)
		serving := activeSelector(ctx, r)
		load := startLoad("new version cannot reach the database", url)
		updateRelease(ctx, key, func(r *deployv1alpha1.SoftFactoryRelease) {
			// The app's libpq is told to insist on a verified TLS connection with a root
			// certificate that is not there, so no connection to the database ever
			// succeeds and /health fails; the migration overrides it (a later entry of the
			// same name wins), since it must run for the release to get to the new pods.
			// (DATABASE_URL itself may not differ: one database for backup, migration and
			// app is refused at apply time otherwise.)
			r.Spec.Env = []corev1.EnvVar{
				{Name: "PGSSLMODE", Value: "verify-full"},
				{Name: "PGSSLROOTCERT", Value: "/nonexistent/root.crt"},
			}
			r.Spec.Migration.Env = []corev1.EnvVar{{Name: "PGSSLMODE", Value: "disable"}}
			r.Spec.Strategy.BlueGreen.ProgressDeadlineSeconds = 60
		})
		r = waitForDegraded(ctx, key, deployv1alpha1.ReasonProgressDeadlineExceeded, 5*time.Minute)
		rep := load.Stop()
		expectNoFailedRequest(rep)
		Expect(activeSelector(ctx, r)).To(Equal(serving), "traffic moved to pods that were never ready")
		Expect(rep.Versions).To(HaveLen(1))
		Eventually(func(g Gomega) {
			d := &appsv1.Deployment{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: r.DeploymentName(deployv1alpha1.Color(serving).Other())}, d)).To(Succeed())
			g.Expect(*d.Spec.Replicas).To(BeZero(), "the aborted colour is not scaled down")
		}).WithContext(ctx).Should(Succeed())
	})

	// The two images below can never start; the migration Job (which runs the release's
	// image) is the first pod to find out. The release must say so itself, quickly: a user
	// should not have to read pod events. A migration deadline bounds the wait either way.
	for _, tc := range []struct{ name, image, want string }{
		{"an image that runs as root", appRoot, "as root"},
		{"an image that does not exist locally", appAbsent, "pull"},
	} {
		It("reports "+tc.name+" in the release's conditions and never moves traffic", func(ctx SpecContext) {
			r := mustGet(ctx, key)
			serving := activeSelector(ctx, r)
			load := startLoad("release of "+tc.name, url)
			updateRelease(ctx, key, func(r *deployv1alpha1.SoftFactoryRelease) {
				r.Spec.Image = tc.image
				r.Spec.Env = nil
				r.Spec.Migration.Env = nil
				r.Spec.Migration.ActiveDeadlineSeconds = 90
				r.Spec.Strategy.BlueGreen.ProgressDeadlineSeconds = 90
			})
			// Wait until the release has stopped (the migration's deadline at the latest),
			// noting when its conditions first said why.
			start := time.Now()
			said := time.Duration(-1)
			Eventually(func(g Gomega) {
				r = mustGet(ctx, key)
				g.Expect(r.Status.ObservedGeneration).To(Equal(r.Generation))
				if said < 0 && strings.Contains(strings.ToLower(conditionsText(r)), tc.want) {
					said = time.Since(start)
					GinkgoWriter.Printf("After %s the release said:\n%s", said.Round(time.Second), conditionsText(r))
				}
				degraded := meta.FindStatusCondition(r.Status.Conditions, deployv1alpha1.ConditionDegraded)
				g.Expect(degraded).NotTo(BeNil())
				g.Expect(degraded.Status).To(Equal(metav1.ConditionTrue), conditionsText(r))
			}).WithContext(ctx).WithTimeout(4 * time.Minute).Should(Succeed())
			GinkgoWriter.Printf("Stopped after %s:\n%s", time.Since(start).Round(time.Second), conditionsText(r))
			rep := load.Stop()
			expectNoFailedRequest(rep)
			Expect(activeSelector(ctx, r)).To(Equal(serving))
			Expect(rep.Versions).To(HaveLen(1))
			Expect(jobsOf(ctx, r, r.Status.CurrentRevision)[deployv1alpha1.ComponentRestore]).To(BeEmpty(), "something was restored")

			Expect(said).To(BeNumerically(">=", 0), "no condition ever said %q:\n%s", tc.want, conditionsText(r))
			AddReportEntry("time to report "+tc.name, said.Round(time.Second).String())
			Expect(said).To(BeNumerically("<", 30*time.Second), "it took %s for the release to say so", said.Round(time.Second))
		})
	}

	It("restores the pre-release dump after a failed migration when asked to, and the rows are back", func(ctx SpecContext) {
		r := mustGet(ctx, key)
		serving := activeSelector(ctx, r)
		db.psql(ctx, "INSERT INTO items (name) VALUES ('written-before-the-dump')")
		count := db.psql(ctx, "SELECT count(*) FROM items")
		load := startLoad("failed migration with the opt-in restore", url)
		updateRelease(ctx, key, func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Spec.Image = appBroken
			r.Spec.Env = []corev1.EnvVar{{Name: "RELEASE_NOTE", Value: "restore"}}
			r.Spec.Migration.ActiveDeadlineSeconds = 0
			r.Spec.Rollback.RestoreDatabase = true
		})
		r = waitForDegraded(ctx, key, deployv1alpha1.ReasonMigrationFailed, 4*time.Minute)
		By("waiting for the restore: the release's pods stopped, the dump loaded back, the serving colour up again")
		Eventually(func(g Gomega) {
			r = mustGet(ctx, key)
			degraded := meta.FindStatusCondition(r.Status.Conditions, deployv1alpha1.ConditionDegraded)
			g.Expect(degraded).NotTo(BeNil())
			g.Expect(degraded.Message).To(ContainSubstring("serves again"), conditionsText(r))
		}).WithContext(ctx).WithTimeout(5 * time.Minute).Should(Succeed())
		Eventually(func() error { _, err := insideGet(ctx, url+"health"); return err }).WithContext(ctx).Should(Succeed())
		rep := load.Stop()
		GinkgoWriter.Printf("Conditions:\n%s", conditionsText(r))
		Expect(jobsOf(ctx, r, r.Status.CurrentRevision)[deployv1alpha1.ComponentRestore]).To(HaveLen(1))

		By("checking the restore as the runbook does: the rows are back, the API answers")
		Expect(db.psql(ctx, "SELECT count(*) FROM items")).To(Equal(count))
		Expect(db.psql(ctx, "SELECT count(*) FROM items WHERE name = 'written-before-the-dump'")).To(Equal("1"))
		Expect(db.psql(ctx, "SELECT version_num FROM alembic_version")).To(Equal("0002"))
		body, err := insideGet(ctx, url+"health")
		Expect(err).NotTo(HaveOccurred(), body)
		Expect(body).To(ContainSubstring(`"database":"ok"`))
		Expect(activeSelector(ctx, r)).To(Equal(serving))
		// An automatic restore stops every writer the release owns first (no write may
		// land between the dump's rows and the restore): the requests during that window
		// fail by design, the trade-off docs/backups.md states. The release's own steps
		// before it (the failed migration) cost none.
		GinkgoWriter.Printf("During the automatic restore: %d of %d requests failed (the writers were stopped on purpose)\n", rep.Failures, rep.Requests)
	})

	It("stops a release whose backup volume the backup user cannot write, before any migration, saying why", func(ctx SpecContext) {
		ns := createNamespace(ctx, "real-unwritable")
		DeferCleanup(func(ctx SpecContext) { reportOnFailure(ctx, ns) })
		// A fresh hostPath directory is root's, and fsGroup is not applied to hostPath
		// volumes: the backup user (uid 70) cannot write there.
		createBackupVolume(ctx, ns, false)
		// The same database as the other specs: the dump gets as far as writing its file.
		Expect(k8s.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: dbSecret, Namespace: ns},
			StringData: map[string]string{"DATABASE_URL": db.url},
		})).To(Succeed())
		other := client.ObjectKey{Namespace: ns, Name: "softfactory"}
		Expect(k8s.Create(ctx, newRelease(&database{namespace: ns}, other.Name, appV2))).To(Succeed())
		r := waitForDegraded(ctx, other, deployv1alpha1.ReasonBackupFailed, 3*time.Minute)
		GinkgoWriter.Printf("Conditions:\n%s", conditionsText(r))
		Expect(conditionsText(r)).To(ContainSubstring("ermission denied"), "the release does not say the volume is not writable")
		Expect(findJob(ctx, ns, r.MigrationJobName(r.Status.CurrentRevision))).To(BeNil(), "a migration ran without a backup")
	})
})

func mustGet(ctx SpecContext, key client.ObjectKey) *deployv1alpha1.SoftFactoryRelease {
	GinkgoHelper()
	r := &deployv1alpha1.SoftFactoryRelease{}
	Expect(k8s.Get(ctx, key, r)).To(Succeed())
	return r
}
