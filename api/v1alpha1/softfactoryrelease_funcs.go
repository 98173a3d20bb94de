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

package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Annotations users set on a release.
const (
	// PromoteAnnotation promotes a release waiting in AwaitingPromotion. Its value is the
	// revision it applies to, so an annotation left over from an earlier release never
	// promotes a later one.
	PromoteAnnotation = "deploy.softfactory.io/promote"
	// RestoreAnnotation approves the restore of the revision named by its value when
	// spec.rollback.restore is Manual.
	RestoreAnnotation = "deploy.softfactory.io/restore"
	// AbortAnnotation aborts the release whose revision is its value: green is scaled down
	// (or kept, per spec.rollback.onFailure) and traffic stays where it is.
	AbortAnnotation = "deploy.softfactory.io/abort"
	// RetryAnnotation retries a failed revision: its value is the revision, optionally
	// followed by "/N" (the kubectl plugin and the Argo CD action count N up), and each
	// distinct value retries once. Only the steps that failed run again, with new Job names.
	RetryAnnotation = "deploy.softfactory.io/retry"
	// AllowRollbackPastContractAnnotation lets the revision named by its value run although
	// a later revision's contract step has changed the schema it was written for.
	AllowRollbackPastContractAnnotation = "deploy.softfactory.io/allow-rollback-past-contract"
	// ReconcileRequestAnnotation asks for a pass over the release now: any new value (a
	// time, by convention) does. The operator needs none, it watches what it owns; it is
	// for scripts and benchmarks. Annotations outside deploy.softfactory.io/ never cause a
	// pass: the operator's cache does not keep them (cacheshape.OwnAnnotations).
	ReconcileRequestAnnotation = "deploy.softfactory.io/reconcile-requested-at"
)

// Labels and annotations the operator puts on what it makes.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelComponent = "app.kubernetes.io/component"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// LabelColor selects one colour's pods; the active Service's selector flips on it.
	LabelColor = "deploy.softfactory.io/color"
	// LabelRevision marks a child with the release revision it belongs to.
	LabelRevision = "deploy.softfactory.io/revision"

	// AppName is the value of app.kubernetes.io/name on everything the operator makes.
	AppName = "softfactory"
	// ManagedBy is the value of app.kubernetes.io/managed-by.
	ManagedBy = "softfactory-release-operator"

	// ScaleDownAtAnnotation, on the old colour's Deployment, holds the RFC 3339 time after
	// which it may scale to zero, where the active Service has no promoted-at time to
	// count the scale-down delay from. Stored on the object so an operator restart keeps it.
	ScaleDownAtAnnotation = "deploy.softfactory.io/scale-down-at"
	// PromotedAtAnnotation, on the active Service, holds when the selector last flipped
	// (RFC 3339 with nanoseconds); the old colour scales down the scale-down delay after it.
	PromotedAtAnnotation = "deploy.softfactory.io/promoted-at"
	// RevisionAnnotation, on a colour's Deployment, holds the release revision it runs.
	RevisionAnnotation = "deploy.softfactory.io/revision"
	// ProgressStartedAnnotation, on a colour's Deployment, holds when it got its current
	// revision; progressDeadlineSeconds counts from there.
	ProgressStartedAnnotation = "deploy.softfactory.io/progress-started-at"
	// EndpointsRequestedAnnotation, on the preview Service, holds the revision for which
	// the operator asked the EndpointSlice controller to compute the Service's endpoints
	// again: its target colour was fully available but not listed ready for a while.
	// Once per revision.
	EndpointsRequestedAnnotation = "deploy.softfactory.io/endpoints-requested-for"
	// BackupFileAnnotation, on a backup Job, names the dump it writes. The operator picks
	// the name when it builds the Job, so it knows the file without reading any log, and a
	// restarted operator reads it back from the Job it adopts.
	BackupFileAnnotation = "deploy.softfactory.io/backup-file"
	// SpecHashAnnotation, on every object the operator writes from a builder, holds a
	// hash of what it wants the object to be, so a pass compares one string instead of a
	// spec the API server has defaulted, and a settled release costs no write.
	SpecHashAnnotation = "deploy.softfactory.io/spec-hash"
)

