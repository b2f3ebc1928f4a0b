-- bulk: retry or clear the jobs in one final state, a batch at a time
-- (the operator console's "retry all" / "clear all").
-- KEYS[1] = {ss}:st:<state>; ARGV: prefix, action, state, limit
-- action 'retry': failed, dead or cancelled jobs, oldest first, are queued
-- again with fresh attempts, a worker woken for each (as retry.lua); 'clear': completed, failed,
-- cancelled or dead jobs are forgotten (as expire.lua).
-- Returns {done, remaining}; the caller repeats while remaining > 0.
local action, st, limit = ARGV[2], ARGV[3], tonumber(ARGV[4])
local ids = redis.call('ZRANGE', KEYS[1], 0, limit - 1)
local ms = now_ms()
local done = 0
for _, id in ipairs(ids) do
  local jk = P .. 'job:' .. id
  local h = redis.call('HMGET', jk, 'state', 'priority')
  if h[1] ~= st then
    redis.call('ZREM', KEYS[1], id)   -- a stale index entry
  elseif action == 'retry' then
    redrive(id, st, h[2], ms)
    done = done + 1
  else
    forget(id, st)
    done = done + 1
  end
end
if action == 'clear' and done > 0 then stat('cleared', done) end
return {done, redis.call('ZCARD', KEYS[1])}
