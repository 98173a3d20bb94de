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

package controller

import (
	"context"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	"github.com/softfactory/release-operator/internal/cacheshape"
	"github.com/softfactory/release-operator/internal/queuepriority"
	"github.com/softfactory/release-operator/internal/writememory"
)

// SoftFactoryReleaseReconciler drives a SoftFactoryRelease through the runbook: backup,
// migration, the target colour, verify, flip, scale-down. Every step is gated on facts read back
// from the cluster, so a restarted operator picks up exactly where the last one stopped.
type SoftFactoryReleaseReconciler struct {
	client.Client
	// APIReader reads around the cache, which holds only objects carrying the operator's
	// managed-by label, for the rare questions the cache cannot answer: who owns an
	// object in the way of a create, and is a recorded Job really gone. nil reads
	// through Client.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
	// Monitoring manages the PrometheusRule; nil turns the step off.
	Monitoring PrometheusRuleManager
	// Analyzer evaluates Prometheus checks; nil uses analysis.Evaluator.
	Analyzer Analyzer

	// statusWrites keeps a pass from acting on a cached release older than this
	// process's own last status write.
	statusWrites writememory.Newest[*deployv1alpha1.SoftFactoryRelease]
	// progressReports holds status writes that only report the new colour's progress
	// while the last write is recent.
	progressReports progressReports
	// deletedJobs keeps a pass from deleting again a Job the cache still lists.
	deletedJobs deletedJobs
	// retryNotices announces a refused retry annotation once, not on every pass.
	retryNotices retryNotices
	// endpointsLag times how long the preview's endpoints lag a fully available target.
	endpointsLag endpointsLag
}

// conflictRetryDelay is how soon a pass whose status write lost an optimistic-lock race
// runs again, on the newer release the watch is bringing.
const conflictRetryDelay = 100 * time.Millisecond

// step is one gated runbook step. It records what it found in the scope and says whether
// the next step may run (proceed) and when to look again (requeueAfter, 0 for "when
// something we watch changes").
type step func(ctx context.Context, s *releaseScope) (stepResult, error)

type stepResult struct {
	proceed      bool
	requeueAfter time.Duration
}

func next() stepResult                   { return stepResult{proceed: true} }
func wait() stepResult                   { return stepResult{} }
func waitFor(d time.Duration) stepResult { return stepResult{requeueAfter: max(d, time.Second)} }
func nextAfter(d time.Duration) stepResult {
	return stepResult{proceed: true, requeueAfter: max(d, time.Second)}
}

// The verbs are those the reconciler's calls use, no more (rbac_test.go holds them to
// it): it reads releases and writes only their status, and changes its children with
// patches, never with update.
// +kubebuilder:rbac:groups=deploy.softfactory.io,resources=softfactoryreleases,verbs=get;list;watch
// +kubebuilder:rbac:groups=deploy.softfactory.io,resources=softfactoryreleases/status,verbs=patch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=apps,resources=replicasets,verbs=list;watch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=batch,resources=cronjobs,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=core,resources=pods,verbs=list;watch
// +kubebuilder:rbac:groups=core,resources=services,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create
// +kubebuilder:rbac:groups=monitoring.coreos.com,resources=prometheusrules,verbs=get;list;watch;create;patch;delete

