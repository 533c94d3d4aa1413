-- ../shared/bench/events.lua with a pause of PACE_MS milliseconds before each request of a
-- connection, to measure latency at a fixed offered rate (connections × 1000 / PACE_MS per s).
dofile(os.getenv("EVENTS_LUA") or "../shared/bench/events.lua")
local pace = tonumber(os.getenv("PACE_MS") or "10")
function delay() return pace end
