// Package cacheshape is what the operator's informer cache holds, and how it is indexed.
// cmd/main.go builds the manager's cache from Options and the tests read through a cache
// built from the same Options and IndexFields: there is one read path.
//
// Contract: a cached object is not the object the API server stores. Deployments,
// ReplicaSets, Jobs and pods are trimmed (see the Trim functions): a cached Deployment
// has no pod template beyond its containers' names and images. Never Update an object
// read from the cache, and never compute a patch against its template: write templates
// whole from a builder. The API server refuses such an Update (the trimmed template no
// longer matches the selector), and the operator's RBAC grants no update verb anyway.
package cacheshape

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// Options keep the operator small in a big cluster: child kinds are cached only when
// they carry the operator's managed-by label, managedFields are dropped before objects
// enter the cache and so do annotations that are not the operator's (OwnAnnotations),
// Deployments, ReplicaSets, Jobs and pods are trimmed, the strings
// cached objects repeat are shared (Intern), pods that ran to completion are not cached,
// and Secrets are never cached (nor read) at all. namespaces
// limits the cache to those namespaces; none caches every namespace.
func Options(namespaces ...string) cache.Options {
	owned := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{
		deployv1alpha1.LabelManagedBy: deployv1alpha1.ManagedBy,
	})}
	trimmed := func(transform func(any) (any, error)) cache.ByObject {
		o := owned
		o.Transform = then(transform, OwnAnnotations, Intern)
		return o
	}
	// A pod that ran to completion (a finished Job's, almost always: an API pod restarts)
	// runs nothing and says nothing a pass needs: a Job's success is read from the Job,
	// and a failed pod, whose words explain a failure, is kept. Two finished Jobs per
	// revision leave such pods, two thirds of the pods at 1,000 releases.
	pods := trimmed(TrimPod)
	pods.Field = fields.OneTermNotEqualSelector("status.phase", string(corev1.PodSucceeded))
	opts := cache.Options{
		DefaultTransform: then(cache.TransformStripManagedFields(), OwnAnnotations, Intern),
		ByObject: map[client.Object]cache.ByObject{
			// ReplicaSets and pods carry their pod template's labels, managed-by among them.
			&appsv1.Deployment{}:         trimmed(TrimDeployment),
			&appsv1.ReplicaSet{}:         trimmed(TrimReplicaSet),
			&batchv1.Job{}:               trimmed(TrimJob),
			&corev1.Pod{}:                pods,
			&batchv1.CronJob{}:           owned,
			&corev1.Service{}:            owned,
			&discoveryv1.EndpointSlice{}: owned,
		},
	}
	if len(namespaces) > 0 {
		opts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return opts
}

// then is the transform that applies each step in turn.
func then(steps ...toolscache.TransformFunc) toolscache.TransformFunc {
	return func(obj any) (any, error) {
		for _, step := range steps {
			var err error
			if obj, err = step(obj); err != nil {
				return nil, err
			}
		}
		return obj, nil
	}
}

// ClientOptions keep PrometheusRules out of the client's cache: a cache entry (ByObject)
// for them would make the manager resolve the kind at start-up and exit where
// prometheus-operator is not installed, and a cached read could start an informer for it
// at any time. internal/monitoring caches the rules itself, once discovery serves their
// CRD.
func ClientOptions() client.Options {
	return client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&monitoringv1.PrometheusRule{}}}}
}