// Reconcile runs one pass: read the release and its world, run the gated steps in
// order, then write status once (and only if it changed).
func (r *SoftFactoryReleaseReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logf.FromContext(ctx)

	release := &deployv1alpha1.SoftFactoryRelease{}
	if err := r.Get(ctx, req.NamespacedName, release); err != nil {
		if apierrors.IsNotFound(err) {
			forgetRelease(req.Namespace, req.Name)
			r.statusWrites.Forget(req.NamespacedName)
			r.progressReports.Forget(req.NamespacedName)
			r.endpointsLag.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	release = r.statusWrites.Of(release)
	if !release.DeletionTimestamp.IsZero() {
		// Children carry owner references and go with the release; the backup volume
		// is the user's and is never touched.
		return ctrl.Result{}, nil
	}
	base := release.DeepCopy()

	s, err := r.observe(ctx, release)
	if err != nil {
		return ctrl.Result{}, err
	}
	result, stepErr := r.runSteps(ctx, s, r.stepsFor(s))

	updateStatus(s, stepErr)
	if hold := r.progressReports.holdFor(req.NamespacedName, s.now, &base.Status, &release.Status); hold > 0 {
		// Only the new colour's progress moved, and the last report is recent: this pass
		// reports nothing, and the one after the hold writes whatever is then true.
		release.Status = base.Status
		if result.RequeueAfter == 0 || hold < result.RequeueAfter {
			result.RequeueAfter = hold
		}
	}
	if !equality.Semantic.DeepEqual(base.Status, release.Status) {
		// The optimistic lock turns a write based on an outdated read into a conflict
		// and a retry, never into a status that forgets what another pass recorded.
		if err := r.Status().Patch(ctx, release, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
			if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
				return ctrl.Result{RequeueAfter: conflictRetryDelay}, nil
			}
			return ctrl.Result{}, err
		}
		r.statusWrites.Wrote(base.ResourceVersion, release)
		r.progressReports.Wrote(req.NamespacedName, s.now)
		// The watch can deliver the write before it was recorded; then no informer event
		// is left to drop the copy, so look at the cache once now.
		if cached := (&deployv1alpha1.SoftFactoryRelease{}); r.Get(ctx, req.NamespacedName, cached) == nil {
			r.statusWrites.Delivered(cached)
		}
		log.V(1).Info("Updated status", "phase", release.Status.Phase, "revision", s.revision)
	}
	// Transitions are announced once the status that records them is stored, so a pass
	// that has to be retried never announces them twice.
	r.recordTransitions(base, release)
	recordMetrics(s, base)
	return result, stepErr
}

// stepsFor lists the steps of this pass. A release already serving its revision only
// keeps things tidy; one in flight walks the runbook.
func (r *SoftFactoryReleaseReconciler) stepsFor(s *releaseScope) []step {
	steps := []step{r.reconcileMonitoring, r.reconcileScheduledBackup, r.reconcilePaused, r.reconcileOwnership, r.reconcileJobRetention}
	if s.settled() {
		return append(steps, r.reconcileRetry, r.reconcileRestores, r.reconcileActiveDeployment, r.reconcilePreviewService, r.reconcileActiveService,
			r.reconcilePostPromotionAnalysis, r.reconcileScaleDown, r.reconcileContract)
	}
	return append(steps,
		r.reconcileRetry,
		r.reconcileStoppedRelease,
		// Before any step that may hold the pass (a running migration does), so the
		// serving colour is judged on every pass of the watch window.
		r.reconcileServingColour,
		r.reconcileRestores,
		r.reconcileRollbackPastContract,
		r.reconcileSafePoint,
		r.reconcileBackup,
		r.reconcileMigration,
		r.reconcileCompatibilityCheck,
		r.reconcileTargetDeployment,
		r.reconcilePreviewService,
		r.reconcileActiveService,
		r.reconcileTargetAvailability,
		r.reconcileSmokeTest,
		r.reconcilePrePromotionAnalysis,
		r.reconcileCompatibilityGate,
		r.reconcilePromotion,
		r.reconcilePostPromotionAnalysis,
		r.reconcileScaleDown,
		r.reconcileContract,
	)
}

// runSteps runs steps in order until one holds the release, and merges their requeues
// (the soonest wins).
func (r *SoftFactoryReleaseReconciler) runSteps(ctx context.Context, s *releaseScope, steps []step) (ctrl.Result, error) {
	var result ctrl.Result
	for _, st := range steps {
		res, err := st(ctx, s)
		if c := conflictOf(err); c != nil {
			// Not an error to retry at once: the release stops, says who holds the name,
			// and looks again later (the holder may be neither labelled nor watched).
			s.conflict = c
			return ctrl.Result{RequeueAfter: conflictRecheckInterval}, nil
		}
		if err != nil {
			return result, err
		}
		if res.requeueAfter > 0 && (result.RequeueAfter == 0 || res.requeueAfter < result.RequeueAfter) {
			result.RequeueAfter = res.requeueAfter
		}
		if !res.proceed {
			break
		}
	}
	return result, nil
}

// SetupWithManager watches the release and everything it owns, so each step wakes up
// on the event that opens its gate instead of polling.
func (r *SoftFactoryReleaseReconciler) SetupWithManager(mgr ctrl.Manager, maxConcurrentReconciles int) error {
	ctx := context.Background()
	if err := cacheshape.IndexFields(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	// statusWrites drops its copy of a written release once the informer has it.
	releases, err := mgr.GetCache().GetInformer(ctx, &deployv1alpha1.SoftFactoryRelease{})
	if err != nil {
		return err
	}
	if _, err := releases.AddEventHandler(r.statusWrites.EventHandler()); err != nil {
		return err
	}
	b := ctrl.NewControllerManagedBy(mgr).
		// For names the kind reconciled (Owns and the logs need it), but its events come
		// through the watch below, which queues a user's change ahead of passes that only
		// follow children.
		For(&deployv1alpha1.SoftFactoryRelease{}, builder.WithPredicates(predicate.NewPredicateFuncs(func(client.Object) bool { return false }))).
		Watches(&deployv1alpha1.SoftFactoryRelease{}, queuepriority.CreatesAndUpdates(&handler.EnqueueRequestForObject{}, changePriority),
			builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		// A colour's Deployment becoming available and the preview Service's endpoints
		// becoming ready open the promotion gate, and the serving colour losing ready pods
		// may stop the release or promote the new one (serving_watch.go): those passes
		// jump the queue.
		Watches(&appsv1.Deployment{}, queuepriority.UpdatesWhere(handler.EnqueueRequestForOwner(mgr.GetScheme(), mgr.GetRESTMapper(),
			&deployv1alpha1.SoftFactoryRelease{}, handler.OnlyControllerOwner()), gatePriority, deploymentReadinessMoved)).
		// Its ReplicaSet becoming available opens the gate a moment before the Deployment
		// says so; every other ReplicaSet change reaches the release through its
		// Deployment, so only that one is watched for.
		Watches(&appsv1.ReplicaSet{}, queuepriority.UpdatesWhere(handler.EnqueueRequestsFromMapFunc(releaseOfLabelledObject), gatePriority, replicaSetBecameSaturated),
			builder.WithPredicates(predicate.Funcs{
				CreateFunc:  func(event.CreateEvent) bool { return false },
				UpdateFunc:  func(e event.UpdateEvent) bool { return replicaSetBecameSaturated(e.ObjectOld, e.ObjectNew) },
				DeleteFunc:  func(event.DeleteEvent) bool { return false },
				GenericFunc: func(event.GenericEvent) bool { return false },
			})).
		Owns(&batchv1.Job{}).
		// A pod that cannot start, a Job's container that started, and a pod gone (a
		// restore waits until no pod of the release can write) change what a pass reports
		// and decides (pods.go); other pod changes reach the release through its
		// ReplicaSets and EndpointSlices.
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(releaseOfLabelledObject),
			builder.WithPredicates(podEvents)).
		Owns(&batchv1.CronJob{}).
		Owns(&corev1.Service{}).
		// EndpointSlices belong to the preview and active Services, not to the release;
		// they carry the Service's labels, among them the release's instance label.
		Watches(&discoveryv1.EndpointSlice{}, queuepriority.UpdatesWhere(handler.EnqueueRequestsFromMapFunc(releaseOfLabelledObject), gatePriority, sliceReadyEndpointsMoved)).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(maxConcurrentReconciles, 1)}).
		Named("softfactoryrelease")
	c, err := b.Build(r)
	if err != nil {
		return err
	}
	// PrometheusRules are watched only once their CRD is served, possibly long after
	// start, so that watch is added to the built controller rather than to b.
	if r.Monitoring != nil {
		return r.Monitoring.Watch(mgr, c)
	}
	return nil
}

// releaseOfLabelledObject maps an object carrying the release's instance label to it.
func releaseOfLabelledObject(_ context.Context, obj client.Object) []reconcile.Request {
	labels := obj.GetLabels()
	if labels[deployv1alpha1.LabelManagedBy] != deployv1alpha1.ManagedBy || labels[deployv1alpha1.LabelInstance] == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: obj.GetNamespace(), Name: labels[deployv1alpha1.LabelInstance]}}}
}
