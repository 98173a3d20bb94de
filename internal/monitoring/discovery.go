/*
Copyright 2026.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package monitoring

import (
	"context"
	"fmt"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ResourceDiscoverer is the one discovery call needed here; *discovery.DiscoveryClient
// (discovery.NewDiscoveryClientForConfig(mgr.GetConfig())) implements it.
type ResourceDiscoverer interface {
	ServerResourcesForGroupVersionWithContext(ctx context.Context, groupVersion string) (*metav1.APIResourceList, error)
}

// PrometheusRuleCRDInstalled reports whether the API server serves
// monitoring.coreos.com/v1 prometheusrules.
//
// It asks discovery on every call, one small GET of the group version, so a CRD
// installed after the operator started is seen on the next reconcile without a restart.
// Pass an uncached client (discovery.NewDiscoveryClientForConfig), not a memory-cached
// one, which would keep answering "not installed". A missing group version is (false,
// nil); any other discovery error is returned, so the caller retries instead of
// reporting the CRD as absent.
func PrometheusRuleCRDInstalled(ctx context.Context, dc ResourceDiscoverer) (bool, error) {
	groupVersion := monitoringv1.SchemeGroupVersion.String()
	resources, err := dc.ServerResourcesForGroupVersionWithContext(ctx, groupVersion)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("discovering %s: %w", groupVersion, err)
	}
	for _, resource := range resources.APIResources {
		if resource.Name == monitoringv1.PrometheusRuleName {
			return true, nil
		}
	}
	return false, nil
}
