package controller

import (
	"context"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	"github.com/softfactory/release-operator/internal/monitoring"
)

// PrometheusRuleManager keeps a release's PrometheusRule as its spec says. It is an
// interface so the reconciler runs (and is tested) where the PrometheusRule CRD is absent.
type PrometheusRuleManager interface {
	// Reconcile creates, updates or deletes the rule; state is a reason of MonitoringReady
	// (deployv1alpha1.ReasonRuleReady, ...), message says what happened.
	Reconcile(ctx context.Context, release *deployv1alpha1.SoftFactoryRelease) (state, message string, err error)
	// Watch makes c watch the rules it owns once their CRD is served, at start or when
	// it appears later (then every release is enqueued once); mgr runs the check.
	Watch(mgr ctrl.Manager, c controller.Controller) error
}

// reconcileMonitoring keeps the runbook's alerts beside the release. A cluster without
// the PrometheusRule CRD does not hold the release back; the condition says so.
func (r *SoftFactoryReleaseReconciler) reconcileMonitoring(ctx context.Context, s *releaseScope) (stepResult, error) {
	if r.Monitoring == nil {
		return next(), nil
	}
	state, msg, err := r.Monitoring.Reconcile(ctx, s.release)
	if err != nil {
		// Alerts are optional: the runbook goes on, the condition says what failed, and
		// the step is tried again on a growing delay.
		s.monitoring = monitoringFact{state: deployv1alpha1.ReasonMonitoringFailed,
			message: fmt.Sprintf("The PrometheusRule %s could not be kept: %v. The release goes on without its alerts; the operator tries again.",
				s.release.PrometheusRuleName(), err)}
		var notControlled *monitoring.NotControlledError
		if !errors.As(err, &notControlled) {
			return nextAfter(optionalRetryAfter(s, deployv1alpha1.ConditionMonitoringReady)), nil
		}
		if c := conflictOfKind("PrometheusRule", notControlled.Rule, s.release); c != nil {
			s.monitoring = monitoringFact{state: deployv1alpha1.ReasonOwnershipConflict,
				message: fmt.Sprintf("%s. No alerts are kept for this release until it is deleted or renamed; the release goes on.", c.Error())}
		}
		return nextAfter(optionalRetryAfter(s, deployv1alpha1.ConditionMonitoringReady)), nil
	}
	s.monitoring = monitoringFact{state: state, message: msg}
	// No requeue while the CRD is missing: the manager's one check enqueues every
	// release when it appears.
	return next(), nil
}

func monitoringCondition(s *releaseScope) *metav1.Condition {
	if s.monitoring.state == "" {
		return nil
	}
	ok := s.monitoring.state == deployv1alpha1.ReasonRuleReady || s.monitoring.state == deployv1alpha1.ReasonDisabled
	c := cond(deployv1alpha1.ConditionMonitoringReady, ok, s.monitoring.state, "%s", s.monitoring.message)
	return &c
}
