-- Approves the restore of the pre-migration dump of a release whose migration ran and
-- failed (spec.rollback.restore: Manual). The operator then scales every colour to 0,
-- loads the dump back once, and scales the serving colour back up: every write made since
-- the dump is lost. The annotation's value is the revision, so it never restores another.
local status = obj.status
if status == nil or status.currentRevision == nil or status.currentRevision == "" then
  error("the operator has not reported a revision for this release yet: there is nothing to restore", 0)
end
local awaiting = false
for _, rec in ipairs(status.revisions or {}) do
  if rec.revision == status.currentRevision and rec.restore ~= nil and rec.restore.phase == "AwaitingApproval" then
    awaiting = true
  end
end
if not awaiting then
  error("no restore awaits approval (phase " .. tostring(status.phase) .. ", revision " .. status.currentRevision .. "): there is nothing to restore", 0)
end
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["deploy.softfactory.io/restore"] = status.currentRevision
return obj
