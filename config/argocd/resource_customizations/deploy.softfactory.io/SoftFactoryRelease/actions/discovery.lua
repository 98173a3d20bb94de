-- Which actions Argo CD offers on a SoftFactoryRelease. Each writes an annotation whose
-- value is status.currentRevision, so they are only offered once the operator has
-- observed the current spec: before that, currentRevision names the previous release.

local PROMOTE_ANNOTATION = "deploy.softfactory.io/promote"
local ABORT_ANNOTATION = "deploy.softfactory.io/abort"
local RESTORE_ANNOTATION = "deploy.softfactory.io/restore"
local RETRY_ANNOTATION = "deploy.softfactory.io/retry"
-- As the operator's MaxRetries.
local MAX_RETRIES = 20

-- The failures a retry clears (api/v1alpha1/retry_funcs.go). Not MigrationLost: whether
-- that migration changed the database is unknown, a person looks first.
local RETRYABLE = {
  BackupFailed = true,
  MigrationFailed = true,
  MigrationNeverRan = true,
  MigrationNeverStarted = true,
  ProgressDeadlineExceeded = true,
  PodsCannotStart = true,
  SmokeTestFailed = true,
  AnalysisFailed = true,
  AnalysisInconclusive = true,
  Aborted = true,
  RolledBack = true,
  CompatibilityCheckFailed = true,
  ContractFailed = true,
  ServingDegraded = true,
}

-- Phases in which a release has not settled and can still be aborted.
local ABORTABLE = {
  Pending = true,
  BackingUp = true,
  Migrating = true,
  Deploying = true,
  Verifying = true,
  AwaitingPromotion = true,
  Promoting = true,
  Paused = true,
}

local actions = {}
actions["promote"] = { ["disabled"] = true, ["displayName"] = "Promote release" }
actions["abort"] = { ["disabled"] = true, ["displayName"] = "Abort release" }
actions["restore"] = { ["disabled"] = true, ["displayName"] = "Restore database (writes since the dump are lost)" }
actions["retry"] = { ["disabled"] = true, ["displayName"] = "Retry the failed steps" }

local status = obj.status
if status == nil then
  return actions
end
local revision = status.currentRevision
if revision == nil or revision == "" then
  return actions
end
if obj.metadata.generation ~= nil and status.observedGeneration ~= obj.metadata.generation then
  return actions
end

local annotations = obj.metadata.annotations or {}

-- An action already requested for this revision is not offered again.
if status.phase == "AwaitingPromotion" and annotations[PROMOTE_ANNOTATION] ~= revision then
  actions["promote"]["disabled"] = false
end

-- A settled release has currentRevision == stableRevision: there is nothing to abort.
if ABORTABLE[status.phase] and status.stableRevision ~= revision and annotations[ABORT_ANNOTATION] ~= revision then
  actions["abort"]["disabled"] = false
end

-- A manual restore waits for approval in the current revision's record.
for _, rec in ipairs(status.revisions or {}) do
  if rec.revision == revision and rec.restore ~= nil and rec.restore.phase == "AwaitingApproval" and annotations[RESTORE_ANNOTATION] ~= revision then
    actions["restore"]["disabled"] = false
  end
end

-- A retry is offered when the current revision stopped with a failure a retry clears
-- (its history record) and has retries left; its value names the next attempt, so one
-- already requested is not offered again.
local failed = false
for _, h in ipairs(status.history or {}) do
  if h.revision == revision and h.outcome ~= "Promoted" and h.outcome ~= "Superseded" and RETRYABLE[h.reason] then
    failed = true
  end
end
local retries = 0
for _, rec in ipairs(status.revisions or {}) do
  if rec.revision == revision then
    retries = #(rec.retries or {})
  end
end
if failed and retries < MAX_RETRIES and annotations[RETRY_ANNOTATION] ~= revision .. "/" .. tostring(retries + 2) then
  actions["retry"]["disabled"] = false
end

return actions
