package monitoring

import (
	"context"
	"fmt"
	"sync"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	"github.com/softfactory/release-operator/internal/objecthash"
	"github.com/softfactory/release-operator/internal/queuepriority"
)

// CRDRecheckInterval is how often a cluster without the PrometheusRule CRD is asked
// again, so rules appear (without a restart) once prometheus-operator is installed. One
// process-wide check asks; no release is requeued for it.
const CRDRecheckInterval = time.Minute

// RuleManager keeps each release's PrometheusRule (the controller's monitoring step). Whether the CRD is served
// is asked through discovery by one process-wide check, never per release: once at
// start, then every CRDRecheckInterval while it is missing. Once it is served, the
// controller watches the rules it owns and the rules are read from that watch's cache,
// so a pass costs no API read and a rule a user deletes or edits is put back at once.
type RuleManager struct {
	client    client.Client
	rules     client.Reader
	discovery ResourceDiscoverer
	clock     clock.WithTicker

	mu        sync.Mutex
	checked   bool
	installed bool

	// ruleCache holds the operator's rules; nil where no manager runs.
	ruleCache cache.Cache

	// Set by Watch; nil where no controller runs (tests that call Reconcile directly).
	controller controller.Controller
	ruleEvents source.Source
	releases   client.Reader
	watching   bool
}

// NewRuleManager makes the rule manager from the manager's clients, its CRD check
// ticking on clk. Rules are cached apart from the manager's cache, in namespaces (nil:
// all), and only those carrying the operator's managed-by label: a cluster running
// kube-prometheus has dozens of large rules that are none of the operator's business.
func NewRuleManager(mgr ctrl.Manager, clk clock.WithTicker, namespaces map[string]cache.Config) (*RuleManager, error) {
	dc, err := discovery.NewDiscoveryClientForConfigAndClient(mgr.GetConfig(), mgr.GetHTTPClient())
	if err != nil {
		return nil, err
	}
	// Nothing asks this cache for an informer before discovery has seen the CRD, so it
	// starts (with the manager) fine where prometheus-operator is not installed.
	// mgr.GetClient() keeps the kind out of the manager's own cache (cmd/main.go).
	rules, err := cache.New(mgr.GetConfig(), cache.Options{
		HTTPClient:        mgr.GetHTTPClient(),
		Scheme:            mgr.GetScheme(),
		Mapper:            mgr.GetRESTMapper(),
		DefaultNamespaces: namespaces,
		DefaultLabelSelector: labels.SelectorFromSet(labels.Set{
			deployv1alpha1.LabelManagedBy: deployv1alpha1.ManagedBy,
		}),
		DefaultTransform: cache.TransformStripManagedFields(),
	})
	if err != nil {
		return nil, err
	}
	if err := mgr.Add(rules); err != nil {
		return nil, err
	}
	m := NewRuleManagerWith(mgr.GetClient(), dc, clk)
	m.rules, m.ruleCache = rules, rules
	return m, nil
}

// NewRuleManagerWith is NewRuleManager with explicit clients and no manager (tests
// that call Reconcile directly): rules are read through c, and nothing watches them.
func NewRuleManagerWith(c client.Client, dc ResourceDiscoverer, clk clock.WithTicker) *RuleManager {
	return &RuleManager{client: c, rules: c, discovery: dc, clock: clk}
}

// Cache is the cache the rules are read from once their CRD is served; nil where no
// manager runs.
func (m *RuleManager) Cache() cache.Cache {
	return m.ruleCache
}

// Watch asks discovery now; if the CRD is served, the rules the controller owns are
// watched from the controller's start, as Owns() would. Otherwise the check is added to
// the manager and asks again every CRDRecheckInterval. An Owns() watch cannot be used
// for this kind: where its CRD is missing, the controller would never start.
func (m *RuleManager) Watch(mgr ctrl.Manager, c controller.Controller) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m.mu.Lock()
	m.controller, m.releases = c, mgr.GetCache()
	m.ruleEvents = source.Kind(m.ruleCache, &monitoringv1.PrometheusRule{},
		handler.TypedEnqueueRequestForOwner[*monitoringv1.PrometheusRule](mgr.GetScheme(), mgr.GetRESTMapper(),
			&deployv1alpha1.SoftFactoryRelease{}, handler.OnlyControllerOwner()))
	_, err := m.checkLocked(ctx)
	m.mu.Unlock()
	if err != nil {
		// Not fatal: the check asks again when the manager starts, or the first pass does.
		ctrl.Log.WithName("prometheusrule").Error(err, "Failed to ask discovery for the PrometheusRule CRD")
	}
	return mgr.Add(m)
}

// everyRelease enqueues every release once, at low priority so releases in flight go
// first: each gets its rule when the CRD appears, without a timer of its own.
func everyRelease(releases client.Reader) source.Source {
	return source.Func(func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		list := &deployv1alpha1.SoftFactoryReleaseList{}
		if err := releases.List(ctx, list); err != nil {
			return err
		}
		low := queuepriority.At(q, handler.LowPriority)
		for _, rel := range list.Items {
			low.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&rel)})
		}
		return nil
	})
}

// Start is the process-wide check, a manager Runnable: it asks discovery at once and
// then every CRDRecheckInterval, and returns as soon as the CRD is served.
func (m *RuleManager) Start(ctx context.Context) error {
	log := logf.FromContext(ctx).WithName("prometheusrule")
	ticker := m.clock.NewTicker(CRDRecheckInterval)
	defer ticker.Stop()
	for {
		installed, err := m.Recheck(ctx)
		if err != nil {
			log.Error(err, "Failed to ask discovery for the PrometheusRule CRD; asking again later", "after", CRDRecheckInterval)
		}
		if installed {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C():
		}
	}
}

