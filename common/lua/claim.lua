-- claim: take the next job for a worker, with a lease and a fencing token.
-- KEYS[1] = {ss}:processing
-- ARGV: prefix, worker_id, lease_ms, aging_ms
-- Picks the queue whose oldest job has the highest effective priority:
-- base level (high 2, normal 1, low 0) + one level per aging_ms waited;
-- ties go to the higher base level. FIFO within a queue.
-- Returns {id, token, attempt, spec} or nil when nothing is queued.
local ms = now_ms()
promote_due(ms)
local worker, lease, aging = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local levels = {high = 2, normal = 1, low = 0}
for _ = 1, 16 do
  local best, best_eff, best_base = nil, -1, -1
  for name, base in pairs(levels) do
    local oldest = redis.call('LINDEX', P .. 'q:' .. name, -1)
    if oldest then
      local eff = base
      if aging > 0 then
        local qms = tonumber(redis.call('HGET', P .. 'job:' .. oldest, 'queued_ms') or ms)
        eff = base + math.floor((ms - qms) / aging)
      end
      if eff > best_eff or (eff == best_eff and base > best_base) then
        best, best_eff, best_base = name, eff, base
      end
    end
  end
  if not best then return nil end
  local id = redis.call('RPOP', P .. 'q:' .. best)
  local jk = P .. 'job:' .. id
  if redis.call('HGET', jk, 'state') == 'queued' then
    local token = redis.call('INCR', P .. 'fence')
    local attempt = redis.call('HINCRBY', jk, 'attempts', 1)
    local deadline = ms + lease
    local qms = tonumber(redis.call('HGET', jk, 'queued_ms') or '')
    if qms and ms >= qms then observe('job_queue_wait_seconds', (ms - qms) / 1000) end
    redis.call('HSET', jk, 'worker', worker, 'token', token, 'lease_ms', deadline,
               'started_ms', ms, 'progress', 0, 'stage', 'starting')
    redis.call('ZADD', KEYS[1], deadline, id)
    set_state(id, 'queued', 'running', ms)
    stat('started')
    emit(id, 'job.started', cjson.encode({worker = worker, attempt = attempt}), ms)
    return {id, tostring(token), attempt, redis.call('HGET', jk, 'spec')}
  end
  -- a stale id (job gone or no longer queued): drop it and look again
end
return nil
