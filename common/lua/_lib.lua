-- _lib.lua: prepended to every script (see common/CMakeLists.txt).
-- Every script gets ARGV[1] = the key prefix ("{ss}:"); all keys share its
-- hash tag, so one script touches one Redis Cluster slot. KEYS[1] is the
-- main key of the call (for routing); other keys are derived from P.
local P = ARGV[1]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Move a job between the per-state sets ({ss}:st:<state>, score = time of
-- the transition) and record the state in its hash.
local function set_state(id, from, to, ms)
  if from then redis.call('ZREM', P .. 'st:' .. from, id) end
  redis.call('ZADD', P .. 'st:' .. to, ms, id)
  redis.call('HSET', P .. 'job:' .. id, 'state', to, 'updated_ms', ms)
end

-- Counters of {ss}:stats. A script that handles many jobs in one call
-- (finish_many) sets STATS = {} first and calls flush_stats() last: each
-- counter is then one HINCRBY per call instead of one per job.
local STATS = nil

local function stat(name, n)
  if STATS then
    STATS[name] = (STATS[name] or 0) + (tonumber(n) or 1)
    return
  end
  if type(n) == 'number' then n = string.format('%d', n) end
  redis.call('HINCRBY', P .. 'stats', name, n or '1')
end

-- A whole number as the string Redis would make of it (redis.call formats
-- every number argument with printf: a claim and a completion pass the
-- same time and deadline several times each), once per script call.
local NUMSTR = {}
local function nstr(n)
  local s = NUMSTR[n]
  if not s then
    s = string.format('%d', n)
    NUMSTR[n] = s
  end
  return s
end

