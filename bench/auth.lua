-- ../shared/bench/events.lua sending its credential as AUTH=key (X-API-Key) or AUTH=bearer
-- (Authorization: Bearer); both rewrite the request the same way, so wrk's own cost is equal.
dofile(os.getenv("EVENTS_LUA") or "../shared/bench/events.lua")
local make = request
local bearer = os.getenv("AUTH") == "bearer"
function request()
  local r = make()
  if bearer then
    return (r:gsub("X%-API%-Key: ([^\r\n]*)", "Authorization: Bearer %1"))
  end
  return (r:gsub("X%-API%-Key: ([^\r\n]*)", "X-API-Key: %1"))
end
