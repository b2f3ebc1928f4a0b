-- stats: queue depths and job counts in one round trip.
-- KEYS[1] = {ss}:stats; ARGV: prefix
-- Returns {{name, value, ...}} as a flat list of name/value pairs:
-- depth:<prio>, state:<state>, delayed, processing, dead, workers, and the
-- {ss}:stats counters as counter:<name>.
local out = {}
for _, p in ipairs({'high', 'normal', 'low'}) do
  out[#out + 1] = 'depth:' .. p
  out[#out + 1] = redis.call('LLEN', P .. 'q:' .. p)
end
for _, s in ipairs({'queued', 'running', 'cancelling', 'retrying', 'completed', 'failed',
                    'cancelled', 'dead'}) do
  out[#out + 1] = 'state:' .. s
  out[#out + 1] = redis.call('ZCARD', P .. 'st:' .. s)
end
out[#out + 1] = 'delayed'
out[#out + 1] = redis.call('ZCARD', P .. 'delayed')
out[#out + 1] = 'processing'
out[#out + 1] = redis.call('ZCARD', P .. 'processing')
out[#out + 1] = 'dead'
out[#out + 1] = redis.call('LLEN', P .. 'dead')
out[#out + 1] = 'workers'
out[#out + 1] = redis.call('ZCARD', P .. 'workers')
out[#out + 1] = 'hooks_due'
out[#out + 1] = redis.call('ZCARD', P .. 'hooks:due')
local c = redis.call('HGETALL', KEYS[1])
for i = 1, #c, 2 do
  out[#out + 1] = 'counter:' .. c[i]
  out[#out + 1] = tonumber(c[i + 1])
end
return out
