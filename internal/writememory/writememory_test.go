package writememory

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func object(name, rv string) *corev1.ConfigMap {
	o := &corev1.ConfigMap{}
	o.Namespace, o.Name, o.ResourceVersion = "prod", name, rv
	o.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "softfactory-release-operator"}}
	return o
}

// The copies of written objects are dropped as soon as the cache holds the write,
// however the news arrives.
func TestNewestDropsWrittenCopiesOnceDelivered(t *testing.T) {
	var n Newest[*corev1.ConfigMap]
	expect := func(what string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s: got %v, want %v", what, got, want)
		}
	}

	n.Wrote("1", object("a", "2"))
	expect("the cache still holds the replaced version", n.Of(object("a", "1")).ResourceVersion, "2")
	expect("the kept copy has no managedFields", len(n.Of(object("a", "1")).ManagedFields), 0)
	n.Delivered(object("a", "1"))
	expect("a resync of the replaced version drops nothing", n.Held(), 1)
	n.Delivered(object("a", "2"))
	expect("the informer delivered the write", n.Held(), 0)

	n.Wrote("5", object("b", "6"))
	expect("a pass found the write in the cache", n.Of(object("b", "6")).ResourceVersion, "6")
	expect("held after the pass found the write", n.Held(), 0)

	// A cache two writes behind.
	n.Wrote("10", object("c", "11"))
	expect("newest of 10", n.Of(object("c", "10")).ResourceVersion, "11")
	n.Wrote("11", object("c", "12")) // the pass acted on 11 and wrote 12
	n.Delivered(object("c", "10"))
	expect("10 is older than both writes", n.Of(object("c", "10")).ResourceVersion, "12")
	n.Delivered(object("c", "11"))
	expect("11 is older than 12", n.Of(object("c", "11")).ResourceVersion, "12")
	n.Delivered(object("c", "12"))
	expect("held once 12 is delivered", n.Held(), 0)
}