// Components, the value of app.kubernetes.io/component.
const (
	ComponentApp    = "app"
	ComponentBackup = "backup"
	// ComponentScheduledBackup marks the CronJob of spec.backup.schedule and its Jobs.
	ComponentScheduledBackup = "scheduled-backup"
	ComponentMigration       = "migration"
	ComponentRestore         = "restore"
	ComponentSmokeTest       = "smoke-test"
	// ComponentContract marks the contract Job of spec.migration.contract.
	ComponentContract = "contract"
	// ComponentContractBackup marks the backup Job taken before the contract step.
	ComponentContractBackup = "contract-backup"
	// ComponentCompatibilityCheck marks the serving revision's smoke test against the
	// migrated database.
	ComponentCompatibilityCheck = "compatibility-check"
	ComponentAlerts             = "alerts"
)

// DeploymentName is the Deployment of one colour: <release>-blue or <release>-green.
func (r *SoftFactoryRelease) DeploymentName(c Color) string {
	return r.Name + "-" + string(c)
}

// ActiveServiceName is the Service clients use: spec.service.name, or the release name.
func (r *SoftFactoryRelease) ActiveServiceName() string {
	if r.Spec.Service.Name != "" {
		return r.Spec.Service.Name
	}
	return r.Name
}

// PreviewServiceName is the Service that reaches the colour under test.
func (r *SoftFactoryRelease) PreviewServiceName() string {
	return r.ActiveServiceName() + "-preview"
}

// BackupJobName is the backup Job of a revision.
func (r *SoftFactoryRelease) BackupJobName(revision string) string {
	return childName(r.Name, "backup", revision)
}

// MigrationJobName is the migration Job of a revision.
func (r *SoftFactoryRelease) MigrationJobName(revision string) string {
	return childName(r.Name, "migrate", revision)
}

// RestoreJobName is the restore Job that undoes a revision's failed migration.
func (r *SoftFactoryRelease) RestoreJobName(revision string) string {
	return childName(r.Name, "restore", revision)
}

// SmokeTestJobName is the smoke-test Job of a revision.
func (r *SoftFactoryRelease) SmokeTestJobName(revision string) string {
	return childName(r.Name, "smoke", revision)
}

// ContractJobName is the attempt-th contract Job of a revision (attempts above 1 come
// from retries).
func (r *SoftFactoryRelease) ContractJobName(revision string, attempt int32) string {
	return attemptName(r.Name, "contract", revision, attempt)
}

// ContractBackupJobName is the attempt-th backup Job taken before a revision's contract step.
func (r *SoftFactoryRelease) ContractBackupJobName(revision string, attempt int32) string {
	return attemptName(r.Name, "cbackup", revision, attempt)
}

// CompatibilityCheckJobName is the Job running the serving revision's smoke test against
// the database migrated for a revision.
func (r *SoftFactoryRelease) CompatibilityCheckJobName(revision string, attempt int32) string {
	return attemptName(r.Name, "compat", revision, attempt)
}

// MigrationAttemptJobName is the attempt-th migration Job of a revision: the first is
// MigrationJobName, retries add the attempt.
func (r *SoftFactoryRelease) MigrationAttemptJobName(revision string, attempt int32) string {
	return attemptName(r.Name, "migrate", revision, attempt)
}

// SmokeTestAttemptJobName is the attempt-th smoke-test Job of a revision.
func (r *SoftFactoryRelease) SmokeTestAttemptJobName(revision string, attempt int32) string {
	return attemptName(r.Name, "smoke", revision, attempt)
}

// attemptName is childName for the first attempt, and adds "-N" for later ones.
func attemptName(release, kind, revision string, attempt int32) string {
	if attempt <= 1 {
		return childName(release, kind, revision)
	}
	return childName(release, kind, fmt.Sprintf("%s-%d", revision, attempt))
}

// MaxRetries bounds the retries of one revision (status.revisions[].retries): past it,
// apply a new spec.
const MaxRetries = 20

