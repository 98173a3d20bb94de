package controller

import (
	"context"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	"github.com/softfactory/release-operator/internal/cacheshape"
)

// releaseScope is what one reconcile pass knows: the release, the world read back from
// the API (never from status), and the facts each step found. Steps fill the facts in
// order; status.go turns them into conditions at the end.
type releaseScope struct {
	release  *deployv1alpha1.SoftFactoryRelease
	revision string
	now      time.Time

	// The world, read once at the start of the pass.
	deployments    map[deployv1alpha1.Color]*appsv1.Deployment
	replicaSets    []appsv1.ReplicaSet // of both colours' Deployments
	activeService  *corev1.Service
	previewService *corev1.Service
	jobs           map[string]*batchv1.Job
	pods           []corev1.Pod // the colours' API pods and the Jobs' pods (pods.go)
	previewSlices  []discoveryv1.EndpointSlice
	activeSlices   []discoveryv1.EndpointSlice // the serving colour's endpoints (serving_watch.go)
	// foreign are objects in the cache holding a name of this release that it does not
	// control; they are never written (reconcileOwnership).
	foreign []client.Object

	// activeColor is what the active Service selects; empty before the first promotion.
	activeColor deployv1alpha1.Color
	// target is the colour the current revision runs on, or is being deployed to.
	target deployv1alpha1.Color

	// Facts found by the steps.
	paused     bool
	waitingFor string // a safe point the release waits for, in words
	backup     jobFact
	migration  jobFact
	smokeTest  jobFact
	contract   contractFact
	// compatibilityCheck: the serving revision's smoke test against the migrated
	// database (compatibility.go).
	compatibilityCheck jobFact
	// serving: the serving colour, watched from the migration's start to the flip
	// (serving_watch.go); promoteForDegradedServing is policy Promote acting on it.
	serving                   servingFact
	promoteForDegradedServing bool
	// targetAvailability: how far the target colour (blue or green, whichever takes this
	// revision) is on its way to serving.
	targetAvailability availabilityFact
	promotion          promotionFact
	scaleDown          scaleDownFact
	failure            *failureFact
	conflict           *ownershipConflict // a name the release needs is held by another
	monitoring         monitoringFact
	scheduledBackup    scheduledBackupFact
	analysisRunning    bool          // a Prometheus analysis holds the next step
	promotedNow        bool          // the flip happened in this pass
	flipTook           time.Duration // how long the flip's API calls took
	supersededRev      string
	restorePhase       deployv1alpha1.RestorePhase    // of the current revision's restore, if any
	newOutcomes        []deployv1alpha1.ReleaseRecord // history records added or changed in this pass
}

// jobPhase is where one of the release's Jobs stands.
type jobPhase int

const (
	jobPending     jobPhase = iota // not created yet (an earlier gate holds it)
	jobNotRequired                 // the spec does not ask for this Job
	jobRunning
	jobSucceeded
	jobFailed
)

type jobFact struct {
	phase   jobPhase
	name    string
	message string
	issue   *podIssue // why a running Job's pod does not run, as it says
}

// availabilityPhase is where the target colour stands, reported as the API condition
// GreenAvailable (its documented name: "green" there means the target colour).
type availabilityPhase int

const (
	targetNotStarted availabilityPhase = iota
	targetProgressing
	targetWaitingForEndpoints
	targetAvailable
	targetDeadlineExceeded
)

type availabilityFact struct {
	phase          availabilityPhase
	readyReplicas  int32
	readyEndpoints int32
	wantReplicas   int32
	deadline       time.Time
	issue          *podIssue // why its pods do not run, as they say
}

type promotionPhase int

const (
	promotionNotYet promotionPhase = iota
	promotionAwaiting
	promotionDone
)

type promotionFact struct {
	phase      promotionPhase
	promotedAt time.Time
}

type scaleDownFact struct {
	pending bool
	at      time.Time
}

type monitoringFact struct {
	state   string // "", Created, Disabled, CRDMissing
	message string
}

// failureFact is why the current revision stopped for good. It is recorded in the
// release's history, so it survives a restart and is not acted on twice.
type failureFact struct {
	outcome deployv1alpha1.Outcome
	reason  string
	message string
}

