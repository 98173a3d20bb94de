-- Aborts the release in flight: the operator stops it, scales green down (or keeps it,
-- per spec.rollback.onFailure) and traffic stays on the colour serving it now. The
-- annotation's value is the revision being aborted, so it never aborts a later release.
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

local status = obj.status
if status == nil or status.currentRevision == nil or status.currentRevision == "" then
  error("the operator has not reported a revision for this release yet: there is nothing to abort", 0)
end
if not ABORTABLE[status.phase] or status.currentRevision == status.stableRevision then
  error("no release is in flight (phase " .. tostring(status.phase) .. ", revision " .. status.currentRevision .. "): there is nothing to abort", 0)
end
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["deploy.softfactory.io/abort"] = status.currentRevision
return obj
