-- finish_many: several completed jobs of one worker in one call, each
-- fenced by its own token, and optionally the worker's next jobs: what a
-- worker sends when more than one of its jobs completed at once (the
-- round trip, the script call and the claim's set-up are paid once).
-- KEYS[1] = {ss}:processing
-- ARGV: prefix, worker_id, lease_ms, aging_ms, want (jobs to claim, 0..n),
--       idle ('idle': claim nothing, only mark the worker idle in
--       {ss}:idle, as finish's; a number: the claims beyond the first
--       that many are beyond its slots, prefetch, and finding nothing
--       there does not mark it idle), n, then n × (id, token, result_json,
--       event_data_json)
-- Each job is completed as finish's outcome completed does it, or refused
-- when its token is stale ({-1, state}: nothing written for that job; the
-- others go on). The claims run after the reports, which are written
-- whole first (their own batch), so a claim that errors leaves them done.
-- Returns {n, r_1, …, r_n, c_1, …, c_m}: r_i = {1, 'completed'} or
-- {-1, state}; c_j = a claim as claim.lua returns it ({id, token, attempt,
-- spec, still queued[, item, payload]}), m < want when claim_next found
-- no more (the worker is then marked idle as by claim.lua: not when
-- drained, nor after 16 stale ids).
local worker, lease, aging = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local want, n = tonumber(ARGV[5]), tonumber(ARGV[7])
-- every argument checked before the first write (no roll back in Redis)
if not (lease and aging and want and n) or worker == '' or n < 1 or want < 0 or want > n or
   #ARGV ~= 7 + 4 * n then
  return redis.error_reply('finish_many: bad arguments')
end
local ms = now_ms()
local out = {n}
begin_batch(0)   -- the reports' counters and index moves once per call (the claims: their own batch)
for i = 0, n - 1 do
  local id, token = ARGV[8 + 4 * i], ARGV[9 + 4 * i]
  local h = redis.call('HMGET', P .. 'job:' .. id, unpack(FINISH_FIELDS))
  if h[1] ~= token or (h[2] ~= 'running' and h[2] ~= 'cancelling') then
    out[#out + 1] = {-1, h[2] or 'missing'}
  else
    complete_job(id, h, ARGV[10 + 4 * i], ARGV[11 + 4 * i], ms)
    out[#out + 1] = {1, 'completed'}
  end
end
-- the completions are written whole (index moves, counters) before any
-- claim: a claim that errors (an old ACL, say) cannot leave them half done
flush_batch()
if ARGV[6] == 'idle' and want == 0 then
  redis.call('ZADD', P .. 'idle', ms, worker)
elseif want > 0 then
  begin_batch(want)
  promote_due(ms)
  local free = tonumber(ARGV[6]) or want
  for got = 0, want - 1 do   -- got: claims so far (out also holds the n reports)
    IDLE_OK = got < free
    local nxt = claim_next(worker, lease, aging, ms)
    if not nxt then break end
    out[#out + 1] = nxt
  end
end
flush_batch()
return out
