package controller

import (
	"context"
	"encoding/json"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// reconcilePreviewService points the preview Service at the target colour, so its
// EndpointSlices show how many of the target's pods are ready. Nothing user-facing uses it.
func (r *SoftFactoryReleaseReconciler) reconcilePreviewService(ctx context.Context, s *releaseScope) (stepResult, error) {
	desired := buildPreviewService(s.release, s.target)
	svc, err := r.ensureService(ctx, s, s.previewService, desired)
	if err != nil {
		return wait(), err
	}
	s.previewService = svc
	return next(), nil
}

// reconcileActiveService keeps the active Service's ports, type and labels as the spec
// says, always keeping the colour it selects: only the flip moves traffic. Before the
// first promotion there is no active Service; the flip creates it. A Service adopted
// from a user selects no colour yet: it keeps the user's selector until the flip.
func (r *SoftFactoryReleaseReconciler) reconcileActiveService(ctx context.Context, s *releaseScope) (stepResult, error) {
	if s.activeService == nil || s.activeColor == "" {
		return next(), nil
	}
	desired := buildActiveService(s.release, s.activeColor)
	svc, err := r.ensureService(ctx, s, s.activeService, desired)
	if err != nil {
		return wait(), err
	}
	s.activeService = svc
	return next(), nil
}

// ensureService creates desired, or patches current's labels, type, ports and selector
// when they differ from desired. Fields the API server owns (clusterIP, nodePorts) stay.
func (r *SoftFactoryReleaseReconciler) ensureService(ctx context.Context, s *releaseScope, current, desired *corev1.Service) (*corev1.Service, error) {
	if current == nil {
		if err := controllerutil.SetControllerReference(s.release, desired, r.Scheme()); err != nil {
			return nil, err
		}
		err := r.Create(ctx, desired)
		if err == nil {
			return desired, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, err
		}
		// Not in the cache, yet there: ours not cached yet, a Service made by hand (adopted), or another's.
		claimed, err := r.claimExisting(ctx, s, desired)
		if err != nil {
			return nil, err
		}
		current = claimed.(*corev1.Service)
	}
	if servicePortsMatch(current.Spec.Ports, desired.Spec.Ports) &&
		current.Spec.Type == desired.Spec.Type &&
		equality.Semantic.DeepEqual(current.Spec.Selector, desired.Spec.Selector) &&
		labels.SelectorFromSet(desired.Labels).Matches(labels.Set(current.Labels)) {
		return current, nil
	}
	patched := current.DeepCopy()
	patched.Labels = labels.Merge(patched.Labels, desired.Labels)
	patched.Spec.Type = desired.Spec.Type
	patched.Spec.Selector = desired.Spec.Selector
	patched.Spec.Ports = mergePorts(current.Spec.Ports, desired.Spec.Ports, desired.Spec.Type != corev1.ServiceTypeClusterIP)
	if err := r.Patch(ctx, patched, client.MergeFrom(current)); err != nil {
		return nil, err
	}
	return patched, nil
}

// flip moves traffic to colour to: it patches only the colour key of the active
// Service's selector (creating the Service on the first release) and records when, on
// the Service. It is a no-op when the selector already says so.
func (r *SoftFactoryReleaseReconciler) flip(ctx context.Context, s *releaseScope, to deployv1alpha1.Color) error {
	at := s.now.UTC().Format(time.RFC3339Nano)
	started := time.Now()
	created := false
	if s.activeService == nil {
		svc := buildActiveService(s.release, to)
		svc.Annotations = map[string]string{deployv1alpha1.PromotedAtAnnotation: at}
		if err := controllerutil.SetControllerReference(s.release, svc, r.Scheme()); err != nil {
			return err
		}
		switch err := r.Create(ctx, svc); {
		case err == nil:
			s.activeService, created = svc, true
		case apierrors.IsAlreadyExists(err):
			// A Service made by hand is adopted here and flipped below; another
			// release's stops this one (claimExisting).
			claimed, err := r.claimExisting(ctx, s, svc)
			if err != nil {
				return err
			}
			s.activeService = claimed.(*corev1.Service)
		default:
			return err
		}
	}
	switch {
	case created:
	case s.activeService.Spec.Selector[deployv1alpha1.LabelColor] == string(to):
		return nil
	case s.activeService.Spec.Selector[deployv1alpha1.LabelColor] == "":
		// An adopted Service still selects the user's pods: its whole selector (and its
		// ports, which must reach the API container) becomes the release's at once.
		desired := buildActiveService(s.release, to)
		patched := s.activeService.DeepCopy()
		if patched.Annotations == nil {
			patched.Annotations = map[string]string{}
		}
		patched.Annotations[deployv1alpha1.PromotedAtAnnotation] = at
		patched.Spec.Selector = desired.Spec.Selector
		patched.Spec.Ports = mergePorts(s.activeService.Spec.Ports, desired.Spec.Ports, desired.Spec.Type != corev1.ServiceTypeClusterIP)
		patched.Spec.Type = desired.Spec.Type
		if err := r.Patch(ctx, patched, client.MergeFrom(s.activeService)); err != nil {
			return err
		}
		s.activeService = patched
	default:
		patch, err := json.Marshal(map[string]any{
			"metadata": map[string]any{"annotations": map[string]string{deployv1alpha1.PromotedAtAnnotation: at}},
			"spec":     map[string]any{"selector": map[string]string{deployv1alpha1.LabelColor: string(to)}},
		})
		if err != nil {
			return err
		}
		if err := r.Patch(ctx, s.activeService, client.RawPatch(types.MergePatchType, patch)); err != nil {
			return err
		}
	}
	from := s.activeColor
	s.activeColor = to
	s.promotedNow = true
	s.flipTook = time.Since(started)
	if from == "" {
		r.event(s, corev1.EventTypeNormal, deployv1alpha1.ReasonPromoted, "Flip", "Service %s now selects %s (revision %s): first release", s.release.ActiveServiceName(), to, s.revision)
	} else {
		r.event(s, corev1.EventTypeNormal, deployv1alpha1.ReasonPromoted, "Flip", "Service %s switched from %s to %s (revision %s)", s.release.ActiveServiceName(), from, to, s.revision)
	}
	return nil
}

func servicePortsMatch(current, desired []corev1.ServicePort) bool {
	if len(current) != len(desired) {
		return false
	}
	for i := range desired {
		c, d := current[i], desired[i]
		if c.Name != d.Name || c.Port != d.Port || c.TargetPort != d.TargetPort || c.Protocol != d.Protocol {
			return false
		}
	}
	return true
}

// mergePorts takes desired ports, keeping the nodePort the API server allocated for a
// port of the same name (when the type still has node ports), so a port change does not
// churn node ports.
func mergePorts(current, desired []corev1.ServicePort, keepNodePorts bool) []corev1.ServicePort {
	out := make([]corev1.ServicePort, len(desired))
	copy(out, desired)
	if !keepNodePorts {
		return out
	}
	for i := range out {
		for _, c := range current {
			if c.Name == out[i].Name {
				out[i].NodePort = c.NodePort
			}
		}
	}
	return out
}
