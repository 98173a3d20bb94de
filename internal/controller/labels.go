package controller

import (
	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// labelsFor are the labels on every child of a release. The managed-by label is also
// what the operator's caches select on, so the operator never caches other objects.
func labelsFor(r *deployv1alpha1.SoftFactoryRelease, component string) map[string]string {
	return map[string]string{
		deployv1alpha1.LabelName:      deployv1alpha1.AppName,
		deployv1alpha1.LabelInstance:  r.Name,
		deployv1alpha1.LabelComponent: component,
		deployv1alpha1.LabelManagedBy: deployv1alpha1.ManagedBy,
	}
}

// appSelector selects the API pods of one colour. The active Service's selector is this,
// and the flip changes only its colour key.
func appSelector(r *deployv1alpha1.SoftFactoryRelease, c deployv1alpha1.Color) map[string]string {
	return map[string]string{
		deployv1alpha1.LabelInstance:  r.Name,
		deployv1alpha1.LabelComponent: deployv1alpha1.ComponentApp,
		deployv1alpha1.LabelColor:     string(c),
	}
}
