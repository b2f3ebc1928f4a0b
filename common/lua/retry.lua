-- retry: re-drive a failed, dead or cancelled job with fresh attempts.
-- KEYS[1] = {ss}:job:<id>; ARGV: prefix, id
-- Returns {1, 'queued'} or {0, state} when the job is not in a final
-- failure state.
local id, jk = ARGV[2], KEYS[1]
local h = redis.call('HMGET', jk, 'state', 'priority')
local st = h[1]
if not st then return {0, 'missing'} end
if st ~= 'failed' and st ~= 'dead' and st ~= 'cancelled' then return {0, st} end
local ms = now_ms()
redis.call('LREM', P .. 'dead', 0, id)
redis.call('HSET', jk, 'attempts', 0, 'queued_ms', ms, 'progress', 0, 'stage', 'queued')
redis.call('HDEL', jk, 'finished_ms', 'retry_at_ms', 'result', 'error', 'worker', 'started_ms')
-- a split job starts again from its plan: its items go
for _, n in ipairs(cjson.decode(redis.call('HGET', jk, 'items') or '[]')) do
  redis.call('DEL', item_key(id, n))
end
redis.call('DEL', P .. 'ready:' .. id)
redis.call('HDEL', jk, 'split', 'plan', 'items', 'nchunks', 'chunks_done', 'items_running')
set_state(id, st, 'queued', ms)
redis.call('LPUSH', P .. 'q:' .. (h[2] or 'normal'), id)
stat('redriven')
emit(id, 'job.queued', cjson.encode({redrive = true, previous_state = st}), ms)
notify_work(id, ms)
return {1, 'queued'}
