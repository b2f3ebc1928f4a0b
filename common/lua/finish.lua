-- finish: the worker's last word on a claim (fenced).
-- KEYS[1] = {ss}:job:<id>
-- ARGV: prefix, id, token, outcome, payload_json, permanent (0|1),
--       retry_delay_ms, event_data_json
--       [, worker_id, lease_ms, aging_ms: also claim this worker's next job
--        [, 'idle': instead, only mark the worker idle in {ss}:idle]]
-- outcome: completed (payload = result) | failed (payload = error object) |
--          cancelled | release (drain: back to the front of its queue, the
--          attempt not counted)
-- Returns {1, new_state} or {1, new_state, id, token, attempt, spec, still
-- queued} with the next job when asked for and one is queued, or {-1, state} when the token
-- is stale (then nothing is claimed either).
local id, jk, outcome = ARGV[2], KEYS[1], ARGV[4]
local h = redis.call('HMGET', jk, 'token', 'state', 'priority')
if h[1] ~= ARGV[3] or (h[2] ~= 'running' and h[2] ~= 'cancelling') then
  return {-1, h[2] or 'missing'}
end
-- Check every argument before the first write: Redis does not roll back a
-- script that fails half way, and a job must never be left out of every
-- index.
local valid = {completed = true, failed = true, cancelled = true, release = true}
if not valid[outcome] then
  return redis.error_reply('finish: unknown outcome ' .. tostring(outcome))
end
if outcome == 'failed' then
  local ok, e = pcall(cjson.decode, ARGV[5])
  if not ok or type(e) ~= 'table' then
    return redis.error_reply('finish: the error payload is not a JSON object')
  end
  if not tonumber(ARGV[7]) then
    return redis.error_reply('finish: bad retry delay')
  end
end
if ARGV[9] and ARGV[9] ~= '' and not (tonumber(ARGV[10]) and tonumber(ARGV[11])) then
  return redis.error_reply('finish: bad claim arguments')
end
local from = h[2]
local ms = now_ms()
redis.call('ZREM', P .. 'processing', id)
redis.call('HSET', jk, 'token', '', 'lease_ms', 0)
-- A job the user cancelled ends cancelled, whatever the worker reports
-- short of success: a failure or a drain release must not revive it.
if (outcome == 'failed' or outcome == 'release') and from == 'cancelling' then
  outcome = 'cancelled'
end
local st
if outcome == 'completed' then
  redis.call('HSET', jk, 'result', ARGV[5], 'finished_ms', ms, 'progress', 100, 'stage', 'done')
  redis.call('HDEL', jk, 'error')
  set_state(id, from, 'completed', ms)
  stat('completed')
  count_result(jk, ms, ARGV[5])
  emit(id, 'job.completed', ARGV[8], ms)
  st = 'completed'
elseif outcome == 'cancelled' then
  redis.call('HSET', jk, 'finished_ms', ms, 'stage', 'cancelled')
  set_state(id, from, 'cancelled', ms)
  stat('cancelled')
  emit(id, 'job.cancelled', ARGV[8], ms)
  st = 'cancelled'
elseif outcome == 'release' then
  redis.call('HINCRBY', jk, 'attempts', -1)
  redis.call('HSET', jk, 'stage', 'queued', 'progress', 0)
  redis.call('RPUSH', P .. 'q:' .. (h[3] or 'normal'), id)
  set_state(id, from, 'queued', ms)
  stat('released')
  emit(id, 'job.retrying', ARGV[8], ms)
  notify_work(id, ms)
  st = 'queued'
else -- failed (checked above)
  st = fail_or_retry(id, from, ARGV[6] == '1', tonumber(ARGV[7]), ms, ARGV[5])
end
-- The worker's next job in the same call (one round trip per job). A
-- draining worker never asks. ARGV[12] 'idle': the worker's last claim
-- found the queue empty; it only says it is idle (notify_work wakes it).
if ARGV[9] and ARGV[9] ~= '' and ARGV[12] == 'idle' then
  redis.call('ZADD', P .. 'idle', ms, ARGV[9])
elseif ARGV[9] and ARGV[9] ~= '' then
  promote_due(ms)
  local nxt = claim_next(ARGV[9], tonumber(ARGV[10]), tonumber(ARGV[11]), ms)
  if nxt then return {1, st, nxt[1], nxt[2], nxt[3], nxt[4], nxt[5]} end
end
return {1, st}