// ScheduledBackupName is the CronJob taking scheduled backups: <release>-backup-scheduled,
// or, where that passes the 52 characters the API server allows a CronJob (its Jobs are
// named <cronjob>-<11 digits>, within 63), the release name cut short and a hash of it
// in its place. A name that fits is never changed, so an existing CronJob keeps its name.
func (r *SoftFactoryRelease) ScheduledBackupName() string {
	const suffix = "-backup-scheduled"
	if name := r.Name + suffix; len(name) <= MaxCronJobNameLength {
		return name
	}
	sum := sha256.Sum256([]byte(r.Name))
	hash := hex.EncodeToString(sum[:])[:8]
	short := strings.TrimRight(r.Name[:MaxCronJobNameLength-len(suffix)-len(hash)-1], "-")
	return short + "-" + hash + suffix
}

// MaxCronJobNameLength is the longest name the API server accepts for a CronJob.
const MaxCronJobNameLength = 52

// PrometheusRuleName is the PrometheusRule with the release's alerts.
func (r *SoftFactoryRelease) PrometheusRuleName() string {
	return r.Name + "-alerts"
}

// maxJobNameLength keeps Job names within 63 characters, because the Job controller
// copies the name into the job-name label of its pods.
const maxJobNameLength = 63

// childName joins release, kind and revision. CEL limits release names to 40
// characters, so this never trims in practice; the trim is a guard for objects that
// predate the rule, and it keeps the revision, which makes the name unique.
func childName(release, kind, revision string) string {
	suffix := fmt.Sprintf("-%s-%s", kind, revision)
	if len(release)+len(suffix) > maxJobNameLength {
		release = release[:maxJobNameLength-len(suffix)]
	}
	return release + suffix
}

// AutoPromoteEnabled reports whether green is promoted without a human.
func (s *BlueGreenSpec) AutoPromoteEnabled() bool {
	return s.AutoPromote == nil || *s.AutoPromote
}

// ReplicaCount is spec.replicas with its default.
func (r *SoftFactoryRelease) ReplicaCount() int32 {
	if r.Spec.Replicas == nil {
		return 2
	}
	return *r.Spec.Replicas
}

// IsEnabled reports whether the PrometheusRule is wanted.
func (p *PrometheusRuleSpec) IsEnabled() bool {
	return p.Enabled == nil || *p.Enabled
}

// VerifyEnabled reports whether dumps are verified.
func (b *BackupSpec) VerifyEnabled() bool {
	return b.Verify.Enabled == nil || *b.Verify.Enabled
}

// RestoreModeOf is spec.rollback.restore, with restoreDatabase: true read as Automatic.
func (r *RollbackSpec) RestoreModeOf() RestoreMode {
	switch {
	case r.Restore != "":
		return r.Restore
	case r.RestoreDatabase:
		return RestoreAutomatic
	default:
		return RestoreNever
	}
}

// BackupMaxAge is spec.backup.maxAge with its default.
func (b *BackupSpec) BackupMaxAge() time.Duration {
	if b.MaxAge == nil {
		return time.Hour
	}
	return b.MaxAge.Duration
}

// BackupAttemptJobName is the backup Job of a revision's attempt-th backup: the first
// is BackupJobName, later ones (a backup grown older than maxAge) add the attempt.
func (r *SoftFactoryRelease) BackupAttemptJobName(revision string, attempt int32) string {
	return attemptName(r.Name, "backup", revision, attempt)
}

// RevisionRecordOf is the step record of a revision, or nil.
func (s *SoftFactoryReleaseStatus) RevisionRecordOf(revision string) *RevisionRecord {
	for i := range s.Revisions {
		if s.Revisions[i].Revision == revision {
			return &s.Revisions[i]
		}
	}
	return nil
}

// ServingDegradedPolicyOf is spec.strategy.blueGreen.onServingDegraded with its default.
func (s *BlueGreenSpec) ServingDegradedPolicyOf() ServingDegradedPolicy {
	if s.OnServingDegraded == "" {
		return ServingDegradedStop
	}
	return s.OnServingDegraded
}

// CompatibilityCheckEnabled reports whether the serving revision's smoke test runs
// against the migrated database before the flip.
func (s *BlueGreenSpec) CompatibilityCheckEnabled() bool {
	c := s.CompatibilityCheck
	return c != nil && (c.Enabled == nil || *c.Enabled) && s.SmokeTest != nil
}
