-- reap: requeue jobs whose lease expired (their worker died, hung or lost
-- Redis for longer than the lease), and promote due retries.
-- KEYS[1] = {ss}:processing
-- ARGV: prefix, backoff_base_ms, backoff_cap_ms, jitter (0..1), limit
-- Returns the number of expired claims handled.
local ms = now_ms()
promote_due(ms)
local base, cap, jitter = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ms, 'LIMIT', 0, tonumber(ARGV[5]))
for i, id in ipairs(ids) do
  local slash = string.find(id, '/', 1, true)
  if slash then
    -- a work item of a split job: its attempt failed (lease_expired), it
    -- runs again at the head of the job's items after the backoff
    -- (docs/SPLIT.md)
    local jid, name = string.sub(id, 1, slash - 1), string.sub(id, slash + 1)
    local ik = item_key(jid, name)
    local w = redis.call('HGET', ik, 'worker')
    redis.call('ZREM', KEYS[1], id)
    redis.call('HSET', ik, 'token', '', 'lease_ms', 0, 'finished_ms', ms)
    redis.call('HINCRBY', P .. 'job:' .. jid, 'items_running', -1)
    stat('reaped')
    local att = tonumber(redis.call('HGET', ik, 'attempts') or '1')
    item_fail(jid, name, false, ms, cjson.encode({code = 'lease_expired',
      message = 'worker ' .. tostring(w) .. ' stopped renewing its lease on item ' .. name ..
                ' (killed, hung or cut off)'}),
      item_backoff_ms(att, base, cap, (jitter + i * 0.6180339887) % 1))
  else
  local jk = P .. 'job:' .. id
  local h = redis.call('HMGET', jk, 'state', 'attempts', 'worker')
  redis.call('ZREM', KEYS[1], id)
  redis.call('HSET', jk, 'token', '', 'lease_ms', 0)
  stat('reaped')
  if h[1] == 'cancelling' then
    redis.call('HSET', jk, 'finished_ms', ms, 'stage', 'cancelled')
    set_state(id, 'cancelling', 'cancelled', ms)
    stat('cancelled')
    emit(id, 'job.cancelled', cjson.encode({reason = 'worker lost while cancelling'}), ms)
  elseif h[1] == 'running' then
    -- exponential backoff with jitter: [d/2, d], d = base * 2^(attempts-1)
    local attempts = tonumber(h[2] or '1')
    local d = base * math.pow(2, math.max(attempts - 1, 0))
    if d > cap then d = cap end
    local j = (jitter + i * 0.6180339887) % 1
    local delay = math.floor(d / 2 + j * d / 2)
    local err = cjson.encode({code = 'lease_expired',
      message = 'worker ' .. tostring(h[3]) .. ' stopped renewing its lease (killed, hung or cut off)'})
    fail_or_retry(id, 'running', false, delay, ms, err)
  end
  end
end
return #ids
