-- item_finish: a work item's last word (fenced by the item's token), and
-- optionally the worker's next claim (as finish.lua).
-- KEYS[1] = {ss}:item:<id>:<name>
-- ARGV: prefix, id, name, token, outcome, payload_json, permanent (0|1),
--       event_data_json, cpu_seconds, retry_delay_ms (failed: the backoff
--       before the item's next attempt) [, worker_id, lease_ms, aging_ms
--       [, 'idle' | 'busy']] (as finish.lua's)
-- outcome: completed (payload = the item's record; for finalize the job's
--          result) | failed (payload = error object) | cancelled | release
-- Chunks and audio run in parallel; when the last of them is done,
-- finalize is ready (or the audio runs again, cut to the length the chunks
-- measured, if it was cut to another: audio_or_finalize); finalize
-- completes the job.
-- Returns {1, job_state[, next claim...]} or {-1, job_state} when the token
-- is stale.
local ik, id, name, outcome = KEYS[1], ARGV[2], ARGV[3], ARGV[5]
local jk = P .. 'job:' .. id
local ih = redis.call('HMGET', ik, 'token', 'state')
local jh = redis.call('HMGET', jk, 'state', 'priority', 'nchunks')
if ih[1] ~= ARGV[4] or ih[2] ~= 'running' then
  -- a claim a re-plan or retry took away: its worker stores no more now
  if jh[1] then fence_release(id, ARGV[4], now_ms()) end
  return {-1, jh[1] or 'missing'}
end
local valid = {completed = true, failed = true, cancelled = true, release = true}
if not valid[outcome] then
  return redis.error_reply('item_finish: unknown outcome ' .. tostring(outcome))
end
if outcome == 'failed' then
  local ok, e = pcall(cjson.decode, ARGV[6])
  if not ok or type(e) ~= 'table' then
    return redis.error_reply('item_finish: the error payload is not a JSON object')
  end
end
if not tonumber(ARGV[10]) then
  return redis.error_reply('item_finish: bad retry delay')
end
if ARGV[11] and ARGV[11] ~= '' and not (tonumber(ARGV[12]) and tonumber(ARGV[13])) then
  return redis.error_reply('item_finish: bad claim arguments')
end
local ms = now_ms()
redis.call('ZREM', P .. 'processing', id .. '/' .. name)
redis.call('HSET', ik, 'token', '', 'lease_ms', 0, 'finished_ms', ms,
           'cpu_seconds', tonumber(ARGV[9]) or 0)
redis.call('HINCRBY', jk, 'items_running', -1)
local from = jh[1]
local st = from
if from ~= 'running' then
  -- the job is being cancelled (or ended): the item stops here
  redis.call('HSET', ik, 'state', 'cancelled')
  split_cancel_done(id, ms)
  st = redis.call('HGET', jk, 'state')
elseif outcome == 'completed' then
  redis.call('HSET', ik, 'state', 'done', 'result', ARGV[6], 'progress', 100)
  stat('items_done:' .. item_kind(name))
  if name == 'finalize' then
    redis.call('DEL', P .. 'ready:' .. id)
    redis.call('HSET', jk, 'result', ARGV[6], 'finished_ms', ms, 'progress', 100, 'stage', 'done')
    redis.call('HDEL', jk, 'error')
    set_state(id, 'running', 'completed', ms)
    stat('completed')
    count_result(jk, ms, ARGV[6])
    playable_at_end(id, ARGV[6], ms)
    emit(id, 'job.completed', ARGV[8], ms)
    st = 'completed'
  else
    if item_kind(name) == 'chunk' then
      local ok, rec = pcall(cjson.decode, ARGV[6])
      local f = ok and type(rec) == 'table' and tonumber(rec.frames) or 0
      redis.call('HINCRBY', jk, 'chunks_done', 1)
      redis.call('HINCRBY', jk, 'vframes', f)
    end
    audio_or_finalize(id, jh[2], tonumber(jh[3] or '0'), ms)
  end
elseif outcome == 'release' then
  -- a draining worker hands the item back: again at once, not counted
  redis.call('HINCRBY', ik, 'attempts', -1)
  item_ready(id, name, jh[2], true)
  stat('released')
elseif outcome == 'cancelled' then
  redis.call('HSET', ik, 'state', 'cancelled')
else
  st = item_fail(id, name, ARGV[7] == '1', ms, ARGV[6], tonumber(ARGV[10]))
end
return reply_and_claim(st, ARGV[11], ARGV[12], ARGV[13], ARGV[14], ms)
