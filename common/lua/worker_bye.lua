-- worker_bye: a worker leaving cleanly removes itself from the registry.
-- KEYS[1] = {ss}:worker:<wid>; ARGV: prefix, wid
redis.call('DEL', KEYS[1])
redis.call('ZREM', P .. 'workers', ARGV[2])
redis.call('ZREM', P .. 'idle', ARGV[2])
return 1
