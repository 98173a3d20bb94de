package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// The operator writes only objects its release controls (a controller ownerReference
// carrying the release's UID), as the Deployment controller and Argo Rollouts do: a
// name held by anything else stops the release with a condition naming the holder, and
// nothing is written to it. The one exception is a Service a user made by hand, which
// no controller controls: the release adopts it (controller reference, labels, an
// Event), so a hand-run app can move under the operator without a traffic gap.
//
// The cache only holds objects carrying the operator's managed-by label, so an object
// made outside the operator is invisible to it until a Create fails with AlreadyExists;
// then the live object is read through the uncached APIReader to name its owner.

// ownershipConflict is a name the release needs, held by an object it does not control.
type ownershipConflict struct {
	kind  string
	name  string
	owner string // in words: "it is controlled by SoftFactoryRelease shop", ...
}

func (c *ownershipConflict) Error() string {
	return fmt.Sprintf("%s %s is not this release's: %s, and the operator writes nothing to it", c.kind, c.name, c.owner)
}

// conflictOf is the ownership conflict err carries, or nil.
func conflictOf(err error) *ownershipConflict {
	var c *ownershipConflict
	if errors.As(err, &c) {
		return c
	}
	return nil
}

// conflictWith describes obj, which the release does not control, as a conflict. A
// Service without any controller is no conflict (nil): the release may adopt it.
func (r *SoftFactoryReleaseReconciler) conflictWith(obj client.Object, rel *deployv1alpha1.SoftFactoryRelease) *ownershipConflict {
	return conflictOfKind(r.kindOf(obj), obj, rel)
}

func conflictOfKind(kind string, obj client.Object, rel *deployv1alpha1.SoftFactoryRelease) *ownershipConflict {
	if metav1.IsControlledBy(obj, rel) {
		return nil
	}
	c := &ownershipConflict{kind: kind, name: obj.GetName()}
	switch ref := metav1.GetControllerOf(obj); {
	case ref != nil && ref.Kind == "SoftFactoryRelease" && ref.Name == rel.Name:
		// Same name, other UID: a release deleted and made again while its children
		// were still being collected.
		c.owner = fmt.Sprintf("it is controlled by an earlier SoftFactoryRelease %s (uid %s) that is being deleted", ref.Name, ref.UID)
	case ref != nil:
		c.owner = fmt.Sprintf("it is controlled by %s %s", ref.Kind, ref.Name)
	case c.kind == "Service":
		return nil
	default:
		c.owner = "it has no controller (it was made outside this release, by hand or by another tool)"
	}
	return c
}

func (r *SoftFactoryReleaseReconciler) kindOf(obj client.Object) string {
	if gvk, err := apiutil.GVKForObject(obj, r.Scheme()); err == nil {
		return gvk.Kind
	}
	return fmt.Sprintf("%T", obj)
}

// apiReader reads around the cache; without one set, the client is used.
func (r *SoftFactoryReleaseReconciler) apiReader() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
}

// claimExisting is called when creating obj failed with AlreadyExists. It reads the
// object that holds the name from the API server and returns it when the release
// controls it (a create the cache had not caught up with), adopts it when it is a
// Service no controller controls, and otherwise returns the ownership conflict.
func (r *SoftFactoryReleaseReconciler) claimExisting(ctx context.Context, s *releaseScope, obj client.Object) (client.Object, error) {
	live, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return nil, fmt.Errorf("cannot copy %T", obj)
	}
	if err := r.apiReader().Get(ctx, client.ObjectKeyFromObject(obj), live); err != nil {
		if apierrors.IsNotFound(err) {
			// Deleted since the create failed: the next pass creates it.
			return nil, fmt.Errorf("%s %s existed a moment ago and is gone; creating it again", r.kindOf(obj), obj.GetName())
		}
		return nil, err
	}
	if metav1.IsControlledBy(live, s.release) {
		return live, nil
	}
	if c := r.conflictWith(live, s.release); c != nil {
		return nil, c
	}
	// Only a Service without a controller gets here (conflictWith).
	svc, isService := live.(*corev1.Service)
	if !isService {
		return nil, fmt.Errorf("%s %s has no controller and only Services are adopted", r.kindOf(live), live.GetName())
	}
	return r.adoptService(ctx, s, svc)
}

// adoptService makes a Service a user made by hand the release's own: the release's
// controller reference and labels, and an Event. Its selector and ports are left for
// the step that owns them (the flip, for the active Service). The optimistic lock keeps
// it from taking a Service another controller claimed a moment ago.
func (r *SoftFactoryReleaseReconciler) adoptService(ctx context.Context, s *releaseScope, svc *corev1.Service) (*corev1.Service, error) {
	adopted := svc.DeepCopy()
	adopted.Labels = labels.Merge(adopted.Labels, labelsFor(s.release, deployv1alpha1.ComponentApp))
	if err := controllerutil.SetControllerReference(s.release, adopted, r.Scheme()); err != nil {
		return nil, err
	}
	if err := r.Patch(ctx, adopted, client.MergeFromWithOptions(svc, client.MergeFromWithOptimisticLock{})); err != nil {
		return nil, err
	}
	r.event(s, corev1.EventTypeNormal, deployv1alpha1.ReasonAdopted, "Adopt",
		"Adopted Service %s, which no controller controlled: the release now keeps it (and deletes it with the release)", svc.Name)
	return adopted, nil
}

// reconcileOwnership stops the release before it writes anything when a name it needs
// (a colour's Deployment, the active or preview Service) is held, in the cache, by an
// object it does not control: another release's Service of the same name, a release
// named <other>-preview. Objects made outside the operator are not in the cache; they
// are found when a create fails (claimExisting).
func (r *SoftFactoryReleaseReconciler) reconcileOwnership(_ context.Context, s *releaseScope) (stepResult, error) {
	for _, obj := range s.foreign {
		if c := r.conflictWith(obj, s.release); c != nil {
			return wait(), c
		}
	}
	return next(), nil
}

// conflictRecheckInterval is how often a release stopped by an ownership conflict looks
// again: the object in the way may be neither watched nor labelled, so no event says it
// has gone.
const conflictRecheckInterval = 30 * time.Second

// conflictMessage says what is in the way, and what to do about it.
func conflictMessage(c *ownershipConflict) string {
	return fmt.Sprintf("%s. The release stopped before writing it, and no traffic moved. "+
		"Give this release names of its own (metadata.name, spec.service.name), or delete %s %s if it is left over: the release then goes on by itself.",
		c.Error(), c.kind, c.name)
}