-- claim_next's per-call memos: the worker found not drained, its idle mark
-- removed (a script's claims all run for one worker, atomically).
local NOT_DRAINED, NOT_IDLE
-- claim.lua's `only` job id: claim_next takes an item of that split job
-- when it is what the queue would give anyway, else nothing (no idle mark)
local ONLY_JOB
-- and with `only` = id/item: that ready item of the job, nothing else
local ONLY_ITEM
-- false while claim_next claims beyond the worker's free slots (prefetch):
-- finding nothing then does not mark it idle (all its slots are busy)
local IDLE_OK = true

-- A batch's per-call state (claim with want, finish_many: STATS set). The
-- priority lists as claim_next last read them: QLEN[prio] = its length
-- (0: empty), QIDS[prio] = its oldest ids, oldest last (one LRANGE of
-- CLAIM_AHEAD ids, not one LINDEX per claim), QPOP[prio] = ids taken off
-- its tail and not popped yet (one RPOP with a count per call). FENCE =
-- {next, last}: fencing tokens taken with one INCRBY. IDX = the state
-- index moves ({ss}:st:<state>) of the batch's jobs: one ZREM and one ZADD
-- per state and call (flush_batch). None of it outlives the call.
local QLEN, QIDS, QPOP = {}, {}, {}
local CLAIM_AHEAD = 1
local FENCE = nil
local IDX = nil

-- Apply the pops claim_next deferred and forget what it read of the lists:
-- before anything else reads or writes them (a push, a split job's ready
-- items) and at the end of the call.
local function q_sync()
  for prio, n in pairs(QPOP) do
    if n > 0 then redis.call('RPOP', P .. 'q:' .. prio, string.format('%d', n)) end
  end
  QLEN, QIDS, QPOP = {}, {}, {}
end

-- A job moves from one state index to another (set_state's index part):
-- at once, or with the batch's other moves at flush_batch.
local function index_move(id, from, to, mss)
  if not IDX then
    if from then redis.call('ZREM', P .. 'st:' .. from, id) end
    redis.call('ZADD', P .. 'st:' .. to, mss, id)
    return
  end
  if from then
    local r = IDX.rem[from]
    if not r then r = {}; IDX.rem[from] = r end
    r[#r + 1] = id
  end
  local a = IDX.add[to]
  if not a then a = {}; IDX.add[to] = a end
  a[#a + 1] = mss
  a[#a + 1] = id
end

local function flush_stats()
  if not STATS then return end
  for name, n in pairs(STATS) do
    redis.call('HINCRBY', P .. 'stats', name, string.format('%d', n))
  end
  STATS = nil
end

-- A batch begins (claim with want, finish_many): counters, state index
-- moves, pops and fencing tokens are gathered (ahead = the claims it may
-- make) and written by flush_batch, which every return path calls.
local function begin_batch(ahead)
  STATS = {}
  IDX = {rem = {}, add = {}}
  CLAIM_AHEAD = math.max(1, math.min(ahead or 1, 64))
end

local function flush_batch()
  q_sync()
  if IDX then
    for st, ids in pairs(IDX.rem) do redis.call('ZREM', P .. 'st:' .. st, unpack(ids)) end
    for st, a in pairs(IDX.add) do redis.call('ZADD', P .. 'st:' .. st, unpack(a)) end
    IDX = nil
  end
  FENCE = nil
  CLAIM_AHEAD = 1
  flush_stats()
end

-- Append an event to the job's stream with the next sequence number as its
-- stream id (0-<seq>), and schedule webhook delivery when the job has one.
-- emit_at: the same with the sequence number the caller took itself (the
-- job's seq + 1, written back with its other fields in one HSET: the hot
-- claim and completion paths), hook = the job has a hook_url.
local function emit_at(id, seq, etype, data, ms, hook)
  -- strings, not numbers: Lua's and redis.call's number formatting is a
  -- printf of a double each time
  redis.call('XADD', P .. 'events:' .. id, 'MAXLEN', '~', '1000', string.format('0-%d', seq),
             'type', etype, 'ts', ms, 'data', data)
  if hook then
    redis.call('ZADD', P .. 'hooks:due', 'NX', ms, id)
  end
  return seq
end

local function emit(id, etype, data, ms)
  local jk = P .. 'job:' .. id
  local seq = redis.call('HINCRBY', jk, 'seq', 1)
  return emit_at(id, seq, etype, data, ms, redis.call('HEXISTS', jk, 'hook_url') == 1)
end

-- New work is queued: wake ONE idle worker, not the fleet. Workers whose
-- last claim found nothing are in {ss}:idle (claim_next keeps it); the one
-- idle most recently that is still registered (beat within 10 s; marks of
-- workers gone are dropped on the way) gets the job id on its own channel
-- {ss}:wake:<worker id>, and a worker that cannot take it after all passes
-- it on to {ss}:notify. With no idle worker known, everyone is told on
-- {ss}:notify (busy workers claim when a slot frees; the finish script
-- claims the next job anyway). One notification then costs one claim, not
-- one per subscribed worker.
local function notify_work(id, ms)
  for _ = 1, 16 do
    local w = redis.call('ZPOPMAX', P .. 'idle')
    if not w[1] then break end
    local beat = tonumber(redis.call('ZSCORE', P .. 'workers', w[1]) or '0')
    -- a worker drained through the API ({ss}:drain) would not take it
    if beat >= ms - 10000 and redis.call('HEXISTS', P .. 'drain', w[1]) == 0 then
      redis.call('PUBLISH', P .. 'wake:' .. w[1], id)
      return
    end
  end
  redis.call('PUBLISH', P .. 'notify', id)
end

-- n more items of job id are claimable at once (a split job just
-- planned): wake up to n idle workers, one each, not only the first
-- (notify_work's broadcast when none is idle is left to the first call).
local function wake_idle(id, n, ms)
  for _ = 1, n do
    if not redis.call('ZRANGE', P .. 'idle', 0, 0)[1] then return end
    notify_work(id, ms)
  end
end

-- Split jobs' item retries that are due (set below, with the split helpers).
local promote_items

-- Put due retries back on their priority queue (and due item retries back
-- among their job's ready items).
local function promote_due(ms)
  q_sync()
  promote_items(ms)
  local due = redis.call('ZRANGEBYSCORE', P .. 'delayed', '-inf', ms, 'LIMIT', 0, 100)
  for _, id in ipairs(due) do
    redis.call('ZREM', P .. 'delayed', id)
    local jk = P .. 'job:' .. id
    if redis.call('HGET', jk, 'state') == 'retrying' then
      local prio = redis.call('HGET', jk, 'priority') or 'normal'
      -- (a fenced wait is over: a later report of an old claim must not
      -- move a later backoff, fence_release)
      redis.call('HSET', jk, 'queued_ms', ms)
      redis.call('HDEL', jk, 'fence_claims')
      redis.call('LPUSH', P .. 'q:' .. prio, id)
      set_state(id, 'retrying', 'queued', ms)
      notify_work(id, ms)
    end
  end
  return #due
end

-- The job ends failed (permanent) or dead (out of attempts, on the
-- dead-letter list), with its job.failed event (item: the split job's work
-- item that failed, or nil).
local function end_failed(id, from, permanent, ms, e, attempts, item)
  local final = permanent and 'failed' or 'dead'
  redis.call('HSET', P .. 'job:' .. id, 'finished_ms', ms)
  set_state(id, from, final, ms)
  if final == 'dead' then
    redis.call('LPUSH', P .. 'dead', id)
    stat('dead')
  end
  stat('failed')
  emit(id, 'job.failed', cjson.encode({error = e, attempt = attempts, will_retry = false,
                                       dead = (final == 'dead'), item = item}), ms)
  return final
end

-- A failed attempt: a permanent failure or the last attempt ends the job
-- (failed, or dead with a place on the dead-letter list); otherwise it is
-- scheduled again after delay_ms. err is a JSON object {code, message}.
local function fail_or_retry(id, from, permanent, delay_ms, ms, err)
  local jk = P .. 'job:' .. id
  local attempts = tonumber(redis.call('HGET', jk, 'attempts') or '0')
  local max = tonumber(redis.call('HGET', jk, 'max_attempts') or '3')
  local e = cjson.decode(err)
  redis.call('HSET', jk, 'error', err)
  if permanent or attempts >= max then
    return end_failed(id, from, permanent, ms, e, attempts, nil)
  end
  local due = ms + delay_ms
  redis.call('HSET', jk, 'retry_at_ms', due)
  redis.call('ZADD', P .. 'delayed', due, id)
  set_state(id, from, 'retrying', ms)
  stat('retried')
  emit(id, 'job.failed', cjson.encode({error = e, attempt = attempts, will_retry = true}), ms)
  emit(id, 'job.retrying', cjson.encode({attempt = attempts + 1, retry_at_ms = due}), ms)
  return 'retrying'
end


-- Histograms for the coordinator's /metrics (coordinator/coord_metrics.c
-- keeps the same bounds and checks them against this table in a unit test):
-- {ss}:stats fields hist:<name>:<le> count observations per bucket (not
-- cumulative; le = the bucket's upper bound, or +Inf), and
-- hist:<name>:sum_milli adds up the observed values times 1000.
local HIST_BOUNDS = {
  job_duration_seconds = {1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200},
  job_queue_wait_seconds = {0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 14400},
  job_encode_speed_ratio = {0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64},
  job_encode_frames_per_second = {5, 10, 25, 50, 100, 200, 400, 800, 1600, 3200},
}

-- The counters' field names, made once per call and histogram: HKEYS[name][i] for
-- bucket i (#bounds + 1: +Inf), [0] the sum (a concatenation with a number is a
-- printf of a double: two per job on the claim and completion paths before).
local HKEYS = {}

local function observe(name, v)
  if type(v) ~= 'number' or v ~= v or v < 0 or v == math.huge then return end
  local bounds = HIST_BOUNDS[name]
  local i = #bounds + 1
  for k, b in ipairs(bounds) do
    if v <= b then i = k; break end
  end
  local keys = HKEYS[name]
  if not keys then
    keys = {[0] = 'hist:' .. name .. ':sum_milli'}
    HKEYS[name] = keys
  end
  local key = keys[i]
  if not key then
    key = 'hist:' .. name .. ':' .. (bounds[i] and tostring(bounds[i]) or '+Inf')
    keys[i] = key
  end
  stat(key, 1)
  stat(keys[0], math.floor(v * 1000 + 0.5))
end

-- Count what a completed job's result says it did (uploads, encode speed).
-- result_json is the worker's job.json without the spec; anything missing
-- or malformed is skipped, never an error.
local function count_result(jk, ms, result_json, started_ms, decoded)
  local started = tonumber(started_ms or redis.call('HGET', jk, 'started_ms') or '')
  if started and started > 0 and ms >= started then
    observe('job_duration_seconds', (ms - started) / 1000)
  end
  local ok, res = true, decoded   -- decoded: the caller's cjson.decode (false: it failed)
  if decoded == nil then ok, res = pcall(cjson.decode, result_json) end
  if not ok or type(res) ~= 'table' then return end
  local up = res.upload
  if type(up) == 'table' then
    for _, k in ipairs({'bytes', 'objects', 'retries'}) do
      local n = tonumber(up[k])
      if n and n > 0 then stat('upload_' .. k, string.format('%d', math.floor(n))) end
    end
  end
  local out = res.output
  if type(out) ~= 'table' or type(out.timings) ~= 'table' then return end
  local enc = tonumber(out.timings.encode)
  if not enc or enc <= 0 then return end
  local dur = tonumber(out.duration)
  if dur and dur > 0 then observe('job_encode_speed_ratio', dur / enc) end
  local frames = 0
  if type(out.renditions) == 'table' then
    for _, r in ipairs(out.renditions) do
      local f = type(r) == 'table' and tonumber(r.frames) or nil
      if f and f > frames then frames = f end
    end
  end
  if frames > 0 then observe('job_encode_frames_per_second', frames / enc) end
end

-- ---- split jobs: work items (docs/SPLIT.md, proto/redis.md) ----

-- The title can be played (docs/PLAYABLE.md): the first time only, the
-- job records when and where (playable_ms, playable_url) and appends
-- job.playable. A split job calls it when its early playlists first list
-- segments (publish); every job when it completes, if not before.
-- job.playable's data (created_ms: the job's, a string or nil).
local function playable_data(url, created_ms, segments, ms)
  local created = tonumber(created_ms or '0') or 0
  local data = {url = url, seconds = created > 0 and (ms - created) / 1000 or 0}
  if segments then data.segments = segments end
  return cjson.encode(data)
end

local function mark_playable(id, url, segments, ms)
  local jk = P .. 'job:' .. id
  if redis.call('HEXISTS', jk, 'playable_ms') == 1 or not url or url == '' then return end
  local created = redis.call('HGET', jk, 'created_ms')
  redis.call('HSET', jk, 'playable_ms', ms, 'playable_url', url)
  emit(id, 'job.playable', playable_data(url, created, segments, ms), ms)
end

-- A completed job's HLS URL (its result's urls.hls), or nil.
local function hls_of(r)
  if type(r) == 'table' and type(r.urls) == 'table' and type(r.urls.hls) == 'string' and
     r.urls.hls ~= '' then
    return r.urls.hls
  end
  return nil
end

local function result_hls(result_json)
  local ok, r = pcall(cjson.decode, result_json)
  return ok and hls_of(r) or nil
end

-- A job completes: playable now if it was not before (its result's HLS URL).
local function playable_at_end(id, result_json, ms)
  local url = result_hls(result_json)
  if url then mark_playable(id, url, nil, ms) end
end

local function item_key(id, name) return P .. 'item:' .. id .. ':' .. name end

local function item_kind(name)
  if string.sub(name, 1, 1) == 'c' then return 'chunk' end
  return name
end

-- A split job with a newly ready item goes (back) to the head of its
-- queue, so its items are claimed before later jobs'.
local function requeue_split(id, prio)
  q_sync()
  local q = P .. 'q:' .. (prio or 'normal')
  if not redis.call('LPOS', q, id) then redis.call('RPUSH', q, id) end
  notify_work(id, now_ms())
end

local function item_ready(id, name, prio, head)
  redis.call('HSET', item_key(id, name), 'state', 'ready')
  if head then
    redis.call('LPUSH', P .. 'ready:' .. id, name)
  else
    redis.call('RPUSH', P .. 'ready:' .. id, name)
  end
  requeue_split(id, prio)
end

-- Item retries due by now ({ss}:idelayed, member <id>/<name>): ready again
-- at the front of their job's items, if the job still runs.
promote_items = function(ms)
  local due = redis.call('ZRANGEBYSCORE', P .. 'idelayed', '-inf', ms, 'LIMIT', 0, 100)
  for _, m in ipairs(due) do
    redis.call('ZREM', P .. 'idelayed', m)
    local slash = string.find(m, '/', 1, true)
    local id, name = string.sub(m, 1, slash - 1), string.sub(m, slash + 1)
    local jh = redis.call('HMGET', P .. 'job:' .. id, 'state', 'priority')
    if jh[1] == 'running' and redis.call('HGET', item_key(id, name), 'state') == 'retrying' then
      item_ready(id, name, jh[2], true)
    end
  end
end

-- The delay before an item's next attempt: exponential backoff with jitter
-- as a job's (reap.lua): [d/2, d], d = base * 2^(attempts-1), capped.
local function item_backoff_ms(attempts, base, cap, jitter)
  local d = base * math.pow(2, math.max(attempts - 1, 0))
  if d > cap then d = cap end
  return math.floor(d / 2 + jitter * d / 2)
end

-- What an item's worker needs: the plan, and for audio and finalize the
-- records of the items before it (and, for finalize, who ran what).
local function item_payload(id, name)
  local jk = P .. 'job:' .. id
  local plan = redis.call('HGET', jk, 'plan') or 'null'
  if item_kind(name) == 'chunk' then return '{"plan":' .. plan .. '}' end
  local names = cjson.decode(redis.call('HGET', jk, 'items') or '[]')
  local parts, who = {}, {}
  for _, n in ipairs(names) do
    local r = redis.call('HMGET', item_key(id, n), 'result', 'worker', 'attempts', 'cpu_seconds',
                         'started_ms', 'finished_ms', 'state')
    if r[1] and r[7] == 'done' then parts[#parts + 1] = cjson.encode(n) .. ':' .. r[1] end
    who[#who + 1] = {name = n, worker = r[2] or '', attempts = tonumber(r[3] or '0'),
                     cpu_seconds = tonumber(r[4] or '0'), started_ms = tonumber(r[5] or '0'),
                     finished_ms = tonumber(r[6] or '0')}
  end
  return '{"plan":' .. plan .. ',"results":{' .. table.concat(parts, ',') .. '},"items":' ..
         cjson.encode(who) .. '}'
end

local function claim_item(id, name, worker, lease, ms, left)
  local ik = item_key(id, name)
  local jk = P .. 'job:' .. id
  local token = redis.call('INCR', P .. 'fence')
  local attempt = redis.call('HINCRBY', ik, 'attempts', 1)
  local deadline = ms + lease
  redis.call('HSET', ik, 'state', 'running', 'worker', worker, 'token', token, 'lease_ms', deadline,
             'started_ms', ms, 'progress', 0)
  redis.call('HINCRBY', jk, 'items_running', 1)
  redis.call('ZADD', P .. 'processing', deadline, id .. '/' .. name)
  redis.call('ZREM', P .. 'idle', worker)
  stat('items_started:' .. item_kind(name))
  return {id, tostring(token), attempt, redis.call('HGET', jk, 'spec'), left, name,
          item_payload(id, name)}
end

-- The job of a running item ended (failed, dead, cancelled): nothing of it
-- is ready any more.
local function drop_ready(id, prio)
  for _, n in ipairs(redis.call('LRANGE', P .. 'ready:' .. id, 0, -1)) do
    redis.call('HSET', item_key(id, n), 'state', 'cancelled')
  end
  -- and those waiting for a retry
  for _, n in ipairs(cjson.decode(redis.call('HGET', P .. 'job:' .. id, 'items') or '[]')) do
    if redis.call('ZREM', P .. 'idelayed', id .. '/' .. n) == 1 then
      redis.call('HSET', item_key(id, n), 'state', 'cancelled')
    end
  end
  redis.call('DEL', P .. 'ready:' .. id)
  redis.call('LREM', P .. 'q:' .. (prio or 'normal'), 0, id)
end

-- A cancelling split job, once its last running item has ended: a last
-- item, `delete`, removes the partial output that done items stored (any
-- worker claims it, the job's ready items are gone); when it has ended,
-- the job is cancelled.
local function split_cancel_done(id, ms)
  local jk = P .. 'job:' .. id
  if redis.call('HGET', jk, 'state') ~= 'cancelling' then return end
  if tonumber(redis.call('HGET', jk, 'items_running') or '0') > 0 then return end
  local dk = item_key(id, 'delete')
  local ds = redis.call('HGET', dk, 'state')
  if not ds then
    redis.call('HSET', dk, 'state', 'ready', 'attempts', 0, 'progress', 0)
    local names = cjson.decode(redis.call('HGET', jk, 'items') or '[]')
    names[#names + 1] = 'delete'
    redis.call('HSET', jk, 'items', cjson.encode(names))
    redis.call('DEL', P .. 'ready:' .. id)
    redis.call('RPUSH', P .. 'ready:' .. id, 'delete')
    requeue_split(id, redis.call('HGET', jk, 'priority'))
    return
  end
  if ds == 'ready' then return end
  redis.call('HSET', jk, 'finished_ms', ms, 'stage', 'cancelled')
  set_state(id, 'cancelling', 'cancelled', ms)
  stat('cancelled')
  emit(id, 'job.cancelled', cjson.encode({reason = 'cancelled while running'}), ms)
end

-- A chunk or the audio is done: when all are, finalize is ready, unless
-- the audio was cut to another video length (it ran in parallel with the
-- chunks, cut to the announced length) than the chunks measured
-- (vframes): then the audio runs again with the chunks' records (the run
-- is not counted as a failed attempt).
local function audio_or_finalize(id, prio, nchunks, ms)
  local jk, ak = P .. 'job:' .. id, item_key(id, 'audio')
  if tonumber(redis.call('HGET', jk, 'chunks_done') or '0') < nchunks then return end
  local a = redis.call('HMGET', ak, 'state', 'result')
  if a[1] ~= 'done' then return end
  local ok, rec = pcall(cjson.decode, a[2] or '')
  local got = ok and type(rec) == 'table' and tonumber(rec.frames) or -1
  local want = tonumber(redis.call('HGET', jk, 'vframes') or '0')
  if got == want then
    item_ready(id, 'finalize', prio, true)
    return
  end
  redis.call('HDEL', ak, 'result', 'record')   -- publishers wait for the re-run's
  local attempts = redis.call('HINCRBY', ak, 'attempts', -1)
  item_ready(id, 'audio', prio, true)
  emit(id, 'job.retrying', cjson.encode({attempt = attempts + 1, item = 'audio',
    reason = 'the audio was cut to ' .. got .. ' video frames, the chunks measured ' .. want}), ms)
end

-- A claim dropped by drop_items or resume_items may still be storing (a
-- PUT in flight, a retry after a 5xx) until its worker hears at its next
-- heartbeat that the claim is gone and aborts its uploads: at the latest
-- when its lease would have run out. Work that could store the same names
-- (a new plan's chunks: another init.mp4) waits for that, plus a margin for
-- the abort (docs/SPLIT.md "Fencing the old claims").
local ITEM_FENCE_MARGIN_MS = 5000

-- The claims of the job's running items that may still store: {token =
-- lease deadline ms} (deadline + margin not yet past), and the latest
-- deadline (0 if none).
local function items_lease_end(id, ms)
  local claims, last = {}, 0
  for _, n in ipairs(cjson.decode(redis.call('HGET', P .. 'job:' .. id, 'items') or '[]')) do
    local r = redis.call('HMGET', item_key(id, n), 'state', 'lease_ms', 'token')
    local d = tonumber(r[2] or '0') or 0
    if r[1] == 'running' and r[3] and r[3] ~= '' and d + ITEM_FENCE_MARGIN_MS > ms then
      claims[r[3]] = d
      if d > last then last = d end
    end
  end
  return claims, last
end

-- When the job's next items may run: after the latest running claim's
-- lease plus the margin (ms), or 0 when no claim may still store. The
-- claims waited for are kept in the job's `fence_claims` ({token:
-- deadline}): a worker that reports the end of one (item_finish, refused
-- as stale: it stores nothing more after it) shortens the wait
-- (fence_release).
local function fence_until(id, ms)
  local claims, last = items_lease_end(id, ms)
  if last == 0 then
    redis.call('HDEL', P .. 'job:' .. id, 'fence_claims')
    return 0
  end
  redis.call('HSET', P .. 'job:' .. id, 'fence_claims', cjson.encode(claims))
  return last + ITEM_FENCE_MARGIN_MS
end

-- A stale item_finish (token): if the job waits for that claim (a fenced
-- `retrying` job), it no longer does; when no claim is left, the job is due
-- now, else after the latest one left (+ margin).
local function fence_release(id, token, ms)
  local jk = P .. 'job:' .. id
  local h = redis.call('HMGET', jk, 'fence_claims', 'state')
  if not h[1] then return end
  local claims = cjson.decode(h[1])
  if not claims[token] then return end
  claims[token] = nil
  local last = 0
  for _, d in pairs(claims) do if d > last then last = d end end
  if last + ITEM_FENCE_MARGIN_MS <= ms then
    redis.call('HDEL', jk, 'fence_claims')
    last = ms - ITEM_FENCE_MARGIN_MS
  else
    redis.call('HSET', jk, 'fence_claims', cjson.encode(claims))
  end
  if h[2] == 'retrying' and redis.call('ZSCORE', P .. 'delayed', id) then
    local due = last + ITEM_FENCE_MARGIN_MS
    redis.call('ZADD', P .. 'delayed', due, id)
    redis.call('HSET', jk, 'retry_at_ms', due)
  end
end

-- A split job's items go (it is planned again), with their retries, their
-- claims (a worker still running one is refused at its next call), the
-- job's item fields and its early-publish state. Returns fence_until: when
-- the new plan may start (0: now).
local function drop_items(id, ms)
  local jk = P .. 'job:' .. id
  local fence = fence_until(id, ms or now_ms())
  for _, n in ipairs(cjson.decode(redis.call('HGET', jk, 'items') or '[]')) do
    redis.call('DEL', item_key(id, n))
    redis.call('ZREM', P .. 'idelayed', id .. '/' .. n)
    redis.call('ZREM', P .. 'processing', id .. '/' .. n)
  end
  redis.call('DEL', P .. 'ready:' .. id)
  redis.call('HDEL', jk, 'split', 'plan', 'items', 'nchunks', 'chunks_done', 'vframes',
             'items_running')
  -- the early publish starts over with the new plan: a publisher of the old
  -- one loses its lease (a new generation, never a restarted count that
  -- could hand its number to a new holder), and the new plan's first
  -- playlists replace the old ones and make the job playable again
  redis.call('HINCRBY', jk, 'pub_gen', 1)
  redis.call('HDEL', jk, 'pub_until_ms', 'pub_dirty', 'pub_segments', 'pub_lease',
             'pub_texts', 'pub_force', 'playable_ms', 'playable_url')
  return fence
end

-- An item found that the source is not the one the job was planned from
-- (error code source_changed: its size, ETag, Last-Modified or mtime
-- differ from the plan's `source`): chunks of two versions must never be
-- stitched, so the job is planned again from scratch (running -> queued at
-- the head of its queue, its items go) as its next attempt; out of
-- attempts, it fails. While a claim of the old plan may still store (its
-- lease has not run out: fence_until), the job waits as `retrying` in
-- {ss}:delayed instead, and promote_due queues it when that has passed.
local function replan(id, name, ms, e, err, prio)
  local jk = P .. 'job:' .. id
  local h = redis.call('HMGET', jk, 'attempts', 'max_attempts')
  local attempts, max = tonumber(h[1] or '1') or 1, tonumber(h[2] or '3') or 3
  redis.call('HSET', jk, 'error', err)
  if attempts >= max then
    redis.call('HSET', item_key(id, name), 'state', 'failed')
    drop_ready(id, prio)
    return end_failed(id, 'running', true, ms, e, attempts, name)
  end
  local fence = drop_items(id, ms)
  local q = P .. 'q:' .. (prio or 'normal')
  redis.call('LREM', q, 0, id)
  redis.call('HSET', jk, 'stage', 'queued', 'progress', 0, 'queued_ms', ms)
  redis.call('HDEL', jk, 'worker', 'started_ms')
  stat('retried')
  emit(id, 'job.failed', cjson.encode({error = e, attempt = attempts, will_retry = true, item = name}), ms)
  local reason = 'the source changed since the job was planned: it is planned again'
  if fence > 0 then
    redis.call('HSET', jk, 'retry_at_ms', fence)
    redis.call('ZADD', P .. 'delayed', fence, id)
    set_state(id, 'running', 'retrying', ms)
    emit(id, 'job.retrying', cjson.encode({attempt = attempts + 1, item = name, retry_at_ms = fence,
      reason = reason .. ' once the old plan\'s claims have ended'}), ms)
    return 'retrying'
  end
  set_state(id, 'running', 'queued', ms)
  redis.call('RPUSH', q, id)
  emit(id, 'job.retrying', cjson.encode({attempt = attempts + 1, item = name, reason = reason}), ms)
  notify_work(id, ms)
  return 'queued'
end

-- A failed attempt of an item: again at the head of the job's ready list
-- after delay_ms (state retrying, in {ss}:idelayed; at once when 0), or,
-- permanent or out of attempts (the job's max_attempts per item), the
-- whole job fails (failed or dead) and its other items stop.
local function item_fail(id, name, permanent, ms, err, delay_ms)
  local ik, jk = item_key(id, name), P .. 'job:' .. id
  local attempts = tonumber(redis.call('HGET', ik, 'attempts') or '0')
  local jh = redis.call('HMGET', jk, 'max_attempts', 'priority', 'state')
  local max = tonumber(jh[1] or '3')
  local e = cjson.decode(err)
  redis.call('HSET', ik, 'error', err)
  stat('items_failed:' .. item_kind(name))
  if jh[3] ~= 'running' then
    redis.call('HSET', ik, 'state', 'cancelled')
    split_cancel_done(id, ms)
    return jh[3]
  end
  if type(e) == 'table' and e.code == 'source_changed' then return replan(id, name, ms, e, err, jh[2]) end
  if permanent or attempts >= max then
    redis.call('HSET', ik, 'state', 'failed')
    drop_ready(id, jh[2])
    redis.call('HSET', jk, 'error', err, 'attempts', attempts)
    return end_failed(id, 'running', permanent, ms, e, attempts, name)
  end
  local due = ms + math.max(math.floor(tonumber(delay_ms) or 0), 0)
  if due > ms then
    redis.call('HSET', ik, 'state', 'retrying', 'retry_at_ms', due)
    redis.call('ZADD', P .. 'idelayed', due, id .. '/' .. name)
  else
    item_ready(id, name, jh[2], true)
  end
  stat('items_retried:' .. item_kind(name))
  emit(id, 'job.failed', cjson.encode({error = e, attempt = attempts, will_retry = true, item = name}), ms)
  emit(id, 'job.retrying', cjson.encode({attempt = attempts + 1, item = name, retry_at_ms = due,
                                         reason = 'item ' .. name .. ' runs again'}), ms)
  return 'running'
end

-- The retry of a failed or dead split job continues from its plan: the
-- chunks and the audio that were done stay done (their records, and their
-- files in storage); every other item is reset (fresh attempts, no claim:
-- a worker still running one is refused at its next call) and the chunks
-- and audio among them are ready again in claim order (c0, audio, c1, ...).
-- The items named by the job's last error (err: its JSON), when finalize
-- failed because of their records (error.items: a chunk's init segment
-- differs from the stored one, a record does not match the plan): those
-- are reset too, done or not, so the retry can get past it.
-- Returns the names kept, how many items are ready, the number of chunks
-- and fence_until (when a claim reset here can no longer store; 0: now).
local function resume_items(id, ms, err)
  local jk = P .. 'job:' .. id
  local fence = fence_until(id, ms)
  local redo = {}
  local oke, e = pcall(cjson.decode, err or '')
  if oke and type(e) == 'table' and type(e.items) == 'table' then
    for _, n in ipairs(e.items) do
      if type(n) == 'string' then redo[n] = true end
    end
  end
  local nchunks = tonumber(redis.call('HGET', jk, 'nchunks') or '0')
  local kept, done, vframes = {}, 0, 0
  local order = {'c0', 'audio'}
  for k = 1, nchunks - 1 do order[#order + 1] = 'c' .. k end
  redis.call('DEL', P .. 'ready:' .. id)
  local ready = 0
  for _, n in ipairs(cjson.decode(redis.call('HGET', jk, 'items') or '[]')) do
    if n ~= 'plan' then
      redis.call('ZREM', P .. 'idelayed', id .. '/' .. n)
      redis.call('ZREM', P .. 'processing', id .. '/' .. n)
      local r = redis.call('HMGET', item_key(id, n), 'state', 'result')
      if r[1] == 'done' and r[2] and n ~= 'finalize' and not redo[n] then
        kept[#kept + 1] = n
        if item_kind(n) == 'chunk' then
          local okr, rec = pcall(cjson.decode, r[2])
          done = done + 1
          vframes = vframes + (okr and type(rec) == 'table' and tonumber(rec.frames) or 0)
        end
      else
        local ik = item_key(id, n)
        redis.call('HDEL', ik, 'token', 'lease_ms', 'worker', 'started_ms', 'finished_ms', 'error',
                   'result', 'record', 'retry_at_ms', 'cpu_seconds', 'stage')
        redis.call('HSET', ik, 'state', 'waiting', 'attempts', 0, 'progress', 0)
      end
    end
  end
  for _, n in ipairs(order) do
    if redis.call('HGET', item_key(id, n), 'state') == 'waiting' then
      redis.call('HSET', item_key(id, n), 'state', 'ready')
      redis.call('RPUSH', P .. 'ready:' .. id, n)
      ready = ready + 1
    end
  end
  redis.call('HSET', jk, 'chunks_done', done, 'vframes', vframes, 'items_running', 0)
  return kept, ready, nchunks, fence
end

-- A job in a final failure state (failed, dead, cancelled) queued again
-- with fresh attempts, and a worker woken for it (retry.lua, bulk.lua). st
-- is its state, prio its priority. A failed or dead split job continues
-- from its plan (resume_items; claim_next starts it with its first ready
-- item); a cancelled one, whose output was deleted, is planned again (its
-- items go).
local function redrive(id, st, prio, ms)
  local jk = P .. 'job:' .. id
  local err = redis.call('HGET', jk, 'error')
  redis.call('LREM', P .. 'dead', 0, id)
  redis.call('HSET', jk, 'attempts', 0, 'queued_ms', ms, 'progress', 0, 'stage', 'queued')
  redis.call('HDEL', jk, 'finished_ms', 'retry_at_ms', 'result', 'error', 'worker', 'started_ms')
  local kept, ready, nchunks, fence
  if st ~= 'cancelled' and redis.call('HGET', jk, 'split') == '1' and
     redis.call('HEXISTS', jk, 'plan') == 1 then
    kept, ready, nchunks, fence = resume_items(id, ms, err)
  else
    fence = drop_items(id, ms)
  end
  stat('redriven')
  local data = {redrive = true, previous_state = st}
  if kept and #kept > 0 then data.kept = kept end
  local q = P .. 'q:' .. (prio or 'normal')
  if fence > 0 then
    -- a claim of the previous run may still store: the job waits for it
    -- (only finalize left: it is the one ready item, claimable once queued)
    if kept and ready == 0 then audio_or_finalize(id, prio, nchunks, ms) end
    redis.call('LREM', q, 0, id)
    set_state(id, st, 'retrying', ms)
    emit(id, 'job.queued', cjson.encode(data), ms)
    redis.call('HSET', jk, 'retry_at_ms', fence)
    redis.call('ZADD', P .. 'delayed', fence, id)
    emit(id, 'job.retrying', cjson.encode({attempt = 1, retry_at_ms = fence,
      reason = 'waits until the previous run\'s claims have ended'}), ms)
    return
  end
  set_state(id, st, 'queued', ms)
  redis.call('LPUSH', q, id)
  emit(id, 'job.queued', cjson.encode(data), ms)
  -- only finalize was left: it is the one ready item
  if kept and ready == 0 then audio_or_finalize(id, prio, nchunks, ms) end
  notify_work(id, ms)
end

-- Forget a job in final state st: its hash, items, events and every index
-- (expire.lua, bulk.lua). Outputs in storage are not touched.
local function forget(id, st)
  for _, n in ipairs(cjson.decode(redis.call('HGET', P .. 'job:' .. id, 'items') or '[]')) do
    redis.call('DEL', item_key(id, n))
    redis.call('ZREM', P .. 'idelayed', id .. '/' .. n)
  end
  redis.call('DEL', P .. 'job:' .. id, P .. 'events:' .. id, P .. 'ready:' .. id)
  redis.call('ZREM', P .. 'st:' .. st, id)
  redis.call('ZREM', P .. 'jobs', id)
  redis.call('ZREM', P .. 'hooks:due', id)
  if st == 'dead' then redis.call('LREM', P .. 'dead', 0, id) end
end

-- A retried split job (queued, its plan kept: redrive) runs again: its
-- first item's claim starts it, as a claim starts a job (job.started).
local function split_resumed(id, h, worker, ms)
  local attempt = (tonumber(h[4] or '0') or 0) + 1
  redis.call('HSET', P .. 'job:' .. id, 'worker', worker, 'started_ms', ms, 'attempts', attempt,
             'stage', 'encoding')
  set_state(id, 'queued', 'running', ms)
  stat('started')
  emit(id, 'job.started', cjson.encode({worker = worker, attempt = attempt}), ms)
end

-- Take the next job for a worker (claim.lua, and finish.lua when the worker
-- asks for its next job in the same call). Picks the queue whose oldest job
-- has the highest effective priority: base level (high 2, normal 1, low 0)
-- + one level per aging ms waited; ties go to the higher base level. FIFO
-- within a queue. Returns {id, token, attempt, spec, still queued} or nil.
local LEVELS = {{'high', 2}, {'normal', 1}, {'low', 0}}
local WORKER_JSON = {}   -- {worker id, the id as JSON}: job.started's data is built, not encoded

local function claim_next(worker, lease, aging, ms)
  -- a worker drained through the API ({ss}:drain) claims nothing, and is
  -- not idle either: notify_work must not wake it for work it cannot take
  if NOT_DRAINED ~= worker then
    if redis.call('HEXISTS', P .. 'drain', worker) == 1 then
      redis.call('ZREM', P .. 'idle', worker)
      return nil
    end
    NOT_DRAINED = worker
  end
  -- outside a batch nothing is remembered from one call to the next
  if not IDX then QLEN, QIDS, QPOP = {}, {}, {} end
  for _ = 1, 16 do
    local cands = {}
    for _, lv in ipairs(LEVELS) do
      local prio = lv[1]
      if QLEN[prio] ~= 0 then
        local ids = QIDS[prio]
        if not ids or #ids == 0 then
          -- the next CLAIM_AHEAD oldest ids (after those taken, not popped yet)
          local skip = QPOP[prio] or 0
          ids = redis.call('LRANGE', P .. 'q:' .. prio, string.format('%d', -(skip + CLAIM_AHEAD)),
                           string.format('%d', -(skip + 1)))
          QIDS[prio] = ids
          if #ids == 0 then QLEN[prio] = 0 end
        end
        if #ids > 0 then cands[#cands + 1] = {prio, lv[2], ids[#ids]} end
      end
    end
    if #cands == 0 and ONLY_JOB then return nil end
    if #cands == 0 then
      -- nothing queued: this worker is idle (notify_work may wake it)
      if IDLE_OK then redis.call('ZADD', P .. 'idle', ms, worker) end
      NOT_IDLE = nil
      return nil
    end
    local best = cands[1]
    if #cands > 1 and aging > 0 then
      -- only when queues compete does waiting time matter
      local best_eff = -1
      for _, c in ipairs(cands) do
        local qms = tonumber(redis.call('HGET', P .. 'job:' .. c[3], 'queued_ms') or ms)
        local eff = c[2] + math.floor((ms - qms) / aging)
        if eff > best_eff then best, best_eff = c, eff end
      end
    end
    -- how much will still be queued, so the worker knows whether to ask
    -- again (read before the first write: a refused command must not
    -- leave a half-done claim); a list without an oldest id is empty
    local left = -1
    for _, c in ipairs(cands) do
      local n = QLEN[c[1]]
      if not n then
        n = redis.call('LLEN', P .. 'q:' .. c[1]) - (QPOP[c[1]] or 0)
        QLEN[c[1]] = n
      end
      left = left + n
    end
    local q = P .. 'q:' .. best[1]
    local id = best[3]
    -- another item of the job the worker runs: only while that job is next
    -- (a later job's items never overtake), nothing else
    if ONLY_JOB and id ~= ONLY_JOB then return nil end
    local jk = P .. 'job:' .. id
    -- everything the claim reads of the job, in one call
    local h = redis.call('HMGET', jk, 'state', 'queued_ms', 'split', 'attempts', 'seq', 'hook_url',
                         'spec')
    if ONLY_JOB and h[3] ~= '1' then return nil end
    if (h[1] == 'running' or h[1] == 'cancelling' or h[1] == 'queued') and h[3] == '1' then
      -- a split job at the head: its next ready item (the job leaves the
      -- queue with its last ready item; a cancelling one has only its
      -- `delete` item; a queued one is a retry that continues from its
      -- plan, redrive, and runs again with this item)
      q_sync()
      local rl = P .. 'ready:' .. id
      local name
      if ONLY_ITEM then
        if redis.call('LREM', rl, 1, ONLY_ITEM) == 0 then return nil end
        name = ONLY_ITEM
      else
        name = redis.call('LPOP', rl)
      end
      if redis.call('LLEN', rl) == 0 then redis.call('RPOP', q) else left = left + 1 end
      if name and h[1] == 'queued' then split_resumed(id, h, worker, ms) end
      if name then return claim_item(id, name, worker, lease, ms, left) end
    else
      -- taken off the list: the pop itself waits for q_sync (one RPOP
      -- with a count per list and call)
      local b = best[1]
      table.remove(QIDS[b])
      QLEN[b] = QLEN[b] - 1
      if IDX then
        QPOP[b] = (QPOP[b] or 0) + 1
      else
        redis.call('RPOP', q)
      end
    end
    if h[1] == 'queued' then
      local token
      if IDX then
        -- a batch takes CLAIM_AHEAD tokens at once (those left unused are
        -- skipped: a token need only be unique and never reused)
        if not FENCE or FENCE[1] > FENCE[2] then
          local last = redis.call('INCRBY', P .. 'fence', string.format('%d', CLAIM_AHEAD))
          FENCE = {last - CLAIM_AHEAD + 1, last}
        end
        token = FENCE[1]
        FENCE[1] = token + 1
      else
        token = redis.call('INCR', P .. 'fence')
      end
      local attempt = (tonumber(h[4] or '0') or 0) + 1
      local seq = (tonumber(h[5] or '0') or 0) + 1
      local deadline = ms + lease
      local qms = tonumber(h[2] or '')
      if qms and ms >= qms then observe('job_queue_wait_seconds', (ms - qms) / 1000) end
      -- the claim's fields, the state (set_state's HSET) and the event's
      -- sequence number (emit's HINCRBY) in one write
      local tok, mss, dls = string.format('%d', token), nstr(ms), nstr(deadline)
      local att = string.format('%d', attempt)
      redis.call('HSET', jk, 'worker', worker, 'token', tok, 'lease_ms', dls,
                 'started_ms', mss, 'progress', '0', 'stage', 'starting', 'attempts', att,
                 'state', 'running', 'updated_ms', mss, 'seq', string.format('%d', seq))
      redis.call('ZADD', P .. 'processing', dls, id)
      if NOT_IDLE ~= worker then
        redis.call('ZREM', P .. 'idle', worker)
        NOT_IDLE = worker
      end
      index_move(id, 'queued', 'running', mss)
      stat('started')
      if WORKER_JSON[1] ~= worker then WORKER_JSON = {worker, cjson.encode(worker)} end
      emit_at(id, seq, 'job.started', '{"worker":' .. WORKER_JSON[2] .. ',"attempt":' .. att .. '}',
              mss, h[6] ~= false)
      return {id, tok, attempt, h[7], left}
    end
    -- a stale id (job gone or no longer queued): drop it and look again
  end
  return nil
end

-- What finish reads of a job before it writes (complete_job's h).
local FINISH_FIELDS = {'token', 'state', 'priority', 'started_ms', 'seq', 'hook_url', 'error',
                       'playable_ms', 'created_ms'}

-- A running (or cancelling) job completed, its token checked by the caller
-- (finish, finish_many): h = HMGET of FINISH_FIELDS. The job's writes in
-- one HSET (set_state's, emit's and mark_playable's included): the hot
-- path of the queue. Events: job.playable first when the job was not
-- playable before (playable_at_end), then job.completed.
local function complete_job(id, h, result, evdata, ms)
  local jk = P .. 'job:' .. id
  local seq = (tonumber(h[5] or '0') or 0) + 1
  local ok, res = pcall(cjson.decode, result)   -- once, for the URL and the counters
  if not ok then res = nil end
  local url = not h[8] and hls_of(res) or nil
  local mss = nstr(ms)
  redis.call('ZREM', P .. 'processing', id)
  redis.call('HSET', jk, 'token', '', 'lease_ms', '0', 'result', result, 'finished_ms', mss,
             'progress', '100', 'stage', 'done', 'state', 'completed', 'updated_ms', mss,
             'seq', string.format('%d', url and seq + 1 or seq))
  if url then redis.call('HSET', jk, 'playable_ms', mss, 'playable_url', url) end
  if h[7] then redis.call('HDEL', jk, 'error') end
  index_move(id, h[2], 'completed', mss)
  stat('completed')
  count_result(jk, ms, result, h[4] or '', res or false)
  local hook = h[6] ~= false
  if url then
    emit_at(id, seq, 'job.playable', playable_data(url, h[9] or nil, nil, ms), mss, hook)
    seq = seq + 1
  end
  emit_at(id, seq, 'job.completed', evdata, mss, hook)
end

-- The reply of finish/item_finish: {1, state} and, when the worker asked
-- (worker id ~= ''), the next job or item it claimed in the same call;
-- idle 'idle': its last claim found the queue empty, so it only says it is
-- idle ({ss}:idle; notify_work wakes it); 'busy': the claim is beyond its
-- slots (prefetch), so finding nothing does not mark it idle.
local function reply_and_claim(st, worker, lease, aging, idle, ms)
  if worker and worker ~= '' and idle == 'idle' then
    redis.call('ZADD', P .. 'idle', ms, worker)
  elseif worker and worker ~= '' then
    IDLE_OK = idle ~= 'busy'   -- a claim beyond its slots (prefetch)
    promote_due(ms)
    local nxt = claim_next(worker, tonumber(lease), tonumber(aging), ms)
    if nxt then
      local r = {1, st}
      for _, v in ipairs(nxt) do r[#r + 1] = v end
      return r
    end
  end
  return {1, st}
end