// Recheck asks discovery again unless the CRD has been seen already.
func (m *RuleManager) Recheck(ctx context.Context) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.installed {
		return true, nil
	}
	return m.checkLocked(ctx)
}

// crdInstalled is what the last check found. Only a pass that runs before any check
// (discovery failed at set-up, or no manager runs the check) asks discovery itself.
func (m *RuleManager) crdInstalled(ctx context.Context) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.checked {
		return m.installed, nil
	}
	return m.checkLocked(ctx)
}

// checkLocked asks discovery. The first time the CRD is seen it starts the watch on the
// rules and, if this process had found it missing, enqueues every release once.
func (m *RuleManager) checkLocked(ctx context.Context) (bool, error) {
	ok, err := PrometheusRuleCRDInstalled(ctx, m.discovery)
	if err != nil {
		return false, err
	}
	wasMissing := m.checked
	m.checked = true
	if !ok {
		return false, nil
	}
	if m.controller != nil {
		if !m.watching {
			if err := m.controller.Watch(m.ruleEvents); err != nil {
				return false, err
			}
			m.watching = true
		}
		if wasMissing {
			if err := m.controller.Watch(everyRelease(m.releases)); err != nil {
				return false, err
			}
		}
	}
	m.installed = true
	return true, nil
}

// NotControlledError: the rule of the release's name exists and the release does not
// control it. Nothing is written to it.
type NotControlledError struct {
	Rule *monitoringv1.PrometheusRule
}

func (e *NotControlledError) Error() string {
	return fmt.Sprintf("PrometheusRule %s is not controlled by this release", e.Rule.Name)
}

// Reconcile creates, updates or deletes the release's PrometheusRule. state is a reason
// of the MonitoringReady condition, message says what happened.
func (m *RuleManager) Reconcile(ctx context.Context, rel *deployv1alpha1.SoftFactoryRelease) (string, string, error) {
	installed, err := m.crdInstalled(ctx)
	if err != nil {
		return "", "", err
	}
	if !installed {
		return deployv1alpha1.ReasonPrometheusRuleCRDMissing, "The PrometheusRule CRD (prometheus-operator) is not installed: alerts were skipped; the release goes on, and the rules are created once the CRD appears", nil
	}
	current := &monitoringv1.PrometheusRule{}
	err = m.rules.Get(ctx, client.ObjectKey{Namespace: rel.Namespace, Name: rel.PrometheusRuleName()}, current)
	if err != nil && !apierrors.IsNotFound(err) {
		return "", "", err
	}
	exists := err == nil

	if !rel.Spec.Monitoring.PrometheusRule.IsEnabled() {
		if exists && metav1.IsControlledBy(current, rel) {
			if err := m.client.Delete(ctx, current); client.IgnoreNotFound(err) != nil {
				return "", "", err
			}
		}
		return deployv1alpha1.ReasonDisabled, "spec.monitoring.prometheusRule.enabled is false: no alerts are kept for this release", nil
	}

	if exists && !metav1.IsControlledBy(current, rel) {
		return "", "", &NotControlledError{Rule: current}
	}
	desired := PrometheusRule(rel)
	hash := objecthash.Of(desired.Labels, desired.Spec)
	desired.Annotations = map[string]string{deployv1alpha1.SpecHashAnnotation: hash}
	msg := fmt.Sprintf("PrometheusRule %s carries the runbook's alerts", desired.Name)
	if !exists {
		if err := controllerutil.SetControllerReference(rel, desired, m.client.Scheme()); err != nil {
			return "", "", err
		}
		if err := m.client.Create(ctx, desired); err != nil {
			if !apierrors.IsAlreadyExists(err) {
				return "", "", err
			}
			// A rule the cache has not seen yet: ours, created moments ago (its watch
			// event brings another pass, which compares it), or one this release does
			// not control, read from the API server (the client does not cache rules)
			// to name its owner.
			live := &monitoringv1.PrometheusRule{}
			if err := m.client.Get(ctx, client.ObjectKeyFromObject(desired), live); err != nil {
				return "", "", err
			}
			if !metav1.IsControlledBy(live, rel) {
				return "", "", &NotControlledError{Rule: live}
			}
		}
		return deployv1alpha1.ReasonRuleReady, msg, nil
	}
	if ruleInSync(current, desired, hash) {
		return deployv1alpha1.ReasonRuleReady, msg, nil
	}
	patched := current.DeepCopy()
	patched.Labels = desired.Labels
	if patched.Annotations == nil {
		patched.Annotations = map[string]string{}
	}
	patched.Annotations[deployv1alpha1.SpecHashAnnotation] = hash
	patched.Spec = desired.Spec
	if err := m.client.Patch(ctx, patched, client.MergeFrom(current)); err != nil {
		return "", "", err
	}
	return deployv1alpha1.ReasonRuleReady, msg, nil
}

// ruleInSync says the rule carries the desired labels and spec. The spec itself is
// compared, not only the hash annotation, so a rule a user edited is put back.
func ruleInSync(current, desired *monitoringv1.PrometheusRule, hash string) bool {
	if current.Annotations[deployv1alpha1.SpecHashAnnotation] != hash {
		return false
	}
	return labels.SelectorFromSet(desired.Labels).Matches(labels.Set(current.Labels)) &&
		equality.Semantic.DeepEqual(current.Spec, desired.Spec)
}
