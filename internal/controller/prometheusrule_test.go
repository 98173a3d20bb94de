package controller

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// The alerts step against a real API server: first without the PrometheusRule CRD, then
// with it installed while the same reconciler keeps running, as in a cluster where
// prometheus-operator arrives after the operator.
var _ = Describe("The runbook's alerts", Ordered, func() {
	var h *harness
	var ruleClient client.Client

	BeforeAll(func() {
		Expect(monitoringv1.AddToScheme(scheme)).To(Succeed())
		Expect(apiextensionsv1.AddToScheme(scheme)).To(Succeed())
		var err error
		ruleClient, err = client.New(cfg, client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		h = newHarness()
		h.client = &countingClient{Client: ruleClient}
		dc, err := discovery.NewDiscoveryClientForConfig(cfg)
		Expect(err).NotTo(HaveOccurred())
		h.rec = h.newReconciler()
		h.rec.Monitoring = NewPrometheusRuleManagerWith(h.client, dc, h.clock)
	})

	rule := func() (*monitoringv1.PrometheusRule, error) {
		pr := &monitoringv1.PrometheusRule{}
		err := ruleClient.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: h.name + "-alerts"}, pr)
		return pr, err
	}

	It("are skipped with a condition where the PrometheusRule CRD is absent, and the release goes on", func() {
		r := h.release(imageV1)
		r.Spec.Monitoring.PrometheusRule.Labels = map[string]string{"release": "prometheus"}
		h.create(r)
		res := h.settle()
		c := h.condition(deployv1alpha1.ConditionMonitoringReady)
		Expect(c).NotTo(BeNil())
		Expect(c.Status).To(Equal(metav1.ConditionFalse))
		Expect(c.Reason).To(Equal(MonitoringCRDMissing))
		Expect(h.jobs(deployv1alpha1.ComponentBackup)).To(HaveLen(1), "the release did not wait for monitoring")
		Expect(res.RequeueAfter).To(BeNumerically("<=", crdRecheckInterval))
	})

	It("are created once the CRD appears, without a restart", func() {
		Expect(ruleClient.Create(ctx, standInPrometheusRuleCRD())).To(Succeed())
		h.clock.Step(crdRecheckInterval + time.Second)
		Eventually(func(g Gomega) {
			h.reconcile()
			pr, err := rule()
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(pr.Labels).To(HaveKeyWithValue("release", "prometheus"))
			g.Expect(pr.Spec.Groups).NotTo(BeEmpty())
		}).WithTimeout(30 * time.Second).Should(Succeed())
		Expect(h.condition(deployv1alpha1.ConditionMonitoringReady).Status).To(Equal(metav1.ConditionTrue))
	})

	It("follow threshold changes", func() {
		before, err := rule()
		Expect(err).NotTo(HaveOccurred())
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Spec.Monitoring.PrometheusRule.Thresholds.ErrorRatePercent = 2
		})
		h.settle()
		after, err := rule()
		Expect(err).NotTo(HaveOccurred())
		Expect(after.Spec).NotTo(Equal(before.Spec))
	})

	It("are deleted when disabled", func() {
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Monitoring.PrometheusRule.Enabled = ptr.To(false) })
		h.settle()
		_, err := rule()
		Expect(apierrors.IsNotFound(err)).To(BeTrue())
		Expect(h.condition(deployv1alpha1.ConditionMonitoringReady).Reason).To(Equal(MonitoringDisabled))
	})
})

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
