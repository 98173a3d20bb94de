package controller

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	"github.com/softfactory/release-operator/internal/cacheshape"
	"github.com/softfactory/release-operator/internal/monitoring"
)

// The alerts step against a real API server: first without the PrometheusRule CRD, then
// with it installed while the same processes keep running, as in a cluster where
// prometheus-operator arrives after the operator. Two operators take part: the harness's
// reconciler called pass by pass, and a manager-run controller (cache, watches, workers,
// as cmd/main.go runs it) in its own namespace. Each has its own CRD check on its own fake
// clock, so "a minute later" is a clock step, not a wait.
var _ = Describe("The runbook's alerts", Ordered, func() {
	var (
		h          *harness
		ruleClient client.Client
		served     *discovery.DiscoveryClient
		asked      *countingDiscoverer
		rules      *monitoring.RuleManager
		op         *runningOperator
	)

	BeforeAll(func() {
		Expect(monitoringv1.AddToScheme(scheme)).To(Succeed())
		Expect(apiextensionsv1.AddToScheme(scheme)).To(Succeed())
		var err error
		ruleClient, err = client.New(cfg, client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		served, err = discovery.NewDiscoveryClientForConfig(cfg)
		Expect(err).NotTo(HaveOccurred())
		Expect(monitoring.PrometheusRuleCRDInstalled(ctx, served)).To(BeFalse(), "these specs start without the CRD")

		h = newHarness()
		h.client = &countingClient{Client: newCachedClient()}
		h.rec = h.newReconciler()
		asked = &countingDiscoverer{ResourceDiscoverer: served}
		rules = monitoring.NewRuleManagerWith(h.client, asked, h.clock)
		h.rec.Monitoring = rules
		// The process-wide check runs as the manager would run it, on the harness's clock.
		checkCtx, stopCheck := context.WithCancel(ctx)
		DeferCleanup(stopCheck)
		go func() { defer GinkgoRecover(); Expect(rules.Start(checkCtx)).To(Succeed()) }()
		Eventually(h.clock.HasWaiters).Should(BeTrue(), "the check has asked once and waits for its next tick")

		op = startOperator()
		DeferCleanup(op.stop)
	})

	rule := func(ns, release string) (*monitoringv1.PrometheusRule, error) {
		pr := &monitoringv1.PrometheusRule{}
		err := ruleClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: release + "-alerts"}, pr)
		return pr, err
	}

	It("are skipped with a condition where the PrometheusRule CRD is absent, and the release goes on", func() {
		r := h.release(imageV1)
		r.Spec.Monitoring.PrometheusRule.Labels = map[string]string{"release": "prometheus"}
		h.create(r)
		h.settle()
		c := h.condition(deployv1alpha1.ConditionMonitoringReady)
		Expect(c).NotTo(BeNil())
		Expect(c.Status).To(Equal(metav1.ConditionFalse))
		Expect(c.Reason).To(Equal(deployv1alpha1.ReasonPrometheusRuleCRDMissing))
		Expect(h.jobs(deployv1alpha1.ComponentBackup)).To(HaveLen(1), "the release did not wait for monitoring")
	})

	It("do not requeue a settled release, nor ask discovery per pass, while the CRD is absent", func() {
		h2 := newHarness()
		h2.rec.Monitoring = rules // one check per process, shared by every release
		h2.releaseFirst(h2.release(imageV1))
		Expect(h2.condition(deployv1alpha1.ConditionMonitoringReady).Reason).To(Equal(deployv1alpha1.ReasonPrometheusRuleCRDMissing))
		before := asked.calls.Load()
		res := h2.settle()
		Expect(res.RequeueAfter).To(BeZero(), "a settled release waits for events only; the CRD check enqueues it when the CRD appears")
		for range 5 {
			h2.reconcile()
		}
		Expect(asked.calls.Load()).To(Equal(before), "passes read what the process-wide check found")
	})

	It("are created once the CRD appears, without a restart", func() {
		installPrometheusRuleCRD(ruleClient, served)
		h.reconcile()
		_, err := rule(h.ns, h.name)
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "a pass does not ask discovery itself; the check's next tick does")

		h.clock.Step(monitoring.CRDRecheckInterval + time.Second)
		Eventually(func(g Gomega) {
			h.reconcile()
			pr, err := rule(h.ns, h.name)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(pr.Labels).To(HaveKeyWithValue("release", "prometheus"))
			g.Expect(pr.Spec.Groups).NotTo(BeEmpty())
		}).WithTimeout(30 * time.Second).Should(Succeed())
		Expect(h.condition(deployv1alpha1.ConditionMonitoringReady).Status).To(Equal(metav1.ConditionTrue))
	})

	It("reach every release of a running operator when its check sees the CRD, without a timer per release", func() {
		// op's releases were created in BeforeAll, before the CRD; op's check has not
		// ticked since the CRD appeared, and nothing changes the releases.
		for _, name := range op.releases {
			Expect(op.condition(name).Reason).To(Equal(deployv1alpha1.ReasonPrometheusRuleCRDMissing))
		}
		passes := op.passes.Load()
		Consistently(func() int64 { return op.passes.Load() }).WithTimeout(3*time.Second).Should(Equal(passes),
			"settled releases are not requeued while the CRD is missing")

		// A real per-release timer (the old requeue) would take a real minute; only the
		// check's tick, a step of op's fake clock, can get the rules made within 30s.
		op.clock.Step(monitoring.CRDRecheckInterval + time.Second)
		for _, name := range op.releases {
			Eventually(func(g Gomega) {
				_, err := rule(op.ns, name)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(op.condition(name).Reason).To(Equal(deployv1alpha1.ReasonRuleReady))
			}).WithTimeout(30*time.Second).Should(Succeed(), "release %s", name)
		}
		Expect(op.ruleGets.Load()).To(BeZero(), "passes read the rules from the watch's cache, not the API server")
	})

	It("are put back at once when a user deletes one, with nothing else changed", func() {
		name := op.releases[0]
		deleted, err := rule(op.ns, name)
		Expect(err).NotTo(HaveOccurred())
		Expect(ruleClient.Delete(ctx, deleted)).To(Succeed())
		// The release does not change, and no timer would run within the 10s: only the
		// watch on the rules it owns brings the pass that recreates it.
		Eventually(func(g Gomega) {
			pr, err := rule(op.ns, name)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(pr.UID).NotTo(Equal(deleted.UID))
		}).WithTimeout(10 * time.Second).Should(Succeed())
	})

	It("cache only the operator's own rules, not every rule in the namespace", func() {
		foreign := &monitoringv1.PrometheusRule{ObjectMeta: metav1.ObjectMeta{Name: "kube-prometheus-node", Namespace: op.ns}}
		Expect(ruleClient.Create(ctx, foreign)).To(Succeed())
		inAPI := &monitoringv1.PrometheusRuleList{}
		Expect(ruleClient.List(ctx, inAPI, client.InNamespace(op.ns))).To(Succeed())
		Expect(inAPI.Items).To(HaveLen(len(op.releases) + 1))
		Consistently(func(g Gomega) {
			cached := &monitoringv1.PrometheusRuleList{}
			g.Expect(op.ruleCache.List(ctx, cached, client.InNamespace(op.ns))).To(Succeed())
			g.Expect(cached.Items).To(HaveLen(len(op.releases)))
			for _, pr := range cached.Items {
				g.Expect(pr.Labels).To(HaveKeyWithValue(deployv1alpha1.LabelManagedBy, deployv1alpha1.ManagedBy))
				g.Expect(pr.ManagedFields).To(BeEmpty())
			}
		}).WithTimeout(2 * time.Second).Should(Succeed())
	})

	It("are put back at once when a user edits one", func() {
		name := op.releases[1]
		pr, err := rule(op.ns, name)
		Expect(err).NotTo(HaveOccurred())
		want := pr.Spec
		edited := pr.DeepCopy()
		edited.Spec.Groups = edited.Spec.Groups[:1]
		edited.Spec.Groups[0].Rules = edited.Spec.Groups[0].Rules[:1]
		Expect(ruleClient.Patch(ctx, edited, client.MergeFrom(pr))).To(Succeed())
		Eventually(func(g Gomega) {
			pr, err := rule(op.ns, name)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(pr.Spec).To(Equal(want))
			g.Expect(pr.ResourceVersion).NotTo(Equal(edited.ResourceVersion))
		}).WithTimeout(10 * time.Second).Should(Succeed())
		Expect(op.ruleGets.Load()).To(BeZero())
	})

	It("follow threshold changes", func() {
		before, err := rule(h.ns, h.name)
		Expect(err).NotTo(HaveOccurred())
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Spec.Monitoring.PrometheusRule.Thresholds.ErrorRatePercent = 2
		})
		h.settle()
		after, err := rule(h.ns, h.name)
		Expect(err).NotTo(HaveOccurred())
		Expect(after.Spec).NotTo(Equal(before.Spec))
	})

	It("are deleted when disabled", func() {
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Monitoring.PrometheusRule.Enabled = ptr.To(false) })
		h.settle()
		_, err := rule(h.ns, h.name)
		Expect(apierrors.IsNotFound(err)).To(BeTrue())
		Expect(h.condition(deployv1alpha1.ConditionMonitoringReady).Reason).To(Equal(deployv1alpha1.ReasonDisabled))
	})

	// Last of this ordered set: it removes the CRD the specs above installed.
	It("never hold the runbook when their CRD is removed after start-up", func() {
		if installed, _ := monitoring.PrometheusRuleCRDInstalled(ctx, served); !installed {
			installPrometheusRuleCRD(ruleClient, served) // this spec runs alone (focused)
		}
		Eventually(func() (bool, error) { return rules.Recheck(ctx) }).Should(BeTrue(), "the operator has seen the CRD")
		crd := standInPrometheusRuleCRD()
		Expect(ruleClient.Delete(ctx, crd)).To(Succeed())
		Eventually(func() (bool, error) { return monitoring.PrometheusRuleCRDInstalled(ctx, served) }).
			WithTimeout(60 * time.Second).Should(BeFalse())

		h3 := newHarness()
		h3.rec.Monitoring = rules // still believes the CRD is served, as a running operator would
		h3.create(h3.release(imageV1))
		res := h3.settle()
		Expect(h3.jobs(deployv1alpha1.ComponentBackup)).To(HaveLen(1), "the runbook went on")
		c := h3.condition(deployv1alpha1.ConditionMonitoringReady)
		Expect(c.Status).To(Equal(metav1.ConditionFalse))
		Expect(c.Reason).To(Equal(deployv1alpha1.ReasonMonitoringFailed))
		Expect(c.Message).To(ContainSubstring("PrometheusRule softfactory-alerts could not be kept"))
		Expect(h3.condition(deployv1alpha1.ConditionReady).Reason).NotTo(Equal(deployv1alpha1.ReasonReconcileError))
		Expect(res.RequeueAfter).To(BeNumerically(">", 0), "the alerts are tried again")
		Expect(res.RequeueAfter).To(BeNumerically("<=", optionalRetryMax))
	})
})

