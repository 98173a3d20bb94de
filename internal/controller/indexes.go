package controller

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// Cache indexes for the children a pass lists. Without them the cache answers a label
// selector by walking every object of the kind in the namespace, so with 1,000 releases
// in one namespace each pass would scan thousands of Jobs, ReplicaSets and EndpointSlices
// to find a handful. Deployments and Services have fixed names and are read by key.
const (
	// childrenByRelease indexes Jobs, ReplicaSets and pods by the release's instance label
	// (ReplicaSets and pods inherit it from the pod template).
	childrenByRelease = "softfactory.release"
	// slicesByService indexes EndpointSlices by the name of their Service.
	slicesByService = "softfactory.service"
)

// indexChildren registers the indexes with the manager's cache.
func indexChildren(ctx context.Context, indexer client.FieldIndexer) error {
	if err := indexer.IndexField(ctx, &batchv1.Job{}, childrenByRelease, labelValue(deployv1alpha1.LabelInstance)); err != nil {
		return err
	}
	if err := indexer.IndexField(ctx, &appsv1.ReplicaSet{}, childrenByRelease, labelValue(deployv1alpha1.LabelInstance)); err != nil {
		return err
	}
	if err := indexer.IndexField(ctx, &corev1.Pod{}, childrenByRelease, labelValue(deployv1alpha1.LabelInstance)); err != nil {
		return err
	}
	return indexer.IndexField(ctx, &discoveryv1.EndpointSlice{}, slicesByService, labelValue(discoveryv1.LabelServiceName))
}

func labelValue(key string) client.IndexerFunc {
	return func(obj client.Object) []string {
		if v := obj.GetLabels()[key]; v != "" {
			return []string{v}
		}
		return nil
	}
}

// childrenWith selects the children whose label key is value: through the index when the
// reader is the indexed cache, by label selector otherwise (an uncached client in tests).
// Both select the same objects.
func (r *SoftFactoryReleaseReconciler) childrenWith(index, key, value string) client.ListOption {
	if r.indexed {
		return client.MatchingFields{index: value}
	}
	return client.MatchingLabels{key: value}
}
