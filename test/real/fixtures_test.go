//go:build real && linux

package real

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// The images hack/real/images.sh builds and cluster-up imports; none can be pulled.
const (
	imageRegistry = "softfactory.local/"
	appV1         = imageRegistry + "softfactory-app:1.0.0"
	appV2         = imageRegistry + "softfactory-app:2.0.0"
	appBroken     = imageRegistry + "softfactory-app:3.0.0-broken"
	appRoot       = imageRegistry + "softfactory-app:2.0.0-root"
	// appAbsent is on no node, and its registry is a closed port on the loopback of the
	// cluster's own network namespace: the pull fails at once (a registry name would wait
	// on a resolver that cannot answer there), and nothing leaves the namespace.
	appAbsent      = "127.0.0.1:9/softfactory-app:9.9.9-absent"
	postgresImage  = imageRegistry + "postgres:15"
	dbSecret       = "softfactory-db"
	backupClaim    = "softfactory-backups"
	dbUser, dbName = "softfactory", "softfactory"
	// backupUID is the user the operator's backup Job runs as (postgres:alpine's).
	backupUID = 70
)

// database is one PostgreSQL in a namespace, with the backup volume beside it.
type database struct {
	namespace string
	// url is DATABASE_URL as the app gets it: the Service's ClusterIP, since the
	// cluster has no DNS (an address only meaningful inside the network namespace).
	url string
	// backupDir is the backup volume's directory on this host (a hostPath volume).
	backupDir string
}

// stateDir is where hack/real keeps the cluster's files on this host.
func stateDir() string {
	base := os.Getenv("SOFTFACTORY_REAL_DIR")
	if base == "" {
		base = "/var/lib/softfactory-real"
	}
	return filepath.Join(base, clusterName)
}

// createNamespace makes a namespace with Pod Security "restricted" enforced, so every
// pod the operator makes is checked by the API server as a platform team would.
func createNamespace(ctx context.Context, prefix string) string {
	GinkgoHelper()
	name := prefix + "-" + rand.String(5)
	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   name,
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
	}})).To(Succeed())
	return name
}

// createBackupVolume makes the backup claim, bound to a hostPath volume in the cluster's
// state directory. fsGroup does not apply to hostPath volumes, so a user hands the
// directory to the backup user, as writable decides; writable=false leaves it as a
// fresh directory is, owned by root.
func createBackupVolume(ctx context.Context, namespace string, writable bool) string {
	GinkgoHelper()
	dir := filepath.Join(stateDir(), "backups", namespace)
	Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
	if writable {
		Expect(os.Chown(dir, backupUID, backupUID)).To(Succeed())
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: namespace + "-backups"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              "",
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: ptr.To(corev1.HostPathDirectory)},
			},
			ClaimRef: &corev1.ObjectReference{Namespace: namespace, Name: backupClaim},
		},
	}
	Expect(k8s.Create(ctx, pv)).To(Succeed())
	Expect(k8s.Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: backupClaim, Namespace: namespace},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ptr.To(""),
			VolumeName:       pv.Name,
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			},
		},
	})).To(Succeed())
	return dir
}

