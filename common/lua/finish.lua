-- finish: the worker's last word on a claim (fenced).
-- KEYS[1] = {ss}:job:<id>
-- ARGV: prefix, id, token, outcome, payload_json, permanent (0|1),
--       retry_delay_ms, event_data_json
--       [, worker_id, lease_ms, aging_ms: also claim this worker's next job
--        [, 'idle': instead, only mark the worker idle in {ss}:idle;
--           'busy': the claim is beyond its slots (prefetch), finding
--           nothing does not mark it idle]]
-- outcome: completed (payload = result) | failed (payload = error object) |
--          cancelled | release (drain: back to the front of its queue, the
--          attempt not counted) | split (payload = the plan: the job becomes
--          work items, claimed by any worker; it stays running)
-- Returns {1, new_state} or {1, new_state, id, token, attempt, spec, still
-- queued[, item, payload]} with the next job (or work item) when asked for
-- and one is queued, or {-1, state} when the token
-- is stale (then nothing is claimed either).
local id, jk, outcome = ARGV[2], KEYS[1], ARGV[4]
local h = redis.call('HMGET', jk, unpack(FINISH_FIELDS))
if h[1] ~= ARGV[3] or (h[2] ~= 'running' and h[2] ~= 'cancelling') then
  return {-1, h[2] or 'missing'}
end
-- Check every argument before the first write: Redis does not roll back a
-- script that fails half way, and a job must never be left out of every
-- index.
local valid = {completed = true, failed = true, cancelled = true, release = true, split = true}
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
local plan_chunks
if outcome == 'split' then
  local ok, p = pcall(cjson.decode, ARGV[5])
  if not ok or type(p) ~= 'table' or type(p.chunks) ~= 'table' or #p.chunks < 2 then
    return redis.error_reply('finish: a split needs a plan with at least two chunks')
  end
  plan_chunks = #p.chunks
end
if ARGV[9] and ARGV[9] ~= '' and not (tonumber(ARGV[10]) and tonumber(ARGV[11])) then
  return redis.error_reply('finish: bad claim arguments')
end
local from = h[2]
local ms = now_ms()
if outcome == 'completed' then
  complete_job(id, h, ARGV[5], ARGV[8], ms)
  return reply_and_claim('completed', ARGV[9], ARGV[10], ARGV[11], ARGV[12], ms)
end
redis.call('ZREM', P .. 'processing', id)
redis.call('HSET', jk, 'token', '', 'lease_ms', 0)
-- A job the user cancelled ends cancelled, whatever the worker reports
-- short of success: a failure or a drain release must not revive it.
if (outcome == 'failed' or outcome == 'release') and from == 'cancelling' then
  outcome = 'cancelled'
end
local st
if outcome == 'split' and from == 'cancelling' then
  outcome = 'cancelled'
end
if outcome == 'split' then
  -- the plan item is done: chunks (in time order) and audio ready,
  -- finalize waiting for them; the job goes back to the head of its queue
  local names = {}
  local jh = redis.call('HMGET', jk, 'worker', 'attempts', 'started_ms')
  for k = 0, plan_chunks - 1 do names[#names + 1] = 'c' .. k end
  names[#names + 1] = 'audio'
  names[#names + 1] = 'finalize'
  table.insert(names, 1, 'plan')
  local okp, pl = pcall(cjson.decode, ARGV[5])
  local pcpu = okp and type(pl.timings) == 'table' and tonumber(pl.timings.cpu_seconds) or 0
  redis.call('HSET', item_key(id, 'plan'), 'state', 'done', 'worker', jh[1] or '', 'attempts',
             jh[2] or '1', 'started_ms', jh[3] or ms, 'finished_ms', ms, 'cpu_seconds', pcpu,
             'progress', 100)
  redis.call('DEL', P .. 'ready:' .. id)
  for i = 2, #names do
    local n = names[i]
    redis.call('DEL', item_key(id, n))
    redis.call('HSET', item_key(id, n), 'state', 'waiting', 'attempts', 0, 'progress', 0)
  end
  -- ready at once, in claim order: c0, audio, c1, ..., c<n-1>. The audio
  -- runs in parallel with the chunks (it is cut to the announced length;
  -- item_finish runs it again if the chunks measure another), second so
  -- that a second worker starts on it while the first encodes c0
  local order = {'c0', 'audio'}
  for k = 1, plan_chunks - 1 do order[#order + 1] = 'c' .. k end
  for _, n in ipairs(order) do
    redis.call('RPUSH', P .. 'ready:' .. id, n)
    redis.call('HSET', item_key(id, n), 'state', 'ready')
  end
  redis.call('HSET', jk, 'split', '1', 'plan', ARGV[5], 'items', cjson.encode(names), 'nchunks',
             plan_chunks, 'chunks_done', 0, 'vframes', 0, 'items_running', 0, 'stage', 'encoding')
  stat('items_done:plan')
  requeue_split(id, h[3])
  -- every chunk and the audio are claimable now: wake as many idle
  -- workers (the planner claims one itself, requeue_split woke one)
  wake_idle(id, plan_chunks - 1, ms)
  st = 'running'
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
return reply_and_claim(st, ARGV[9], ARGV[10], ARGV[11], ARGV[12], ms)
