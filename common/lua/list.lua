-- list: one page of jobs, newest first, with their summary fields.
-- KEYS[1] = {ss}:jobs (all) or {ss}:st:<state>
-- ARGV: prefix, offset, limit
-- Returns {total, {field, value, ...}, ...} (one flat field list per job).
local total = redis.call('ZCARD', KEYS[1])
local first = tonumber(ARGV[2])
local ids = redis.call('ZREVRANGE', KEYS[1], first, first + tonumber(ARGV[3]) - 1)
local names = {'id', 'state', 'priority', 'progress', 'stage', 'attempts', 'max_attempts',
               'worker', 'created_ms', 'started_ms', 'finished_ms', 'updated_ms',
               'retry_at_ms', 'error', 'spec'}
local out = {total}
for _, id in ipairs(ids) do
  local vals = redis.call('HMGET', P .. 'job:' .. id, unpack(names))
  local flat = {}
  for i, n in ipairs(names) do
    if vals[i] then
      flat[#flat + 1] = n
      flat[#flat + 1] = vals[i]
    end
  end
  if #flat > 0 then out[#out + 1] = flat end
end
return out
