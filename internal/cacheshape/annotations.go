package cacheshape

import (
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// ownAnnotationPrefix starts every annotation the operator reads: its own (spec hash,
// revision, times, backup file) and those users set on a release (promote, abort,
// restore, retry). The operator reads no other annotation.
var ownAnnotationPrefix = deployv1alpha1.SchemeGroupVersion.Group + "/"

// OwnAnnotations is the cache transform step that keeps of an object's annotations
// only the operator's own. Others' annotations are most of what the cache would hold
// in annotation maps and never read: the Deployment controller's revision and replica
// counts, the EndpointSlice controller's trigger time, kubectl's and Argo CD's
// last-applied copy of a whole release. At 1,000 releases annotation maps were 7 MB of
// the 67 MB live heap (docs/benchmarks.md).
//
// Safe because the operator writes children only with patches computed against the
// cached copy or built whole (the cacheshape contract): a key absent from both sides of
// a merge patch is not in the patch, so the API server keeps it. The template's
// annotations (TemplateHashAnnotation) are the template's, not the object's, and stay.
// Kinds without metadata, and tombstones, pass as they are.
func OwnAnnotations(obj any) (any, error) {
	if o, ok := obj.(metav1.Object); ok {
		o.SetAnnotations(ownAnnotations(o.GetAnnotations()))
	}
	return obj, nil
}

// ownAnnotations is m without the keys that are not the operator's: m itself when every
// key is, nil when none is.
func ownAnnotations(m map[string]string) map[string]string {
	foreign := 0
	for k := range m {
		if !strings.HasPrefix(k, ownAnnotationPrefix) {
			foreign++
		}
	}
	switch {
	case foreign == 0:
		return m
	case foreign == len(m):
		return nil
	}
	out := make(map[string]string, len(m)-foreign)
	for k, v := range m {
		if strings.HasPrefix(k, ownAnnotationPrefix) {
			out[k] = v
		}
	}
	return out
}
