-- cancel: stop a job. Queued or waiting to retry: cancelled at once.
-- Running: state 'cancelling' and a message on {ss}:ctl:<id>; the worker
-- stops and confirms with finish(cancelled) (or the reaper does, if the
-- worker is gone). A split job queued by a retry that continues from its
-- plan (its done items' files are stored) is cancelled as a running one,
-- so that its `delete` item removes them.
-- KEYS[1] = {ss}:job:<id>; ARGV: prefix, id, reason
-- Returns {1, new_state}, or {0, state} when there is nothing to cancel.
local id, jk = ARGV[2], KEYS[1]
local h = redis.call('HMGET', jk, 'state', 'priority')
local st = h[1]
if not st then return {0, 'missing'} end
local ms = now_ms()
local split = redis.call('HGET', jk, 'split') == '1'
if st == 'retrying' and split then
  -- a retry that continues from its plan, waiting for the previous run's
  -- claims to end (redrive): its kept items' files go as a queued one's
  redis.call('ZREM', P .. 'delayed', id)
  redis.call('HDEL', jk, 'retry_at_ms')
end
if (st == 'queued' and not split) or (st == 'retrying' and not split) then
  if st == 'queued' then
    redis.call('LREM', P .. 'q:' .. (h[2] or 'normal'), 0, id)
  else
    redis.call('ZREM', P .. 'delayed', id)
  end
  redis.call('HSET', jk, 'finished_ms', ms, 'stage', 'cancelled')
  set_state(id, st, 'cancelled', ms)
  stat('cancelled')
  emit(id, 'job.cancelled', cjson.encode({reason = ARGV[3]}), ms)
  return {1, 'cancelled'}
end
if st == 'running' or st == 'cancelling' or st == 'queued' or st == 'retrying' then
  if st ~= 'cancelling' then set_state(id, st, 'cancelling', ms) end
  redis.call('PUBLISH', P .. 'ctl:' .. id, 'cancel')
  if split then
    -- a split job: nothing more of it is claimed; it ends cancelled when
    -- its last running item stops (at once when none runs)
    drop_ready(id, h[2])
    split_cancel_done(id, ms)
    return {1, redis.call('HGET', jk, 'state')}
  end
  return {1, 'cancelling'}
end
return {0, st}
