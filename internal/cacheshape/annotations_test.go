package cacheshape

import (
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// transformFor is the transform the cache built from Options applies to obj's kind: its
// own, or the default (controller-runtime fills a kind's missing transform with it).
func transformFor(opts cache.Options, obj client.Object) toolscache.TransformFunc {
	for kind, byObject := range opts.ByObject {
		if reflect.TypeOf(kind) == reflect.TypeOf(obj) && byObject.Transform != nil {
			return byObject.Transform
		}
	}
	return opts.DefaultTransform
}

// Every cached kind goes through the cache with only the operator's own annotations:
// the Deployment controller's, kubectl's last-applied copy and Argo CD's tracking id
// are never read, and at 1,000 releases they were a tenth of the live heap.
func TestCacheKeepsOnlyTheOperatorsAnnotations(t *testing.T) {
	const lastApplied = `{"apiVersion":"deploy.softfactory.io/v1alpha1","kind":"SoftFactoryRelease","spec":{"image":"img:2"}}`
	annotated := func() metav1.ObjectMeta {
		m := childMeta("shop", "shop-blue")
		m.Annotations = map[string]string{
			deployv1alpha1.RevisionAnnotation:                  "3",
			deployv1alpha1.PromoteAnnotation:                   "3",
			"deployment.kubernetes.io/revision":                "7",
			"kubectl.kubernetes.io/last-applied-configuration": lastApplied,
			"argocd.argoproj.io/tracking-id":                   "shop:deploy.softfactory.io/SoftFactoryRelease:team-a/shop",
		}
		return m
	}
	ours := map[string]string{deployv1alpha1.RevisionAnnotation: "3", deployv1alpha1.PromoteAnnotation: "3"}
	kinds := map[string]struct {
		obj  client.Object
		want map[string]string
	}{
		"release":       {&deployv1alpha1.SoftFactoryRelease{ObjectMeta: annotated()}, ours},
		"deployment":    {&appsv1.Deployment{ObjectMeta: annotated()}, ours},
		"job":           {&batchv1.Job{ObjectMeta: annotated()}, ours},
		"pod":           {&corev1.Pod{ObjectMeta: annotated()}, nil},
		"service":       {&corev1.Service{ObjectMeta: annotated()}, ours},
		"endpointslice": {&discoveryv1.EndpointSlice{ObjectMeta: annotated()}, ours},
		"cronjob":       {&batchv1.CronJob{ObjectMeta: annotated()}, ours},
		// A ReplicaSet's annotations are copies of its Deployment's: none is kept.
		"replicaset": {&appsv1.ReplicaSet{ObjectMeta: annotated()}, nil},
	}
	opts := Options()
	for name, k := range kinds {
		out, err := transformFor(opts, k.obj)(k.obj)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := out.(client.Object).GetAnnotations(); !reflect.DeepEqual(got, k.want) {
			t.Errorf("%s: the cache keeps annotations %v, want %v", name, got, k.want)
		}
	}
}

func TestOwnAnnotations(t *testing.T) {
	onlyOurs := map[string]string{deployv1alpha1.SpecHashAnnotation: "h"}
	if got := ownAnnotations(onlyOurs); reflect.ValueOf(got).Pointer() != reflect.ValueOf(onlyOurs).Pointer() {
		t.Error("a map with only the operator's keys was copied")
	}
	if got := ownAnnotations(map[string]string{"example.com/a": "1"}); got != nil {
		t.Errorf("only foreign keys: got %v, want nil", got)
	}
	// A prefix that only starts like ours is not ours.
	if got := ownAnnotations(map[string]string{"deploy.softfactory.io.example.com/a": "1"}); got != nil {
		t.Errorf("a look-alike prefix was kept: %v", got)
	}
	tomb := toolscache.DeletedFinalStateUnknown{Key: "team-a/shop"}
	if out, err := OwnAnnotations(tomb); err != nil || out != tomb {
		t.Errorf("OwnAnnotations(tombstone) = %v, %v", out, err)
	}
}