// observe reads the world of one release: its Deployments and their ReplicaSets, Services,
// Jobs, pods and both Services' EndpointSlices. All reads go to the label-restricted cache.
func (r *SoftFactoryReleaseReconciler) observe(ctx context.Context, release *deployv1alpha1.SoftFactoryRelease) (*releaseScope, error) {
	s := &releaseScope{
		release:     release,
		revision:    revisionOf(release),
		now:         r.Clock.Now(),
		deployments: map[deployv1alpha1.Color]*appsv1.Deployment{},
		jobs:        map[string]*batchv1.Job{},
	}
	ns := release.Namespace
	for _, c := range []deployv1alpha1.Color{deployv1alpha1.Blue, deployv1alpha1.Green} {
		d := &appsv1.Deployment{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: release.DeploymentName(c)}, d); err != nil {
			if !apierrors.IsNotFound(err) {
				return nil, err
			}
			continue
		}
		if !metav1.IsControlledBy(d, release) {
			s.foreign = append(s.foreign, d)
			continue
		}
		s.deployments[c] = d
	}
	for _, want := range []struct {
		name string
		into **corev1.Service
	}{{release.ActiveServiceName(), &s.activeService}, {release.PreviewServiceName(), &s.previewService}} {
		name, into := want.name, want.into
		svc := &corev1.Service{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, svc); err != nil {
			if !apierrors.IsNotFound(err) {
				return nil, err
			}
			continue
		}
		if !metav1.IsControlledBy(svc, release) {
			s.foreign = append(s.foreign, svc)
			continue
		}
		*into = svc
	}

	jobs := &batchv1.JobList{}
	if err := r.List(ctx, jobs, client.InNamespace(ns), cacheshape.ChildrenOfRelease(release.Name)); err != nil {
		return nil, err
	}
	for i := range jobs.Items {
		// A Job another release or a user made with this release's labels is not one of
		// its steps: creating the step's Job finds it (claimExisting).
		if metav1.IsControlledBy(&jobs.Items[i], release) {
			s.jobs[jobs.Items[i].Name] = &jobs.Items[i]
		}
	}

	replicaSets := &appsv1.ReplicaSetList{}
	if err := r.List(ctx, replicaSets, client.InNamespace(ns), cacheshape.ChildrenOfRelease(release.Name)); err != nil {
		return nil, err
	}
	s.replicaSets = replicaSets.Items

	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.InNamespace(ns), cacheshape.ChildrenOfRelease(release.Name)); err != nil {
		return nil, err
	}
	s.pods = pods.Items

	slices := &discoveryv1.EndpointSliceList{}
	if err := r.List(ctx, slices, client.InNamespace(ns), cacheshape.SlicesOfService(release.PreviewServiceName())); err != nil {
		return nil, err
	}
	s.previewSlices = slices.Items
	// The active Service's slices carry its labels too (managed-by among them), so the
	// cache holds them: the serving colour's ready endpoints are read from them.
	activeSlices := &discoveryv1.EndpointSliceList{}
	if err := r.List(ctx, activeSlices, client.InNamespace(ns), cacheshape.SlicesOfService(release.ActiveServiceName())); err != nil {
		return nil, err
	}
	s.activeSlices = activeSlices.Items

	if s.activeService != nil {
		s.activeColor = deployv1alpha1.Color(s.activeService.Spec.Selector[deployv1alpha1.LabelColor])
	}
	s.target = s.chooseTarget()
	if err := r.syncRecords(ctx, s); err != nil {
		return nil, err
	}
	s.observeWithoutActing()
	return s, nil
}

// observeWithoutActing fills the facts from the world as it is, before any step acts.
// Steps that run overwrite them; steps that do not run (paused, settled, held at an
// earlier gate) leave a true picture for status.
func (s *releaseScope) observeWithoutActing() {
	rel := s.release
	rec := rel.Status.RevisionRecordOf(s.revision)
	if rec == nil {
		rec = &deployv1alpha1.RevisionRecord{}
	}
	s.backup = jobFactOfRecord(rec.Backup)
	if rel.Spec.Backup == nil || rel.Spec.Database == nil {
		s.backup = jobFact{phase: jobNotRequired}
	}
	s.migration = jobFactOfRecord(rec.Migration)
	if rel.Spec.Migration == nil {
		s.migration = jobFact{phase: jobNotRequired}
	}
	smokeJob, _ := s.smokeTestJob()
	s.smokeTest = jobFactOf(smokeJob)
	if rel.Spec.Strategy.BlueGreen.SmokeTest == nil {
		s.smokeTest = jobFact{phase: jobNotRequired}
	}
	s.compatibilityCheck = s.compatibilityCheckOfRecord()
	s.targetAvailability = s.measureTargetAvailability()
	s.observeContractFailure()
	s.serving = s.observeServingColour()
	if s.settled() {
		s.promotion.phase = promotionDone
	}
}

// chooseTarget picks the colour for the current revision: the active colour when it
// already runs it (settled), otherwise the other one. Before the first promotion it is
// the colour already running the revision, or blue.
func (s *releaseScope) chooseTarget() deployv1alpha1.Color {
	if s.activeColor != "" {
		if deploymentRevision(s.deployments[s.activeColor]) == s.revision {
			return s.activeColor
		}
		return s.activeColor.Other()
	}
	if deploymentRevision(s.deployments[deployv1alpha1.Green]) == s.revision {
		return deployv1alpha1.Green
	}
	return deployv1alpha1.Blue
}

// settled reports whether traffic already goes to the current revision.
func (s *releaseScope) settled() bool {
	return s.activeColor != "" && s.target == s.activeColor
}

// deploymentRevision is the release revision a colour's Deployment runs ("" if none).
func deploymentRevision(d *appsv1.Deployment) string {
	if d == nil {
		return ""
	}
	return d.Annotations[deployv1alpha1.RevisionAnnotation]
}

// wantReplicas is spec.replicas.
func (s *releaseScope) wantReplicas() int32 {
	return s.release.ReplicaCount()
}