// countingDiscoverer counts discovery calls, so a test can prove passes do not make any.
type countingDiscoverer struct {
	monitoring.ResourceDiscoverer
	calls atomic.Int64
}

func (d *countingDiscoverer) ServerResourcesForGroupVersionWithContext(ctx context.Context, gv string) (*metav1.APIResourceList, error) {
	d.calls.Add(1)
	return d.ResourceDiscoverer.ServerResourcesForGroupVersionWithContext(ctx, gv)
}

// passCountingClient counts the release reads that open every pass.
type passCountingClient struct {
	client.Client
	passes *atomic.Int64
}

func (c *passCountingClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*deployv1alpha1.SoftFactoryRelease); ok {
		c.passes.Add(1)
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

// runningOperator is the operator as cmd/main.go runs it (manager, cache with the same
// PrometheusRule setting, watches, workers), confined to its own namespace so it never
// reconciles the harness's releases. Only the CRD check's clock is fake.
type runningOperator struct {
	ns       string
	releases []string
	clock    *clocktesting.FakeClock
	passes   atomic.Int64
	ruleGets atomic.Int64 // GETs of one PrometheusRule sent to the API server
	// ruleCache is the operator's own cache of PrometheusRules.
	ruleCache cache.Cache
	stop      context.CancelFunc
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// startOperator starts the operator while the PrometheusRule CRD is absent, with three
// releases that have settled (waiting for their Deployments, which envtest never makes
// available) and say the CRD is missing.
func startOperator() *runningOperator {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "operator-"}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	op := &runningOperator{ns: ns.Name, clock: clocktesting.NewFakeClock(time.Now())}

	// Every request the operator sends passes here, so a test can see which reach the API server.
	opCfg := rest.CopyConfig(cfg)
	rulePath := "/apis/monitoring.coreos.com/v1/namespaces/" + op.ns + "/prometheusrules/"
	opCfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodGet && strings.HasPrefix(req.URL.Path, rulePath) {
				op.ruleGets.Add(1)
			}
			return rt.RoundTrip(req)
		})
	}
	mgr, err := ctrl.NewManager(opCfg, ctrl.Options{
		Scheme:     scheme,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Cache:      cacheshape.Options(op.ns),
		Client:     cacheshape.ClientOptions(),
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	Expect(err).NotTo(HaveOccurred())
	ruleManager, err := monitoring.NewRuleManager(mgr, op.clock, cacheshape.Options(op.ns).DefaultNamespaces)
	Expect(err).NotTo(HaveOccurred())
	op.ruleCache = ruleManager.Cache()
	rec := &SoftFactoryReleaseReconciler{
		Client:     &passCountingClient{Client: mgr.GetClient(), passes: &op.passes},
		Recorder:   mgr.GetEventRecorder("softfactory-release-operator"),
		Clock:      clock.RealClock{},
		Monitoring: ruleManager,
	}
	Expect(rec.SetupWithManager(mgr, 2)).To(Succeed())
	mgrCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(mgrCtx)).To(Succeed())
	}()
	op.stop = func() { stop(); <-done }

	for i := range 3 {
		name := fmt.Sprintf("shop-%d", i)
		Expect(k8sClient.Create(ctx, &deployv1alpha1.SoftFactoryRelease{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: op.ns},
			Spec:       deployv1alpha1.SoftFactoryReleaseSpec{Image: imageV1, Replicas: ptr.To[int32](1)},
		})).To(Succeed())
		op.releases = append(op.releases, name)
	}
	for _, name := range op.releases {
		Eventually(func() *metav1.Condition { return op.conditionOrNil(name) }).WithTimeout(30 * time.Second).
			Should(HaveField("Reason", deployv1alpha1.ReasonPrometheusRuleCRDMissing))
	}
	return op
}

