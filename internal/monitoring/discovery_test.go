/*
Copyright 2026.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package monitoring

import (
	"context"
	"errors"
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	fakediscovery "k8s.io/client-go/discovery/fake"
	clienttesting "k8s.io/client-go/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	corev1 "k8s.io/api/core/v1"
)

var _ = Describe("PrometheusRuleCRDInstalled", func() {
	It("returns discovery errors other than not-found, so the caller retries instead of skipping", func() {
		fake := &fakediscovery.FakeDiscovery{Fake: &clienttesting.Fake{}}
		fake.PrependReactor("get", "resource", func(clienttesting.Action) (bool, runtime.Object, error) {
			return true, nil, errors.New("connection refused")
		})
		installed, err := PrometheusRuleCRDInstalled(context.Background(), fake)
		Expect(err).To(MatchError(ContainSubstring("connection refused")))
		Expect(installed).To(BeFalse())
	})

	It("says no when the group is served without prometheusrules", func() {
		fake := &fakediscovery.FakeDiscovery{Fake: &clienttesting.Fake{Resources: []*metav1.APIResourceList{{
			GroupVersion: "monitoring.coreos.com/v1",
			APIResources: []metav1.APIResource{{Name: "servicemonitors", Kind: "ServiceMonitor", Namespaced: true}},
		}}}}
		Expect(PrometheusRuleCRDInstalled(context.Background(), fake)).To(BeFalse())
	})

	// Against a real API server: the CRD is absent, then installed while the same
	// discovery client keeps being asked, as a running operator would.
	Context("against a real API server", Ordered, func() {
		var (
			testEnv *envtest.Environment
			c       client.Client
			dc      *discovery.DiscoveryClient
		)

		BeforeAll(func() {
			// Fail, never skip: make test sets KUBEBUILDER_ASSETS; without it envtest would
			// look for binaries no machine here can download.
			Expect(os.Getenv("KUBEBUILDER_ASSETS")).NotTo(BeEmpty(),
				"KUBEBUILDER_ASSETS is not set: run `make test`, or export KUBEBUILDER_ASSETS=$(hack/install-controlplane.sh envtest)")
			testEnv = &envtest.Environment{}
			cfg, err := testEnv.Start()
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(testEnv.Stop)

			scheme := runtime.NewScheme()
			Expect(apiextensionsv1.AddToScheme(scheme)).To(Succeed())
			Expect(monitoringv1.AddToScheme(scheme)).To(Succeed())
			Expect(corev1.AddToScheme(scheme)).To(Succeed())
			c, err = client.New(cfg, client.Options{Scheme: scheme})
			Expect(err).NotTo(HaveOccurred())
			dc, err = discovery.NewDiscoveryClientForConfig(cfg)
			Expect(err).NotTo(HaveOccurred())
		})

		It("says no while the CRD is not installed", func(ctx SpecContext) {
			Expect(PrometheusRuleCRDInstalled(ctx, dc)).To(BeFalse())
		})

		It("says yes once the CRD is installed, without a new client, and the built rule is accepted", func(ctx SpecContext) {
			Expect(c.Create(ctx, prometheusRuleCRD())).To(Succeed())
			Eventually(func(g Gomega) bool {
				installed, err := PrometheusRuleCRDInstalled(ctx, dc)
				g.Expect(err).NotTo(HaveOccurred())
				return installed
			}).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(BeTrue())

			Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "prod"}})).To(Succeed())
			Expect(c.Create(ctx, PrometheusRule(newRelease()))).To(Succeed())
			stored := &monitoringv1.PrometheusRule{}
			Expect(c.Get(ctx, client.ObjectKey{Namespace: "prod", Name: "shop-alerts"}, stored)).To(Succeed())
			Expect(stored.Spec).To(Equal(PrometheusRule(newRelease()).Spec), "the rule survives a round trip through the API server")
		})
	})
})

// prometheusRuleCRD is a stand-in for prometheus-operator's CRD: the same group, version,
// names and scope, with an open schema (the real one is generated from the Go types and
// ships with prometheus-operator, which no machine here can download).
func prometheusRuleCRD() *apiextensionsv1.CustomResourceDefinition {
	gvr := schema.GroupVersionResource{Group: monitoringv1.SchemeGroupVersion.Group, Version: "v1", Resource: monitoringv1.PrometheusRuleName}
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: gvr.Resource + "." + gvr.Group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: gvr.Group,
			Names: apiextensionsv1.CustomResourceDefinitionNames{
				Plural: gvr.Resource, Singular: "prometheusrule", Kind: monitoringv1.PrometheusRuleKind, ListKind: "PrometheusRuleList",
			},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: gvr.Version, Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"spec": {Type: "object", XPreserveUnknownFields: new(true)},
					},
				}},
			}},
		},
	}
}
