-- worker_beat: register or refresh a worker in the registry.
-- KEYS[1] = {ss}:worker:<wid>; ARGV: prefix, wid, ttl_seconds, info_json
-- The info key expires after ttl; {ss}:workers (id -> last beat) is pruned
-- of workers silent for longer than ttl.
local ms = now_ms()
local ttl = tonumber(ARGV[3])
redis.call('SET', KEYS[1], ARGV[4], 'EX', ttl)
redis.call('ZADD', P .. 'workers', ms, ARGV[2])
redis.call('ZREMRANGEBYSCORE', P .. 'workers', '-inf', ms - ttl * 1000)
return ms
