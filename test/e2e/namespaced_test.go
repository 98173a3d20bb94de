//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	operatorprocess "github.com/softfactory/release-operator/test/support/operator"
)

// The Helm chart's namespaced mode (rbac.namespaced=true) installed on the cluster: its
// ServiceAccount, Roles and RoleBindings as the chart renders them. kwok runs no
// containers, so the chart's Deployment cannot run the operator; the operator runs here
// as its own process with exactly the arguments that Deployment gives it, as the
// chart's ServiceAccount (impersonated). That proves what matters: the flag is passed,
// and the namespaced RBAC is enough for a whole release (backup, migration, blue/green)
// in the watched namespace, while a release in another namespace is left alone.
var _ = Describe("The Helm chart in namespaced mode", Ordered, Serial, func() {
	var (
		operatorNS, watched, unwatched string
		chartOperator                  *operatorprocess.Process
	)

	BeforeAll(func(ctx SpecContext) {
		helm := os.Getenv("HELM")
		Expect(helm).NotTo(BeEmpty(), "HELM is not set: run `make test-e2e`, which builds helm from the Go module proxy")

		operatorNS = "e2e-chart-" + rand.String(5)
		Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNS}})).To(Succeed())
		DeferCleanup(func(ctx SpecContext) {
			if os.Getenv("E2E_KEEP_CLUSTER") == "" {
				_ = k8s.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNS}})
			}
		})
		watched = createNamespace(ctx, "e2e-watched")
		unwatched = createNamespace(ctx, "e2e-unwatched")

		By("rendering the chart in namespaced mode, watching " + watched)
		rendered := run(ctx, repoRoot, helm, "template", "sf", filepath.Join(repoRoot, "dist", "chart"),
			"--namespace", operatorNS,
			"--set", "rbac.namespaced=true",
			"--set", "rbac.watchNamespaces={"+watched+"}",
			// The suite installed the CRD already; nothing scrapes metrics here.
			"--set", "crd.enabled=false",
			"--set", "metrics.enabled=false",
		)
		var manager *appsv1.Deployment
		var serviceAccount string
		for _, doc := range strings.Split(rendered, "\n---") {
			obj := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil || obj.GetKind() == "" {
				continue
			}
			switch obj.GetKind() {
			case "Deployment":
				manager = &appsv1.Deployment{}
				Expect(yaml.Unmarshal([]byte(doc), manager)).To(Succeed())
				continue // kwok cannot run it: the process below stands in
			case "ServiceAccount":
				serviceAccount = obj.GetName()
			case "ClusterRole", "ClusterRoleBinding":
				Fail("namespaced mode rendered a cluster-wide " + obj.GetKind() + " " + obj.GetName())
			}
			By("installing " + obj.GetKind() + " " + obj.GetNamespace() + "/" + obj.GetName())
			Expect(k8s.Create(ctx, obj)).To(Succeed())
		}
		Expect(manager).NotTo(BeNil(), "the chart rendered no Deployment")
		Expect(serviceAccount).NotTo(BeEmpty(), "the chart rendered no ServiceAccount")

		By("stopping the suite's cluster-wide operator, which would reconcile both namespaces")
		Expect(operator.Stop()).To(Succeed())
		DeferCleanup(func() {
			if !operator.Running() {
				Expect(operator.Start()).To(Succeed())
			}
		})

		By("running the operator with the chart's arguments, as the chart's ServiceAccount")
		args := slices.DeleteFunc(slices.Clone(manager.Spec.Template.Spec.Containers[0].Args), func(a string) bool {
			return strings.HasPrefix(a, "--health-probe-bind-address") // a free loopback port instead
		})
		Expect(args).To(ContainElement("--watch-namespaces="+watched), "the chart does not tell the operator which namespaces it may watch")
		// In a pod, the Lease's namespace is read from the service account mount.
		args = append(args, "--leader-election-namespace="+operatorNS, "--zap-log-level=debug")
		asChart := impersonating(operatorNS, serviceAccount)
		By("checking that the kubeconfig acts as the ServiceAccount: no releases outside " + watched)
		chartConfig, err := clientcmd.BuildConfigFromFlags("", asChart)
		Expect(err).NotTo(HaveOccurred())
		asChartClient, err := client.New(chartConfig, client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		Expect(apierrors.IsForbidden(asChartClient.List(ctx, &deployv1alpha1.SoftFactoryReleaseList{}))).To(BeTrue(),
			"the chart's ServiceAccount may list releases in every namespace")
		Expect(asChartClient.List(ctx, &deployv1alpha1.SoftFactoryReleaseList{}, client.InNamespace(watched))).To(Succeed())

		chartOperator = newOperatorProcess(operator.Binary, asChart,
			filepath.Join(workDir, "operator-namespaced.log"), filepath.Join(workDir, "operator-namespaced.pid"))
		chartOperator.Args = args
		chartOperator.StopLeftover()
		Expect(chartOperator.Start()).To(Succeed())
		DeferCleanup(chartOperator.Stop)
		GinkgoWriter.Printf("Namespaced operator log: %s\n", chartOperator.LogPath)
	})

	AfterEach(func(ctx SpecContext) {
		if CurrentSpecReport().Failed() {
			reportOnFailure(ctx, watched)
			GinkgoWriter.Println("The namespaced operator's log, last lines:\n" + chartOperator.LogTail(40))
		}
	})

	It("runs a whole release in the watched namespace with nothing but the chart's RBAC", func(ctx SpecContext) {
		key := client.ObjectKey{Namespace: watched, Name: "tenant"}
		Expect(k8s.Create(ctx, newRelease(watched, key.Name, "registry.example.com/softfactory:3.0.0"))).To(Succeed())
		r := &deployv1alpha1.SoftFactoryRelease{}
		Eventually(func(g Gomega) {
			Expect(chartOperator.CheckRunning()).To(Succeed())
			g.Expect(k8s.Get(ctx, key, r)).To(Succeed())
			g.Expect(r.Status.ObservedGeneration).To(Equal(r.Generation))
			g.Expect(r.Status.Phase).To(Equal(deployv1alpha1.PhaseSucceeded), "phase %s, conditions %+v", r.Status.Phase, r.Status.Conditions)
		}).WithContext(ctx).Should(Succeed())
		Expect(r.Status.LastBackup).NotTo(BeNil(), "the release succeeded without its backup")
	})

	It("never touches a release in a namespace it does not watch", func(ctx SpecContext) {
		key := client.ObjectKey{Namespace: unwatched, Name: "stranger"}
		Expect(k8s.Create(ctx, newRelease(unwatched, key.Name, "registry.example.com/softfactory:3.0.0"))).To(Succeed())
		Consistently(func(g Gomega) {
			Expect(chartOperator.CheckRunning()).To(Succeed())
			r := &deployv1alpha1.SoftFactoryRelease{}
			g.Expect(k8s.Get(ctx, key, r)).To(Succeed())
			g.Expect(r.Status.ObservedGeneration).To(BeZero(), "the operator wrote the status of a release it does not watch")
			deployments := &appsv1.DeploymentList{}
			g.Expect(k8s.List(ctx, deployments, client.InNamespace(unwatched))).To(Succeed())
			g.Expect(deployments.Items).To(BeEmpty())
		}).WithContext(ctx).WithTimeout(10 * time.Second).Should(Succeed())
	})

	It("was never refused anything by the API server", func() {
		raw, err := os.ReadFile(chartOperator.LogPath)
		Expect(err).NotTo(HaveOccurred())
		log := strings.ToLower(string(raw))
		Expect(log).NotTo(ContainSubstring("forbidden"), "the chart's RBAC lacks a permission the operator uses")
		Expect(log).To(ContainSubstring("successfully acquired lease"), "leader election with the chart's Role did not take its Lease")
	})
})

// impersonating writes a kubeconfig that acts as the ServiceAccount namespace/name
// (the suite's admin may impersonate), so the operator has exactly that account's
// permissions, as it would in the chart's pod.
func impersonating(namespace, name string) string {
	GinkgoHelper()
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	Expect(err).NotTo(HaveOccurred())
	user := cfg.Contexts[cfg.CurrentContext].AuthInfo
	cfg.AuthInfos[user].Impersonate = "system:serviceaccount:" + namespace + ":" + name
	path := filepath.Join(workDir, "namespaced-operator.kubeconfig")
	Expect(clientcmd.WriteToFile(*cfg, path)).To(Succeed())
	return path
}