func (op *runningOperator) conditionOrNil(name string) *metav1.Condition {
	r := &deployv1alpha1.SoftFactoryRelease{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: op.ns, Name: name}, r); err != nil {
		return nil
	}
	for i := range r.Status.Conditions {
		if r.Status.Conditions[i].Type == deployv1alpha1.ConditionMonitoringReady {
			return &r.Status.Conditions[i]
		}
	}
	return nil
}

func (op *runningOperator) condition(name string) *metav1.Condition {
	GinkgoHelper()
	c := op.conditionOrNil(name)
	Expect(c).NotTo(BeNil())
	return c
}

// installPrometheusRuleCRD installs the stand-in CRD and waits until discovery serves it,
// as it would a while after `helm install` of prometheus-operator.
func installPrometheusRuleCRD(c client.Client, dc *discovery.DiscoveryClient) {
	GinkgoHelper()
	Expect(c.Create(ctx, standInPrometheusRuleCRD())).To(Succeed())
	Eventually(func() (bool, error) { return monitoring.PrometheusRuleCRDInstalled(ctx, dc) }).
		WithTimeout(30 * time.Second).Should(BeTrue())
}

// standInPrometheusRuleCRD has prometheus-operator's group, version, names and scope with
// an open schema; the real CRD ships with prometheus-operator, which cannot be downloaded here.
func standInPrometheusRuleCRD() *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "prometheusrules.monitoring.coreos.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "monitoring.coreos.com",
			Names: apiextensionsv1.CustomResourceDefinitionNames{
				Plural: "prometheusrules", Singular: "prometheusrule", Kind: "PrometheusRule", ListKind: "PrometheusRuleList",
			},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type:       "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{"spec": {Type: "object", XPreserveUnknownFields: ptr.To(true)}},
				}},
			}},
		},
	}
}
