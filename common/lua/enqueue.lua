-- enqueue: create a job and queue it, atomically.
-- KEYS[1] = {ss}:job:<id>
-- ARGV: prefix, id, spec_json, priority (high|normal|low), max_attempts,
--       hook_url ('' = no webhook), event_data_json
-- Returns {1, fields} for a new job, {0, fields} when the id exists, where
-- fields is the job hash as HGETALL gives it (so the API answers in one
-- round trip).
local id, jk = ARGV[2], KEYS[1]
local st = redis.call('HGET', jk, 'state')
if st then return {0, redis.call('HGETALL', jk)} end
local ms = now_ms()
redis.call('HSET', jk, 'id', id, 'spec', ARGV[3], 'priority', ARGV[4],
           'max_attempts', ARGV[5], 'attempts', 0, 'created_ms', ms, 'queued_ms', ms,
           'seq', 0, 'hook_seq', 0, 'progress', 0, 'stage', 'queued')
if ARGV[6] ~= '' then redis.call('HSET', jk, 'hook_url', ARGV[6]) end
redis.call('ZADD', P .. 'jobs', ms, id)
set_state(id, nil, 'queued', ms)
redis.call('LPUSH', P .. 'q:' .. ARGV[4], id)
emit(id, 'job.queued', ARGV[7], ms)
stat('enqueued')
notify_work(id, ms)
return {1, redis.call('HGETALL', jk)}
