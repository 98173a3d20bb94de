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

// The condition types and reasons of status.conditions: part of the API, so tools
// (the kubectl plugin, Argo CD, scripts) can rely on them.

// Condition types. Every condition always carries a reason and a message.
const (
	ConditionReady              = "Ready"
	ConditionBackupSucceeded    = "BackupSucceeded"
	ConditionMigrationSucceeded = "MigrationSucceeded"
	ConditionGreenAvailable     = "GreenAvailable"
	ConditionPromoted           = "Promoted"
	ConditionDegraded           = "Degraded"
	ConditionMonitoringReady    = "MonitoringReady"
	// ConditionScheduledBackupReady says whether the CronJob of spec.backup.schedule is
	// in place. Like MonitoringReady it is optional: its failure never holds the runbook.
	ConditionScheduledBackupReady = "ScheduledBackupReady"
	// ConditionContractSucceeded says where the contract step (spec.migration.contract)
	// of the current revision stands; NotRequired without one.
	ConditionContractSucceeded = "ContractSucceeded"
	// ConditionServingDegraded is True when the serving colour degraded while the new
	// revision was on its way (from the migration's start to the flip), with what was seen.
	ConditionServingDegraded = "ServingDegraded"
)

// Reasons. The failure reasons are also history outcomes' reasons.
const (
	ReasonBackupFailed             = "BackupFailed"
	ReasonMigrationFailed          = "MigrationFailed"
	ReasonProgressDeadlineExceeded = "ProgressDeadlineExceeded"
	ReasonSmokeTestFailed          = "SmokeTestFailed"
	ReasonAborted                  = "Aborted"
	ReasonRolledBack               = "RolledBack"
	ReasonAnalysisFailed           = "AnalysisFailed"
	ReasonAnalysisInconclusive     = "AnalysisInconclusive"
	ReasonAnalysisRunning          = "AnalysisRunning"

	ReasonNotRequired         = "NotRequired"
	ReasonPending             = "Pending"
	ReasonBackupRunning       = "BackupRunning"
	ReasonBackupCompleted     = "BackupCompleted"
	ReasonWaitingForBackup    = "WaitingForBackup"
	ReasonMigrationRunning    = "MigrationRunning"
	ReasonMigrationCompleted  = "MigrationCompleted"
	ReasonNotStarted          = "NotStarted"
	ReasonProgressing         = "Progressing"
	ReasonWaitingForEndpoints = "WaitingForEndpoints"
	ReasonAvailable           = "Available"
	ReasonSmokeTestRunning    = "SmokeTestRunning"
	ReasonAwaitingPromotion   = "AwaitingPromotion"
	ReasonPromoted            = "Promoted"
	ReasonScaleDownPending    = "ScaleDownPending"
	ReasonSucceeded           = "Succeeded"
	ReasonPaused              = "Paused"
	ReasonWaitingForSafePoint = "WaitingForSafePoint"
	ReasonReconcileError      = "ReconcileError"
	ReasonAsExpected          = "AsExpected"

	// ReasonOwnershipConflict: a name the release needs is held by an object it does not
	// control (another release's, or one made outside the operator). Nothing is written
	// to it; the message names the object, its kind and its owner.
	ReasonOwnershipConflict = "OwnershipConflict"
	// ReasonAdopted is the Event recorded when the release takes over a Service a user
	// made by hand (one no controller controls).
	ReasonAdopted = "Adopted"
	// ReasonMonitoringFailed: the PrometheusRule could not be kept (the API refused it,
	// or its CRD went away after start-up). The runbook goes on.
	ReasonMonitoringFailed = "MonitoringFailed"
	// ReasonScheduled and ReasonScheduledBackupFailed are the reasons of
	// ScheduledBackupReady.
	ReasonScheduled             = "Scheduled"
	ReasonScheduledBackupFailed = "ScheduledBackupFailed"

	// ReasonPodsCannotStart: the new colour's pods cannot start and will not by
	// themselves (an image that runs as root, an invalid image name, a pod spec the
	// namespace's Pod Security refuses). The release stops at once with the pod's words.
	ReasonPodsCannotStart = "PodsCannotStart"
	// ReasonMigrationNeverStarted: the migration's pod cannot start, for such a reason.
	// No migration container ran, so no restore is ever started for it.
	ReasonMigrationNeverStarted = "MigrationNeverStarted"
)

