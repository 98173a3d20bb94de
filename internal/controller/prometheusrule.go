package controller

import (
	"context"
	"fmt"
	"sync"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/discovery"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	"github.com/softfactory/release-operator/internal/monitoring"
)

// Monitoring states, the reasons of the MonitoringReady condition.
const (
	MonitoringCreated    = "RuleReady"
	MonitoringDisabled   = "Disabled"
	MonitoringCRDMissing = "PrometheusRuleCRDMissing"
)

// crdRecheckInterval is how often a cluster without the PrometheusRule CRD is asked
// again, so rules appear (without a restart) once prometheus-operator is installed.
const crdRecheckInterval = time.Minute

// prometheusRuleManager keeps each release's PrometheusRule. Whether the CRD is served
// is asked through discovery and remembered for a minute, so a thousand releases do not
// cost a thousand discovery calls.
type prometheusRuleManager struct {
	client    client.Client
	discovery monitoring.ResourceDiscoverer
	clock     clock.PassiveClock

	mu        sync.Mutex
	installed bool
	checkedAt time.Time
}

// NewPrometheusRuleManager makes the PrometheusRule manager from the manager's clients.
func NewPrometheusRuleManager(mgr ctrl.Manager) PrometheusRuleManager {
	dc, err := discovery.NewDiscoveryClientForConfig(mgr.GetConfig())
	if err != nil {
		// Only an invalid rest.Config gets here, and the manager was made from it.
		panic(err)
	}
	return NewPrometheusRuleManagerWith(mgr.GetClient(), dc, clock.RealClock{})
}

// NewPrometheusRuleManagerWith is NewPrometheusRuleManager with explicit clients (tests).
func NewPrometheusRuleManagerWith(c client.Client, dc monitoring.ResourceDiscoverer, clk clock.PassiveClock) PrometheusRuleManager {
	return &prometheusRuleManager{client: c, discovery: dc, clock: clk}
}

// Watch adds nothing: an Owns() watch on a kind whose CRD is missing would stop the
// controller from starting. Rules are brought back in line on every pass instead.
func (m *prometheusRuleManager) Watch(b *builder.Builder) *builder.Builder { return b }

func (m *prometheusRuleManager) crdInstalled(ctx context.Context) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.installed || (!m.checkedAt.IsZero() && m.clock.Since(m.checkedAt) < crdRecheckInterval) {
		return m.installed, nil
	}
	ok, err := monitoring.PrometheusRuleCRDInstalled(ctx, m.discovery)
	if err != nil {
		return false, err
	}
	m.installed, m.checkedAt = ok, m.clock.Now()
	return ok, nil
}

// Reconcile creates, updates or deletes the release's PrometheusRule.
func (m *prometheusRuleManager) Reconcile(ctx context.Context, rel *deployv1alpha1.SoftFactoryRelease) (string, string, error) {
	installed, err := m.crdInstalled(ctx)
	if err != nil {
		return "", "", err
	}
	if !installed {
		return MonitoringCRDMissing, "The PrometheusRule CRD (prometheus-operator) is not installed: alerts were skipped; the release goes on, and the rules are created once the CRD appears", nil
	}
	current := &monitoringv1.PrometheusRule{}
	err = m.client.Get(ctx, client.ObjectKey{Namespace: rel.Namespace, Name: rel.PrometheusRuleName()}, current)
	if err != nil && !apierrors.IsNotFound(err) {
		return "", "", err
	}
	exists := err == nil

	if !rel.Spec.Monitoring.PrometheusRule.IsEnabled() {
		if exists && metav1IsControlledBy(current, rel) {
			if err := m.client.Delete(ctx, current); client.IgnoreNotFound(err) != nil {
				return "", "", err
			}
		}
		return MonitoringDisabled, "spec.monitoring.prometheusRule.enabled is false: no alerts are kept for this release", nil
	}

	desired := monitoring.PrometheusRule(rel)
	hash := hashOf(desired.Labels, desired.Spec)
	desired.Annotations = map[string]string{specHashAnnotation: hash}
	msg := fmt.Sprintf("PrometheusRule %s carries the runbook's alerts", desired.Name)
	if !exists {
		if err := controllerutil.SetControllerReference(rel, desired, m.client.Scheme()); err != nil {
			return "", "", err
		}
		if err := m.client.Create(ctx, desired); err != nil {
			return "", "", err
		}
		return MonitoringCreated, msg, nil
	}
	if current.Annotations[specHashAnnotation] == hash {
		return MonitoringCreated, msg, nil
	}
	patched := current.DeepCopy()
	patched.Labels = desired.Labels
	if patched.Annotations == nil {
		patched.Annotations = map[string]string{}
	}
	patched.Annotations[specHashAnnotation] = hash
	patched.Spec = desired.Spec
	if err := m.client.Patch(ctx, patched, client.MergeFrom(current)); err != nil {
		return "", "", err
	}
	return MonitoringCreated, msg, nil
}

func metav1IsControlledBy(obj client.Object, owner client.Object) bool {
	for _, ref := range obj.GetOwnerReferences() {
		if ref.Controller != nil && *ref.Controller && ref.UID == owner.GetUID() {
			return true
		}
	}
	return false
}