// restrictedContainer is what Pod Security "restricted" asks of a container.
func restrictedContainer() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		RunAsNonRoot:             ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// createDatabase starts PostgreSQL in the namespace (a Deployment, its data in an
// emptyDir, the backup volume mounted read-only for pg_restore --list), its Service,
// and the Secret holding DATABASE_URL with the Service's ClusterIP.
func createDatabase(ctx context.Context, namespace string) *database {
	GinkgoHelper()
	db := &database{namespace: namespace, backupDir: createBackupVolume(ctx, namespace, true)}
	password := rand.String(16)
	labels := map[string]string{"app.kubernetes.io/name": "postgres"}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "postgres", Namespace: namespace},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Port: 5432, TargetPort: intstr.FromInt32(5432)}},
		},
	}
	Expect(k8s.Create(ctx, svc)).To(Succeed())
	db.url = fmt.Sprintf("postgresql://%s:%s@%s:5432/%s", dbUser, password, svc.Spec.ClusterIP, dbName)
	Expect(k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: dbSecret, Namespace: namespace},
		StringData: map[string]string{"DATABASE_URL": db.url},
	})).To(Succeed())
	Expect(k8s.Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "postgres", Namespace: namespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:  "postgres",
						Image: postgresImage,
						Env: []corev1.EnvVar{
							{Name: "POSTGRES_USER", Value: dbUser},
							{Name: "POSTGRES_PASSWORD", Value: password},
							{Name: "POSTGRES_DB", Value: dbName},
						},
						Ports: []corev1.ContainerPort{{ContainerPort: 5432}},
						// A request, as a production database has: Burstable, not starved by
						// the BestEffort backup and migration pods.
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi"),
						}},
						// Patient: on 2 shared cores pg_isready can take seconds to answer, and
						// an unready database leaves its Service with no endpoint, failing
						// every request of the app for reasons that are not the release's.
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:     corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"pg_isready", "-h", "/tmp", "-U", dbUser}}},
							PeriodSeconds:    2,
							TimeoutSeconds:   10,
							FailureThreshold: 30,
						},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "data", MountPath: "/var/lib/postgresql/data"},
							{Name: "backups", MountPath: "/backups", ReadOnly: true},
						},
						SecurityContext: restrictedContainer(),
					}},
					Volumes: []corev1.Volume{
						{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
						{Name: "backups", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: backupClaim, ReadOnly: true}}},
					},
				},
			},
		},
	})).To(Succeed())
	Eventually(func(g Gomega) {
		d := &appsv1.Deployment{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "postgres"}, d)).To(Succeed())
		g.Expect(d.Status.ReadyReplicas).To(BeEquivalentTo(1))
	}).WithContext(ctx).Should(Succeed(), "PostgreSQL never became ready")
	// Slow statements and lock waits go to the server's log (kept with the pod logs):
	// a request that took long is then told apart from one that waited on the database.
	db.psql(ctx, "ALTER SYSTEM SET log_min_duration_statement = '500ms'")
	db.psql(ctx, "ALTER SYSTEM SET log_lock_waits = on")
	db.psql(ctx, "SELECT pg_reload_conf()")
	return db
}

// psql runs SQL in the database pod (kubectl exec, through the API server) and returns
// the rows, unaligned, one per line.
func (db *database) psql(ctx context.Context, sql string) string {
	GinkgoHelper()
	return strings.TrimSpace(db.exec(ctx, "psql", "-h", "/tmp", "-U", dbUser, "-d", dbName, "-v", "ON_ERROR_STOP=1", "-tAc", sql))
}

// exec runs a command in the database pod, where the backup volume is at /backups.
func (db *database) exec(ctx context.Context, args ...string) string {
	GinkgoHelper()
	out, err := kubectlOut(ctx, append([]string{"-n", db.namespace, "exec", "deploy/postgres", "--"}, args...)...)
	Expect(err).NotTo(HaveOccurred(), "%s: %s", strings.Join(args, " "), out)
	return out
}

func kubectlOut(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// newRelease is the sample app's release as a user would write it for this cluster:
// the runbook in full, two replicas, the PostgreSQL image for the backup Jobs, and
// delays short enough for a test.
func newRelease(db *database, name, image string) *deployv1alpha1.SoftFactoryRelease {
	return &deployv1alpha1.SoftFactoryRelease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: db.namespace},
		Spec: deployv1alpha1.SoftFactoryReleaseSpec{
			Image:    image,
			Replicas: ptr.To[int32](2),
			Port:     8000,
			// The operator's defaults for period and thresholds: readiness on /health (which
			// checks the database), liveness and startup only on the port.
			HealthCheck: deployv1alpha1.HealthCheckSpec{Path: "/health", TimeoutSeconds: 8},
			Service:     deployv1alpha1.ServiceSpec{Name: "softfactory-api", Port: 80},
			// Requests, as a production spec has: the API pods are Burstable, so a backup
			// or migration pod (BestEffort) never takes their CPU.
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("96Mi"),
			}},
			Database: &deployv1alpha1.DatabaseSpec{
				URLSecretRef: deployv1alpha1.SecretKeyRef{Name: dbSecret, Key: "DATABASE_URL"},
			},
			Backup: &deployv1alpha1.BackupSpec{
				Volume: deployv1alpha1.BackupVolume{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: backupClaim},
				},
				Image:    postgresImage,
				KeepLast: 10,
			},
			Migration: &deployv1alpha1.MigrationSpec{Command: []string{"flask", "db", "upgrade"}},
			Strategy: deployv1alpha1.StrategySpec{BlueGreen: deployv1alpha1.BlueGreenSpec{
				ScaleDownDelaySeconds:   ptr.To[int32](10),
				ProgressDeadlineSeconds: 240,
			}},
		},
	}
}

