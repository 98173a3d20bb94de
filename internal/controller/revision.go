package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// revisionLength is the number of hex characters of a revision. The backup scripts
// match dump names on exactly this length, so it must not change.
const revisionLength = 10

// revisionInputs are the parts of the spec that make a new release. Replicas, the
// Service, gates and alerts are not among them: changing those adjusts the running
// release instead of taking a new backup and migrating again.
type revisionInputs struct {
	Image       string                               `json:"image"`
	Port        int32                                `json:"port"`
	HealthCheck deployv1alpha1.HealthCheckSpec       `json:"healthCheck"`
	Env         any                                  `json:"env,omitempty"`
	EnvFrom     any                                  `json:"envFrom,omitempty"`
	Resources   any                                  `json:"resources"`
	PodTemplate *deployv1alpha1.PodTemplateOverrides `json:"podTemplate,omitempty"`
	Database    *deployv1alpha1.DatabaseSpec         `json:"database,omitempty"`
	Migration   *deployv1alpha1.MigrationSpec        `json:"migration,omitempty"`
}

// revisionOf hashes the release inputs into a short id. The same inputs always give the
// same id, so re-applying a manifest finds the Jobs it already ran instead of running
// them again. encoding/json sorts map keys, which keeps the hash stable.
func revisionOf(r *deployv1alpha1.SoftFactoryRelease) string {
	in := revisionInputs{
		Image:       r.Spec.Image,
		Port:        r.Spec.Port,
		HealthCheck: r.Spec.HealthCheck,
		Env:         r.Spec.Env,
		EnvFrom:     r.Spec.EnvFrom,
		Resources:   r.Spec.Resources,
		PodTemplate: r.Spec.PodTemplate,
		Database:    r.Spec.Database,
		Migration:   r.Spec.Migration,
	}
	raw, err := json.Marshal(in)
	if err != nil {
		// Every field is a plain API type; Marshal cannot fail on them.
		panic(err)
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])[:revisionLength]
}
