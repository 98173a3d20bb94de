package cacheshape

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// Indexes for the children a pass lists. Without them the cache answers a label selector
// by walking every object of the kind in the namespace: with 1,000 releases in one
// namespace each pass would scan thousands of Jobs, ReplicaSets and EndpointSlices to
// find a handful. Deployments and Services have fixed names and are read by key.
const (
	// byRelease indexes Jobs, ReplicaSets and pods by the release's instance label
	// (ReplicaSets and pods inherit it from the pod template).
	byRelease = "softfactory.release"
	// byService indexes EndpointSlices by the name of their Service.
	byService = "softfactory.service"
)

// IndexFields registers the indexes with a cache built from Options. Every reader the
// reconciler lists through must have them: ChildrenOfRelease and SlicesOfService only
// select through the index.
func IndexFields(ctx context.Context, indexer client.FieldIndexer) error {
	for _, obj := range []client.Object{&batchv1.Job{}, &appsv1.ReplicaSet{}, &corev1.Pod{}} {
		if err := indexer.IndexField(ctx, obj, byRelease, labelValue(deployv1alpha1.LabelInstance)); err != nil {
			return err
		}
	}
	return indexer.IndexField(ctx, &discoveryv1.EndpointSlice{}, byService, labelValue(discoveryv1.LabelServiceName))
}

// ChildrenOfRelease selects the Jobs, ReplicaSets or pods of the named release.
func ChildrenOfRelease(release string) client.ListOption {
	return client.MatchingFields{byRelease: release}
}

// SlicesOfService selects the EndpointSlices of the named Service.
func SlicesOfService(service string) client.ListOption {
	return client.MatchingFields{byService: service}
}

func labelValue(key string) client.IndexerFunc {
	return func(obj client.Object) []string {
		if v := obj.GetLabels()[key]; v != "" {
			return []string{v}
		}
		return nil
	}
}