// updateRelease changes a release's spec as `kubectl edit` would.
func updateRelease(ctx context.Context, key client.ObjectKey, change func(*deployv1alpha1.SoftFactoryRelease)) {
	GinkgoHelper()
	Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		r := &deployv1alpha1.SoftFactoryRelease{}
		if err := k8s.Get(ctx, key, r); err != nil {
			return err
		}
		change(r)
		return k8s.Update(ctx, r)
	})).To(Succeed())
}

// waitForSuccess waits until the release's current spec serves traffic and the old
// colour is scaled down (Ready=True, phase Succeeded); a failure stops the wait at once.
func waitForSuccess(ctx context.Context, key client.ObjectKey) *deployv1alpha1.SoftFactoryRelease {
	GinkgoHelper()
	r := &deployv1alpha1.SoftFactoryRelease{}
	Eventually(func(g Gomega) {
		Expect(operator.CheckRunning()).To(Succeed())
		g.Expect(k8s.Get(ctx, key, r)).To(Succeed())
		g.Expect(r.Status.ObservedGeneration).To(Equal(r.Generation))
		degraded := meta.FindStatusCondition(r.Status.Conditions, deployv1alpha1.ConditionDegraded)
		if degraded != nil && degraded.Status == metav1.ConditionTrue {
			StopTrying(fmt.Sprintf("release %s failed: %s: %s", key, degraded.Reason, degraded.Message)).Now()
		}
		ready := meta.FindStatusCondition(r.Status.Conditions, deployv1alpha1.ConditionReady)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Status).To(Equal(metav1.ConditionTrue), "Ready: %s: %s", ready.Reason, ready.Message)
		g.Expect(r.Status.Phase).To(Equal(deployv1alpha1.PhaseSucceeded))
	}).WithContext(ctx).Should(Succeed())
	return r
}

// waitForDegraded waits until the current spec stopped with Degraded=True and reason.
func waitForDegraded(ctx context.Context, key client.ObjectKey, reason string, timeout time.Duration) *deployv1alpha1.SoftFactoryRelease {
	GinkgoHelper()
	r := &deployv1alpha1.SoftFactoryRelease{}
	Eventually(func(g Gomega) {
		Expect(operator.CheckRunning()).To(Succeed())
		g.Expect(k8s.Get(ctx, key, r)).To(Succeed())
		g.Expect(r.Status.ObservedGeneration).To(Equal(r.Generation))
		degraded := meta.FindStatusCondition(r.Status.Conditions, deployv1alpha1.ConditionDegraded)
		g.Expect(degraded).NotTo(BeNil())
		g.Expect(degraded.Status).To(Equal(metav1.ConditionTrue), "Degraded: %s: %s", degraded.Reason, degraded.Message)
		g.Expect(degraded.Reason).To(Equal(reason), "Degraded: %s", degraded.Message)
	}).WithContext(ctx).WithTimeout(timeout).Should(Succeed())
	return r
}

// conditionsText is every condition of the release, one per line, for matching and
// for failure messages.
func conditionsText(r *deployv1alpha1.SoftFactoryRelease) string {
	var b strings.Builder
	for _, c := range r.Status.Conditions {
		fmt.Fprintf(&b, "%s=%s %s: %s\n", c.Type, c.Status, c.Reason, c.Message)
	}
	return b.String()
}

// activeSelector is the colour the active Service selects, read from the Service.
func activeSelector(ctx context.Context, r *deployv1alpha1.SoftFactoryRelease) string {
	GinkgoHelper()
	s := &corev1.Service{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: r.ActiveServiceName()}, s)).To(Succeed())
	return s.Spec.Selector[deployv1alpha1.LabelColor]
}

// serviceURL is http://<ClusterIP>:<port>/ of a Service: for use inside the namespace only.
func serviceURL(ctx context.Context, namespace, name string) string {
	GinkgoHelper()
	s := &corev1.Service{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, s)).To(Succeed())
	Expect(s.Spec.ClusterIP).NotTo(BeEmpty())
	return fmt.Sprintf("http://%s:%d/", s.Spec.ClusterIP, s.Spec.Ports[0].Port)
}

// jobsOf lists the release's Jobs for one revision, by component.
func jobsOf(ctx context.Context, r *deployv1alpha1.SoftFactoryRelease, revision string) map[string][]batchv1.Job {
	GinkgoHelper()
	jobs := &batchv1.JobList{}
	Expect(k8s.List(ctx, jobs, client.InNamespace(r.Namespace),
		client.MatchingLabels{deployv1alpha1.LabelInstance: r.Name, deployv1alpha1.LabelRevision: revision})).To(Succeed())
	out := map[string][]batchv1.Job{}
	for _, j := range jobs.Items {
		out[j.Labels[deployv1alpha1.LabelComponent]] = append(out[j.Labels[deployv1alpha1.LabelComponent]], j)
	}
	return out
}

