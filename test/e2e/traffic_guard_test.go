//go:build e2e

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

package e2e

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// trafficGuard is the suite's independent witness of the promise the flip gate makes:
// the active Service never selects a colour that has no ready endpoint. It watches one
// namespace's Services, Pods and EndpointSlices with its own informers (nothing shared
// with the operator or the specs) and checks, on every change it sees, that
//
//   - every active Service selects at least one Ready pod that is not terminating, and
//   - once an active Service's EndpointSlices have listed a ready endpoint, they never
//     list none again.
//
// Every breach is recorded with the time and the world as the guard saw it.
type trafficGuard struct {
	namespace string
	stop      chan struct{}

	services corelisters.ServiceLister
	pods     corelisters.PodLister
	slices   discoverylisters.EndpointSliceLister

	mu            sync.Mutex
	violations    []string
	lastViolation string
	// served are the active Services whose EndpointSlices have listed a ready endpoint.
	served map[string]bool
	// colours is each active Service's colour history, as the guard saw it change.
	colours map[string][]string
	checks  int
}

// startTrafficGuard starts watching namespace; Stop ends it.
func startTrafficGuard(cs kubernetes.Interface, namespace string) *trafficGuard {
	GinkgoHelper()
	g := &trafficGuard{
		namespace: namespace,
		stop:      make(chan struct{}),
		served:    map[string]bool{},
		colours:   map[string][]string{},
	}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(namespace))
	svcInformer := factory.Core().V1().Services()
	podInformer := factory.Core().V1().Pods()
	sliceInformer := factory.Discovery().V1().EndpointSlices()
	g.services, g.pods, g.slices = svcInformer.Lister(), podInformer.Lister(), sliceInformer.Lister()
	watched := []cache.SharedIndexInformer{svcInformer.Informer(), podInformer.Informer(), sliceInformer.Informer()}
	for _, inf := range watched {
		_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { g.check() },
			UpdateFunc: func(any, any) { g.check() },
			DeleteFunc: func(any) { g.check() },
		})
		Expect(err).NotTo(HaveOccurred())
	}
	factory.Start(g.stop)
	for typ, ok := range factory.WaitForCacheSync(g.stop) {
		Expect(ok).To(BeTrue(), "the traffic guard's %v informer did not sync", typ)
	}
	return g
}

// Stop ends the watch. It must come before the namespace is torn down, when pods and
// Services go away in no particular order.
func (g *trafficGuard) Stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.stop:
	default:
		close(g.stop)
	}
}

// Violations are the breaches seen so far.
func (g *trafficGuard) Violations() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.violations)
}

// Colours is the colour history of the active Service name, as the guard saw it.
func (g *trafficGuard) Colours(name string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.colours[name])
}

// Checks is how many times the guard looked, to tell a quiet guard from a blind one.
func (g *trafficGuard) Checks() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.checks
}

// isActiveService tells the active Service from its preview twin (named
// PreviewServiceName, "<active>-preview") among the operator's Services.
func isActiveService(svc *corev1.Service) bool {
	return svc.Labels[deployv1alpha1.LabelManagedBy] == deployv1alpha1.ManagedBy &&
		svc.Spec.Selector[deployv1alpha1.LabelColor] != "" &&
		!strings.HasSuffix(svc.Name, "-preview")
}

func (g *trafficGuard) check() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.stop:
		return
	default:
	}
	g.checks++
	services, err := g.services.List(labels.Everything())
	if err != nil {
		g.violations = append(g.violations, fmt.Sprintf("listing Services: %v", err))
		return
	}
	for _, svc := range services {
		if !isActiveService(svc) || svc.DeletionTimestamp != nil {
			continue
		}
		colour := svc.Spec.Selector[deployv1alpha1.LabelColor]
		if h := g.colours[svc.Name]; len(h) == 0 || h[len(h)-1] != colour {
			g.colours[svc.Name] = append(h, colour)
		}
		readyPods, podSummary := g.readyPods(svc)
		if readyPods == 0 {
			g.violate("Service %s selects colour %s, which has no ready pod (pods: %s)", svc.Name, colour, podSummary)
		}
		readyEndpoints, sliceSummary := g.readyEndpoints(svc)
		switch {
		case readyEndpoints > 0:
			g.served[svc.Name] = true
		case g.served[svc.Name]:
			g.violate("Service %s (colour %s) has no ready endpoint left (EndpointSlices: %s)", svc.Name, colour, sliceSummary)
		}
	}
}

func (g *trafficGuard) violate(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	// One breach is reported once, however many events repeat it.
	if msg == g.lastViolation {
		return
	}
	g.lastViolation = msg
	g.violations = append(g.violations, time.Now().Format("15:04:05.000")+" "+msg)
}

// readyPods counts the pods svc selects that are Ready and not terminating.
func (g *trafficGuard) readyPods(svc *corev1.Service) (int, string) {
	pods, err := g.pods.List(labels.SelectorFromSet(svc.Spec.Selector))
	if err != nil {
		return 0, err.Error()
	}
	ready := 0
	var summary []string
	for _, p := range pods {
		ok := p.DeletionTimestamp == nil && podReady(p)
		if ok {
			ready++
		}
		summary = append(summary, fmt.Sprintf("%s ready=%t deleting=%t", p.Name, podReady(p), p.DeletionTimestamp != nil))
	}
	if len(summary) == 0 {
		return 0, "none"
	}
	return ready, strings.Join(summary, ", ")
}

// readyEndpoints counts the ready endpoints in svc's EndpointSlices. An endpoint without
// a ready condition counts as ready, as the EndpointSlice API says.
func (g *trafficGuard) readyEndpoints(svc *corev1.Service) (int, string) {
	sl, err := g.slices.List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc.Name}))
	if err != nil {
		return 0, err.Error()
	}
	ready := 0
	var summary []string
	for _, s := range sl {
		for _, ep := range s.Endpoints {
			ok := ep.Conditions.Ready == nil || *ep.Conditions.Ready
			if ok {
				ready++
			}
			name := "?"
			if ep.TargetRef != nil {
				name = ep.TargetRef.Name
			}
			summary = append(summary, fmt.Sprintf("%s/%s ready=%t", s.Name, name, ok))
		}
	}
	if len(summary) == 0 {
		return 0, "none"
	}
	return ready, strings.Join(summary, ", ")
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// The guard is only worth its silence if it speaks up: shown a Service like the
// operator's active one that selects a colour with no pod, it must report it.
var _ = Describe("The traffic guard", Serial, func() {
	It("reports an active Service that selects a colour with no ready pod", func(ctx SpecContext) {
		namespace := createNamespace(ctx, "e2e-guard")
		guard := startTrafficGuard(clientset, namespace)
		DeferCleanup(guard.Stop)

		Expect(k8s.Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "nowhere", Namespace: namespace, Labels: map[string]string{
				deployv1alpha1.LabelManagedBy: deployv1alpha1.ManagedBy, deployv1alpha1.LabelComponent: deployv1alpha1.ComponentApp,
			}},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{deployv1alpha1.LabelInstance: "nowhere", deployv1alpha1.LabelColor: "blue"},
				Ports:    []corev1.ServicePort{{Name: "http", Port: 80}},
			},
		})).To(Succeed())
		Eventually(guard.Violations).WithContext(ctx).Should(ContainElement(
			ContainSubstring("Service nowhere selects colour blue, which has no ready pod")))
	})
})
