-- heartbeat: renew a claim's lease and record progress (fenced).
-- KEYS[1] = {ss}:job:<id>
-- ARGV: prefix, id, token, lease_ms, progress (0..100), stage, emit (1 = also
--       append a job.progress event), speed and fps of the encode so far
--       ("" = not known yet; stored as given)
--       [, item name: a work item's claim (KEYS[1] is then the
--       item's hash {ss}:item:<id>:<name>, the token the item's)]
-- Returns {1, state} (state 'cancelling' tells the worker to stop), or
-- {-1, state} when the token is not the job's current one (lease lost).
local id, jk = ARGV[2], KEYS[1]
local item = ARGV[10]
local lease, progress = tonumber(ARGV[4]), tonumber(ARGV[5])
if not lease or not progress then
  return redis.error_reply('heartbeat: lease and progress must be numbers')
end
if item and item ~= '' then
  local ih = redis.call('HMGET', KEYS[1], 'token', 'state')
  local js = redis.call('HGET', P .. 'job:' .. id, 'state')
  if ih[1] ~= ARGV[3] or ih[2] ~= 'running' or (js ~= 'running' and js ~= 'cancelling') then
    return {-1, js or 'missing'}
  end
  local ms = now_ms()
  local deadline = ms + lease
  redis.call('ZADD', P .. 'processing', deadline, id .. '/' .. item)
  redis.call('HSET', KEYS[1], 'lease_ms', deadline, 'progress', ARGV[5], 'stage', ARGV[6])
  -- the job's progress: the chunks' share (done ones count whole)
  local jkk = P .. 'job:' .. id
  local n = tonumber(redis.call('HGET', jkk, 'nchunks') or '1')
  local sum = 0
  for k = 0, n - 1 do
    local pr = redis.call('HMGET', P .. 'item:' .. id .. ':c' .. k, 'state', 'progress')
    if pr[1] == 'done' then sum = sum + 100 else sum = sum + (tonumber(pr[2] or '0') or 0) end
  end
  local pct = math.floor(sum / n * 0.9 + 5)
  redis.call('HSET', jkk, 'progress', pct, 'stage', ARGV[6])
  if ARGV[7] == '1' then
    emit(id, 'job.progress', cjson.encode({percent = pct, stage = ARGV[6]}), ms)
  end
  return {1, js}
end
local h = redis.call('HMGET', jk, 'token', 'state')
if h[1] ~= ARGV[3] or (h[2] ~= 'running' and h[2] ~= 'cancelling') then
  return {-1, h[2] or 'missing'}
end
local ms = now_ms()
local deadline = ms + lease
redis.call('ZADD', P .. 'processing', deadline, id)
redis.call('HSET', jk, 'lease_ms', deadline, 'progress', ARGV[5], 'stage', ARGV[6])
if tonumber(ARGV[8] or '') and tonumber(ARGV[9] or '') then
  redis.call('HSET', jk, 'speed', ARGV[8], 'fps', ARGV[9])
end
if ARGV[7] == '1' then
  -- whole percents: events come at most every 5 %, and cjson would print
  -- 35.4 as 35.399999999999999
  emit(id, 'job.progress', cjson.encode({percent = math.floor(progress), stage = ARGV[6]}), ms)
end
return {1, h[2]}
