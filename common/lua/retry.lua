-- retry: re-drive a failed, dead or cancelled job with fresh attempts.
-- KEYS[1] = {ss}:job:<id>; ARGV: prefix, id
-- Returns {1, 'queued'} or {0, state} when the job is not in a final
-- failure state.
local id, jk = ARGV[2], KEYS[1]
local h = redis.call('HMGET', jk, 'state', 'priority')
local st = h[1]
if not st then return {0, 'missing'} end
if st ~= 'failed' and st ~= 'dead' and st ~= 'cancelled' then return {0, st} end
redrive(id, st, h[2], now_ms())
return {1, 'queued'}
