package controller

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

func readRBAC[T any](t *testing.T, file string) T {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", file))
	if err != nil {
		t.Fatal(err)
	}
	var obj T
	if err := yaml.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

// The operator's ClusterRole, generated from the RBAC markers, grants no access to
// Secrets and no wildcard: the database URL reaches Jobs only through secretKeyRef.
func TestOperatorRoleHasNoSecretsAndNoWildcards(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	role := rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(raw, &role); err != nil {
		t.Fatal(err)
	}
	if len(role.Rules) == 0 {
		t.Fatal("role.yaml has no rules: did controller-gen run?")
	}
	for _, rule := range role.Rules {
		for _, field := range [][]string{rule.APIGroups, rule.Resources, rule.Verbs} {
			if slices.Contains(field, "*") {
				t.Errorf("wildcard in rule %+v", rule)
			}
		}
		if slices.Contains(rule.Resources, "secrets") {
			t.Errorf("the operator must not have access to Secrets: %+v", rule)
		}
	}
}

// Every write the reconciler makes to an existing object is a patch (Deployments,
// Services, CronJobs, PrometheusRules, the release's status) and it never writes the
// release itself: a grep of the code for Update( finds none. So no rule grants update,
// and the release and its status get no more than the reads and the status patch.
func TestOperatorRoleGrantsOnlyTheVerbsItsCallsUse(t *testing.T) {
	role := readRBAC[rbacv1.ClusterRole](t, "role.yaml")
	for _, rule := range role.Rules {
		if slices.Contains(rule.Verbs, "update") {
			t.Errorf("%v grants update, which nothing calls: %+v", rule.Resources, rule)
		}
		for _, resource := range rule.Resources {
			switch resource {
			case "softfactoryreleases":
				if !slices.Equal(rule.Verbs, []string{"get", "list", "watch"}) {
					t.Errorf("releases: %v, want only get, list, watch: the operator never writes a release's spec or metadata", rule.Verbs)
				}
			case "replicasets", "pods", "endpointslices":
				if !slices.Equal(rule.Verbs, []string{"list", "watch"}) {
					t.Errorf("%s: %v, want only list, watch: they are only listed, from the cache", resource, rule.Verbs)
				}
			case "softfactoryreleases/status":
				if !slices.Equal(rule.Verbs, []string{"patch"}) {
					t.Errorf("release status: %v, want only patch (one optimistic-locked merge patch per pass)", rule.Verbs)
				}
			}
		}
	}
}

// controller-runtime elects its leader with a Lease alone, which client-go's LeaseLock
// gets, creates and updates; the scaffold's ConfigMaps rule served a lock type gone since.
func TestLeaderElectionRoleHoldsOnlyItsLease(t *testing.T) {
	role := readRBAC[rbacv1.Role](t, "leader_election_role.yaml")
	for _, rule := range role.Rules {
		switch {
		case slices.Contains(rule.Resources, "configmaps"):
			t.Errorf("leader election needs no ConfigMaps: %+v", rule)
		case slices.Contains(rule.Resources, "leases"):
			if !slices.Equal(rule.Verbs, []string{"get", "create", "update"}) {
				t.Errorf("leases: %v, want get, create, update", rule.Verbs)
			}
		}
	}
}

// The editor and viewer roles are part of Kubernetes' edit and view roles, so creating a
// release takes what creating the workloads it makes already takes.
func TestEditorAndViewerRolesAggregateToEditAndView(t *testing.T) {
	for file, label := range map[string]string{
		"softfactoryrelease_editor_role.yaml": "rbac.authorization.k8s.io/aggregate-to-edit",
		"softfactoryrelease_viewer_role.yaml": "rbac.authorization.k8s.io/aggregate-to-view",
	} {
		role := readRBAC[rbacv1.ClusterRole](t, file)
		if role.Labels[label] != "true" {
			t.Errorf("%s: labels %v, want %s=true", file, role.Labels, label)
		}
		for _, rule := range role.Rules {
			for _, resource := range rule.Resources {
				if !strings.HasPrefix(resource, "softfactoryreleases") {
					t.Errorf("%s grants %s: an aggregated role must add only releases to edit/view", file, resource)
				}
			}
		}
	}
}
