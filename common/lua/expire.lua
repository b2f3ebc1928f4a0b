-- expire: forget jobs that ended long ago (retention).
-- KEYS[1] = {ss}:jobs; ARGV: prefix, cutoff_ms, limit
-- Jobs in a final state (completed, failed, cancelled, dead) whose final
-- transition is older than cutoff_ms lose their hash and event stream and
-- leave every index. Outputs in storage are not touched.
-- Returns the number of jobs removed.
local cutoff, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local n = 0
for _, st in ipairs({'completed', 'failed', 'cancelled', 'dead'}) do
  if n >= limit then break end
  local ids = redis.call('ZRANGEBYSCORE', P .. 'st:' .. st, '-inf', cutoff, 'LIMIT', 0, limit - n)
  for _, id in ipairs(ids) do
    forget(id, st)
    n = n + 1
  end
end
if n > 0 then stat('expired', n) end
return n
