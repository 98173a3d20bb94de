-- Which actions Argo CD offers on a SoftFactoryRelease. Each writes an annotation whose
-- value is status.currentRevision, so they are only offered once the operator has
-- observed the current spec: before that, currentRevision names the previous release.

local PROMOTE_ANNOTATION = "deploy.softfactory.io/promote"
local ABORT_ANNOTATION = "deploy.softfactory.io/abort"
local RESTORE_ANNOTATION = "deploy.softfactory.io/restore"

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

return actions
