-- Health of a SoftFactoryRelease, for Argo CD.
--
-- Argo CD runs scripts from argocd-cm with only Lua's base and table libraries (no
-- string library unless useOpenLibs is set), so this uses nothing else.
--
-- The order of the checks matters:
--   1. a status written for an older spec says nothing about the current one, so an
--      unobserved generation is Progressing whatever the old status said;
--   2. a failure is Degraded even while paused or waiting, because it needs a human;
--   3. paused and waiting for a manual promotion are Suspended: nothing moves until
--      someone acts (Argo CD shows them apart from a release that is still working);
--   4. a release step in flight is Progressing even if Ready is still True from the
--      last release, which keeps serving until the flip;
--   5. only then does Ready=True mean Healthy.

local PROMOTE_ANNOTATION = "deploy.softfactory.io/promote"

local IN_FLIGHT = {
  Pending = true,
  BackingUp = true,
  Migrating = true,
  Deploying = true,
  Verifying = true,
  Promoting = true,
}

local function condition(status, conditionType)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

local function isTrue(c)
  return c ~= nil and c.status == "True"
end

local function nonEmpty(s)
  return s ~= nil and s ~= ""
end

-- describe turns a condition into "Reason: message", falling back when it says nothing.
local function describe(c, fallback)
  if c == nil or not nonEmpty(c.message) then
    return fallback
  end
  if nonEmpty(c.reason) then
    return c.reason .. ": " .. c.message
  end
  return c.message
end

local function annotation(name)
  if obj.metadata == nil or obj.metadata.annotations == nil then
    return nil
  end
  return obj.metadata.annotations[name]
end

local function health(state, message)
  return { status = state, message = message }
end

local status = obj.status
if status == nil then
  return health("Progressing", "Waiting for the operator to report status")
end

local ready = condition(status, "Ready")
local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= generation then
  local message = "Waiting for the operator to observe generation " .. tostring(generation)
  -- The operator stamps each condition with the generation it describes, and keeps
  -- observedGeneration back while a pass fails; a Ready written for this generation
  -- says why it is taking long.
  if ready ~= nil and ready.observedGeneration == generation and nonEmpty(ready.message) then
    message = message .. "; " .. describe(ready, "")
  end
  return health("Progressing", message)
end

local phase = status.phase or ""
local revision = status.currentRevision or ""
local degraded = condition(status, "Degraded")

if isTrue(degraded) or phase == "Failed" or phase == "RolledBack" then
  local fallback = "Release " .. revision .. " failed"
  if phase == "RolledBack" then
    fallback = "Release " .. revision .. " was rolled back"
  end
  if isTrue(degraded) then
    return health("Degraded", describe(degraded, fallback))
  end
  return health("Degraded", describe(ready, fallback))
end

if phase == "Paused" or (obj.spec ~= nil and obj.spec.paused == true) then
  return health("Suspended", "Paused by spec.paused; set it to false to resume")
end

if phase == "AwaitingPromotion" then
  -- The annotation's value names the revision it promotes; one left over from an
  -- earlier release promotes nothing, so only a match means the operator is about to act.
  if nonEmpty(revision) and annotation(PROMOTE_ANNOTATION) == revision then
    return health("Progressing", "Promotion of revision " .. revision .. " requested; waiting for the operator to switch traffic")
  end
  return health("Suspended", "Revision " .. revision .. " is ready on the preview Service and waits for promotion (the promote action, or kubectl sfrelease promote)")
end

if IN_FLIGHT[phase] then
  return health("Progressing", describe(ready, phase))
end

if isTrue(ready) then
  -- stableRevision is what serves traffic; until it catches up with the current
  -- revision the release has not finished, whatever Ready says.
  if nonEmpty(revision) and nonEmpty(status.stableRevision) and status.stableRevision ~= revision then
    return health("Progressing", "Waiting for revision " .. revision .. " to serve traffic; " .. status.stableRevision .. " still does")
  end
  if nonEmpty(status.activeImage) and nonEmpty(status.activeColor) then
    return health("Healthy", "Serving " .. status.activeImage .. " on " .. status.activeColor .. " (revision " .. revision .. ")")
  end
  return health("Healthy", describe(ready, "Release " .. revision .. " is serving"))
end

return health("Progressing", describe(ready, "Waiting for the release to settle"))