// findJob returns the Job of that name, or nil while there is none.
func findJob(ctx context.Context, namespace, name string) *batchv1.Job {
	GinkgoHelper()
	j := &batchv1.Job{}
	err := k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, j)
	if apierrors.IsNotFound(err) {
		return nil
	}
	Expect(err).NotTo(HaveOccurred())
	return j
}

func jobFinished(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Status == corev1.ConditionTrue && (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) {
			return true
		}
	}
	return false
}

// --- inside the network namespace --------------------------------------------------

// netnsPath is the cluster's network namespace. Every program that talks to a pod or
// Service address is started inside it; from this host's own namespace such a packet
// would leave the machine.
func netnsPath() string { return "/run/netns/sfreal-" + clusterName }

// insideGet sends one GET from inside the namespace and returns the body.
func insideGet(ctx context.Context, url string) (string, error) {
	cmd := exec.CommandContext(ctx, "nsenter", "--net="+netnsPath(), loadgen, "-once", "-url", url)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), fmt.Errorf("%w: %s", err, ee.Stderr)
	}
	return string(out), err
}

// appAnswer is what the sample app says on /.
type appAnswer struct {
	Version string `json:"version"`
	Pod     string `json:"pod"`
	Items   int    `json:"items"`
}

// expectVersion waits until the app behind url answers with that version (a Service
// just made or flipped takes kube-proxy a moment).
func expectVersion(ctx context.Context, url, version string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		body, err := insideGet(ctx, url)
		g.Expect(err).NotTo(HaveOccurred())
		var a appAnswer
		g.Expect(json.Unmarshal([]byte(body), &a)).To(Succeed(), body)
		g.Expect(a.Version).To(Equal(version))
	}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
}

// loadReport is hack/real/loadgen's report.
type loadReport struct {
	Requests       int            `json:"requests"`
	Failures       int            `json:"failures"`
	Seconds        float64        `json:"seconds"`
	P50Millis      float64        `json:"p50Millis"`
	P99Millis      float64        `json:"p99Millis"`
	MaxMillis      float64        `json:"maxMillis"`
	Versions       map[string]int `json:"versions"`
	Pods           map[string]int `json:"pods"`
	FirstFailures  []any          `json:"firstFailures"`
	VersionChanges []struct {
		At      time.Time `json:"at"`
		Version string    `json:"version"`
	} `json:"versionChanges"`
	// Kinds and Written come with -items: requests by kind (read, write, read-item),
	// and every item the app answered 201 for, with the version that wrote it.
	Kinds     map[string]int `json:"kinds"`
	ItemReads map[string]int `json:"itemReads"`
	Written   []struct {
		ID      int    `json:"id"`
		Label   string `json:"label"`
		Version string `json:"version"`
	} `json:"written"`
}

// load is a running load generator inside the namespace.
type load struct {
	scenario, out string
	cmd           *exec.Cmd
	done          chan error
}

var (
	loadReportsMu sync.Mutex
	loadReports   []struct {
		scenario string
		report   loadReport
	}
	// trafficReports are the traffic-timing lines printed after the load table.
	trafficReports []string
)

func recordTrafficReport(line string) {
	loadReportsMu.Lock()
	defer loadReportsMu.Unlock()
	trafficReports = append(trafficReports, line)
}

// loadRate and loadLimit bound every load generator: 20 requests a second, and never
// longer than 15 minutes even if nobody stops it.
// loadTimeout is how long a request may take before it counts as failed: on 2 cores
// shared with other builds, p99 reaches 2.5 s and a rare request passed 5 s with no
// release in sight, which says nothing about the operator.
const (
	loadRate    = 20
	loadLimit   = 15 * time.Minute
	loadTimeout = 10 * time.Second
)

