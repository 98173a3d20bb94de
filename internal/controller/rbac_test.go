package controller

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

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
