-- Retries the current revision after it failed, without a spec change: the operator
-- re-runs only the steps that failed, each as a new Job, and keeps those that succeeded
-- (a migration that succeeded never runs twice). The value "<revision>/<attempt>" is new
-- for every retry, as `kubectl sfrelease retry` writes it. An abort annotation naming
-- the revision is removed: it would abort the retry again.
local status = obj.status
if status == nil or status.currentRevision == nil or status.currentRevision == "" then
  error("the operator has not reported a revision for this release yet: there is nothing to retry", 0)
end
local revision = status.currentRevision
local failed = false
for _, h in ipairs(status.history or {}) do
  if h.revision == revision and h.outcome ~= "Promoted" and h.outcome ~= "Superseded" then
    failed = true
  end
end
if not failed then
  error("revision " .. revision .. " has not failed (phase " .. tostring(status.phase) .. "): there is nothing to retry", 0)
end
local retries = 0
for _, rec in ipairs(status.revisions or {}) do
  if rec.revision == revision then
    retries = #(rec.retries or {})
  end
end
if retries >= 20 then
  error("revision " .. revision .. " has been retried " .. tostring(retries) .. " times, the most allowed: apply a new spec", 0)
end
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["deploy.softfactory.io/retry"] = revision .. "/" .. tostring(retries + 2)
if obj.metadata.annotations["deploy.softfactory.io/abort"] == revision then
  obj.metadata.annotations["deploy.softfactory.io/abort"] = nil
end
return obj