// startLoad starts the load generator on url, inside the namespace, with any extra
// flags (-items: writes and reads items too). Stop it with Stop; if the spec dies
// first, the kernel kills it with this process (Pdeathsig) and it would stop by itself
// at loadLimit anyway.
func startLoad(scenario, url string, flags ...string) *load {
	GinkgoHelper()
	l := &load{scenario: scenario, out: filepath.Join(workDir, "load-"+strings.ReplaceAll(scenario, " ", "-")+".json")}
	_ = os.Remove(l.out)
	l.cmd = exec.Command("nsenter", append([]string{"--net=" + netnsPath(), loadgen,
		"-url", url, "-rate", fmt.Sprint(loadRate), "-duration", loadLimit.String(), "-timeout", loadTimeout.String(), "-out", l.out},
		flags...)...)
	l.cmd.Stderr = GinkgoWriter
	l.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	Expect(l.cmd.Start()).To(Succeed())
	l.done = make(chan error, 1)
	go func() { l.done <- l.cmd.Wait() }()
	DeferCleanup(func() {
		if l.cmd.ProcessState == nil {
			_ = l.cmd.Process.Signal(syscall.SIGKILL)
		}
	})
	return l
}

// Stop ends the load and returns its report, which is also kept for the suite's summary.
func (l *load) Stop() loadReport {
	GinkgoHelper()
	_ = l.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-l.done:
		Expect(err).NotTo(HaveOccurred(), "the load generator failed")
	case <-time.After(30 * time.Second):
		_ = l.cmd.Process.Kill()
		Fail("the load generator did not stop")
	}
	data, err := os.ReadFile(l.out)
	Expect(err).NotTo(HaveOccurred())
	var rep loadReport
	Expect(json.Unmarshal(data, &rep)).To(Succeed())
	loadReportsMu.Lock()
	loadReports = append(loadReports, struct {
		scenario string
		report   loadReport
	}{l.scenario, rep})
	loadReportsMu.Unlock()
	AddReportEntry("load: "+l.scenario, fmt.Sprintf("%d requests, %d failed, p99 %.1f ms, versions %v",
		rep.Requests, rep.Failures, rep.P99Millis, rep.Versions))
	return rep
}

// expectNoFailedRequest is the traffic promise: every request got a 2xx from the app.
func expectNoFailedRequest(rep loadReport) {
	GinkgoHelper()
	Expect(rep.Requests).To(BeNumerically(">", 0), "the load generator sent nothing")
	Expect(rep.Failures).To(BeZero(), "failed requests: %v", rep.FirstFailures)
}

// printLoadReports prints the per-scenario numbers at the end of the suite.
func printLoadReports() {
	loadReportsMu.Lock()
	defer loadReportsMu.Unlock()
	if len(loadReports) == 0 {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nLoad through each scenario (%d req/s, one connection per request, to the active Service's ClusterIP):\n", loadRate)
	fmt.Fprintf(&b, "%-44s %9s %8s %8s %8s  %s\n", "scenario", "requests", "failed", "p50 ms", "p99 ms", "versions answering")
	for _, e := range loadReports {
		versions := make([]string, 0, len(e.report.Versions))
		for v, n := range e.report.Versions {
			versions = append(versions, fmt.Sprintf("%s:%d", v, n))
		}
		sort.Strings(versions)
		fmt.Fprintf(&b, "%-44s %9d %8d %8.1f %8.1f  %s\n", e.scenario, e.report.Requests, e.report.Failures,
			e.report.P50Millis, e.report.P99Millis, strings.Join(versions, " "))
	}
	for _, line := range trafficReports {
		fmt.Fprintf(&b, "%s\n", line)
	}
	_, _ = fmt.Fprint(GinkgoWriter, b.String())
	_, _ = fmt.Fprint(os.Stdout, b.String())
	_ = os.WriteFile(filepath.Join(workDir, "load-summary.txt"), []byte(b.String()), 0o644)
}

// reportOnFailure prints the operator's log, the namespace's Events and pods.
func reportOnFailure(ctx context.Context, namespace string) {
	if !CurrentSpecReport().Failed() {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n--- operator log (last 60 lines)\n%s\n", operator.LogTail(60))
	for _, args := range [][]string{
		{"-n", namespace, "get", "sfrelease,deploy,rs,pods,jobs,svc,endpointslices", "-o", "wide"},
		{"-n", namespace, "get", "events", "--sort-by=.lastTimestamp"},
		{"-n", namespace, "get", "sfrelease", "-o", "yaml"},
	} {
		out, _ := kubectlOut(ctx, args...)
		fmt.Fprintf(&b, "--- kubectl %s\n%s\n", strings.Join(args, " "), out)
	}
	AddReportEntry("diagnostics", b.String())
	_, _ = fmt.Fprint(GinkgoWriter, b.String())
}
