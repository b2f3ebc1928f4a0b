-- hook_take: lease up to N jobs whose webhook delivery is due, each with the
-- next event it must deliver (docs/WEBHOOKS.md).
-- KEYS[1] = {ss}:hooks:due
-- ARGV: prefix, limit, lease_ms
-- A due job with no webhook, or nothing left to deliver, leaves the
-- schedule. Otherwise it is re-scored to now + lease_ms (no other
-- dispatcher sends its events until this one reports or the lease runs
-- out: one delivery in flight per job, in sequence order), its delivery
-- token is bumped (hook_token, which the report must present), and the
-- first event after hook_seq is returned. Events trimmed from the stream
-- before they were delivered are counted as undeliverable.
-- Returns {now_ms, {id, token, url, seq, type, ts_ms, data, spec, attempts}, ...}
-- (all strings but now_ms).
local ms = now_ms()
local lease = tonumber(ARGV[3])

local function lost(jk, from, to)
  local list = cjson.decode(redis.call('HGET', jk, 'hook_dead') or '[]')
  for s = math.max(from, to - 99), to do list[#list + 1] = s end
  while #list > 100 do table.remove(list, 1) end
  redis.call('HSET', jk, 'hook_dead', cjson.encode(list), 'hook_seq', to, 'hook_attempts', 0,
             'hook_last_error', 'events trimmed from the stream before delivery',
             'hook_last_error_ms', ms)
  redis.call('HINCRBY', jk, 'hook_failed', to - from + 1)
  stat('hook_undeliverable', to - from + 1)
end

local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ms, 'LIMIT', 0, tonumber(ARGV[2]))
local out = {ms}
for _, id in ipairs(ids) do
  local jk = P .. 'job:' .. id
  local h = redis.call('HMGET', jk, 'hook_url', 'hook_seq', 'seq', 'spec', 'hook_attempts')
  local done = tonumber(h[2] or '0')
  local last = tonumber(h[3] or '0')
  if not h[1] or done >= last then
    redis.call('ZREM', KEYS[1], id)
  else
    local ev = redis.call('XRANGE', P .. 'events:' .. id, '(0-' .. done, '+', 'COUNT', 1)
    if #ev == 0 then
      lost(jk, done + 1, last)
      redis.call('ZREM', KEYS[1], id)
    else
      local seq = tonumber(string.match(ev[1][1], '-(%d+)$'))
      if seq > done + 1 then
        lost(jk, done + 1, seq - 1)
        h[5] = '0'
      end
      local f = {}
      local kv = ev[1][2]
      for i = 1, #kv, 2 do f[kv[i]] = kv[i + 1] end
      local token = redis.call('HINCRBY', jk, 'hook_token', 1)
      redis.call('ZADD', KEYS[1], ms + lease, id)
      out[#out + 1] = {id, tostring(token), h[1], tostring(seq), f.type or '', f.ts or '0',
                       f.data or '{}', h[4] or '{}', h[5] or '0'}
    end
  end
end
return out
