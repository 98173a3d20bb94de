-- Promotes the release waiting in AwaitingPromotion: the operator points the active
-- Service at the new colour. The annotation's value is the revision being promoted, so
-- if a new spec arrives meanwhile the operator ignores it rather than promoting a
-- release nobody has looked at.
local status = obj.status
if status == nil or status.currentRevision == nil or status.currentRevision == "" then
  error("the operator has not reported a revision for this release yet: there is nothing to promote", 0)
end
if status.phase ~= "AwaitingPromotion" then
  error("the release is not awaiting promotion (phase " .. tostring(status.phase) .. "): promote applies only in AwaitingPromotion", 0)
end
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["deploy.softfactory.io/promote"] = status.currentRevision
return obj
