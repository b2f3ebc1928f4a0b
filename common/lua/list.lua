-- list: one page of jobs, newest first, with their summary fields.
-- KEYS[1] = {ss}:jobs (all) or {ss}:st:<state>
-- ARGV: prefix, offset, limit, query (optional, lower case)
-- With a query, only jobs whose id starts with it, or whose source or
-- metadata (as JSON) contain it (case-insensitive), among the newest
-- SEARCH_MAX of the key; total is then the number of those matches.
-- Returns {total, {field, value, ...}, ...} (one flat field list per job).
local names = {'id', 'state', 'priority', 'progress', 'stage', 'attempts', 'max_attempts',
               'worker', 'created_ms', 'started_ms', 'finished_ms', 'updated_ms',
               'retry_at_ms', 'error', 'spec', 'speed', 'fps', 'playable_ms', 'playable_url'}
local SEARCH_MAX = 10000
local first, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local q = ARGV[4] or ''

local function row(id)
  local vals = redis.call('HMGET', P .. 'job:' .. id, unpack(names))
  local flat = {}
  for i, n in ipairs(names) do
    if vals[i] then
      flat[#flat + 1] = n
      flat[#flat + 1] = vals[i]
    end
  end
  return flat
end

if q == '' then
  local out = {redis.call('ZCARD', KEYS[1])}
  for _, id in ipairs(redis.call('ZREVRANGE', KEYS[1], first, first + limit - 1)) do
    local flat = row(id)
    if #flat > 0 then out[#out + 1] = flat end
  end
  return out
end

-- the spec holds the webhook secret: match only the source and metadata
local function matches(id)
  if string.sub(id, 1, #q) == q then return true end
  local spec = redis.call('HGET', P .. 'job:' .. id, 'spec')
  if not spec or not string.find(string.lower(spec), q, 1, true) then return false end
  local ok, s = pcall(cjson.decode, spec)
  if not ok or type(s) ~= 'table' then return false end
  if type(s.source) == 'string' and string.find(string.lower(s.source), q, 1, true) then
    return true
  end
  return s.metadata ~= nil and
         string.find(string.lower(cjson.encode(s.metadata)), q, 1, true) ~= nil
end

local out, found = {0}, 0
local ids = redis.call('ZREVRANGE', KEYS[1], 0, SEARCH_MAX - 1)
for _, id in ipairs(ids) do
  if matches(id) then
    if found >= first and found < first + limit then
      local flat = row(id)
      if #flat > 0 then out[#out + 1] = flat end
    end
    found = found + 1
  end
end
out[1] = found
return out