// Reasons of the data-safety cases: how a migration failed decides whether the database
// is touched, and a manual restore waits for the user.
const (
	// ReasonMigrationNeverRan: the migration Job failed before any container of it ran
	// (image pull, configuration, admission, deadline): nothing was migrated and the
	// database is left alone.
	ReasonMigrationNeverRan = "MigrationNeverRan"
	// ReasonMigrationLost: the migration Job was deleted before it reported how it ended;
	// the database is left alone.
	ReasonMigrationLost = "MigrationLost"
	// ReasonRestoreAwaitingApproval: restore Manual; the restore waits for the
	// deploy.softfactory.io/restore annotation naming the revision.
	ReasonRestoreAwaitingApproval = "RestoreAwaitingApproval"
	// ReasonRestoring: a restore of a failed migration's dump is under way; the serving
	// colour is stopped until it is done.
	ReasonRestoring = "Restoring"
)

// Reasons of MonitoringReady.
const (
	// ReasonRuleReady: the release's PrometheusRule carries the runbook's alerts.
	ReasonRuleReady = "RuleReady"
	// ReasonDisabled: spec.monitoring.prometheusRule.enabled is false; no rule is kept.
	ReasonDisabled = "Disabled"
	// ReasonPrometheusRuleCRDMissing: prometheus-operator is not installed; the alerts
	// are skipped and created once the CRD appears. The release goes on.
	ReasonPrometheusRuleCRDMissing = "PrometheusRuleCRDMissing"
)

// Reasons of the Events the operator records for actions it took (beside the condition
// reasons above, which Events of condition changes carry).
const (
	ReasonBackupTooOld    = "BackupTooOld"
	ReasonDeploying       = "Deploying"
	ReasonScaledDown      = "ScaledDown"
	ReasonDeletedJobs     = "DeletedJobs"
	ReasonJobCreated      = "JobCreated"
	ReasonRestored        = "Restored"
	ReasonRestoreFailed   = "RestoreFailed"
	ReasonStoppingWriters = "StoppingWriters"
	ReasonResumingWriters = "ResumingWriters"
	ReasonResumedWriters  = "ResumedWriters"
)

// Reasons of expand/contract migrations, the watched serving colour, the compatibility
// check and retries.
const (
	// ReasonContractPending: the contract step waits for the flip, the scale-down and the
	// old colour's pods to be gone.
	ReasonContractPending = "ContractPending"
	// ReasonContractBackupRunning: the fresh dump before the contract step is being taken.
	ReasonContractBackupRunning = "ContractBackupRunning"
	// ReasonContractRunning: the contract Job runs.
	ReasonContractRunning = "ContractRunning"
	// ReasonContractCompleted: the contract Job completed.
	ReasonContractCompleted = "ContractCompleted"
	// ReasonContractFailed: the contract Job (or the backup before it) failed; the new
	// colour keeps serving, the database is not restored.
	ReasonContractFailed = "ContractFailed"
	// ReasonSchemaContracted: the spec names a revision released before a later
	// revision's contract step changed the schema; it is refused unless the
	// allow-rollback-past-contract annotation names it.
	ReasonSchemaContracted = "SchemaContracted"

	// ReasonServingDegraded: the serving colour degraded while the new revision was on
	// its way (ServingDegraded, and the release's failure reason under policy Stop).
	ReasonServingDegraded = "ServingDegraded"
	// ReasonServingHealthy: the serving colour kept its ready endpoints.
	ReasonServingHealthy = "ServingHealthy"

	// ReasonCompatibilityCheckRunning: the serving revision's smoke test runs against the
	// migrated database.
	ReasonCompatibilityCheckRunning = "CompatibilityCheckRunning"
	// ReasonCompatibilityCheckFailed: the serving revision failed its smoke test against
	// the migrated database; traffic never moved.
	ReasonCompatibilityCheckFailed = "CompatibilityCheckFailed"

	// ReasonRetrying is the Event of a failed revision retried by the retry annotation.
	ReasonRetrying = "Retrying"
	// ReasonRetryRefused is the Event of a retry annotation that cannot be acted on (the
	// revision has not failed, or it has been retried too often).
	ReasonRetryRefused = "RetryRefused"
)
