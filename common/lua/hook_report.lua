-- hook_report: the outcome of one webhook delivery attempt (docs/WEBHOOKS.md).
-- KEYS[1] = {ss}:job:<id>
-- ARGV: prefix, id, token, seq, outcome, next_ms, error
-- outcome: ok      (2xx: the event is delivered)
--          retry   (failed; try the same event again at next_ms)
--          giveup  (failed past webhook_max_age_s: undeliverable, move on)
--          release (not attempted / aborted at shutdown: due again now)
-- The token must be the one hook_take handed out (the delivery lease);
-- a report after the lease was taken over is refused, so a slow or
-- resumed dispatcher cannot move hook_seq under another one.
-- ok/giveup set hook_seq = seq and keep the job due (now) while events
-- remain, else drop it from {ss}:hooks:due.
-- Returns {1, events still to deliver} or {-1, 'stale'}.
local id, jk = ARGV[2], KEYS[1]
local h = redis.call('HMGET', jk, 'hook_token', 'hook_seq', 'seq')
local seq = tonumber(ARGV[4])
if not h[1] or h[1] ~= ARGV[3] or tonumber(h[2] or '0') >= seq then
  return {-1, 'stale'}
end
local ms = now_ms()
local due = P .. 'hooks:due'
local last = tonumber(h[3] or '0')
local outcome = ARGV[5]
if outcome ~= 'ok' and outcome ~= 'retry' and outcome ~= 'giveup' and outcome ~= 'release' then
  return redis.error_reply('hook_report: unknown outcome ' .. tostring(outcome))
end
redis.call('HINCRBY', jk, 'hook_token', 1)   -- one report per lease
if outcome == 'release' then
  redis.call('ZADD', due, ms, id)
  return {1, last - tonumber(h[2] or '0')}
elseif outcome == 'retry' then
  local nxt = tonumber(ARGV[6])
  redis.call('HINCRBY', jk, 'hook_attempts', 1)
  redis.call('HSET', jk, 'hook_next_ms', nxt, 'hook_last_error', ARGV[7], 'hook_last_error_ms', ms)
  redis.call('ZADD', due, nxt, id)
  stat('hook_retried')
  return {1, last - tonumber(h[2] or '0')}
elseif outcome == 'ok' then
  redis.call('HSET', jk, 'hook_seq', seq, 'hook_attempts', 0, 'hook_delivered_ms', ms)
  stat('hook_delivered')
else   -- giveup
  local list = cjson.decode(redis.call('HGET', jk, 'hook_dead') or '[]')
  list[#list + 1] = seq
  while #list > 100 do table.remove(list, 1) end
  redis.call('HSET', jk, 'hook_seq', seq, 'hook_attempts', 0, 'hook_dead', cjson.encode(list),
             'hook_last_error', ARGV[7], 'hook_last_error_ms', ms)
  redis.call('HINCRBY', jk, 'hook_failed', 1)
  stat('hook_undeliverable')
end
redis.call('HDEL', jk, 'hook_next_ms')
if last > seq then
  redis.call('ZADD', due, ms, id)
else
  redis.call('ZREM', due, id)
end
return {1, last - seq}
