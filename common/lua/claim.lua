-- claim: take the next job for a worker, with a lease and a fencing token.
-- KEYS[1] = {ss}:processing
-- ARGV: prefix, worker_id, lease_ms, aging_ms[, want[, only[, free]]]
-- Promotes due retries, then claim_next (_lib.lua): highest effective
-- priority first (one level gained per aging_ms waited), FIFO within one.
-- Without want: returns {id, token, attempt, spec, jobs still queued} (a
-- split job's work item adds item, payload) or nil when nothing is queued.
-- With want (1..64, a worker with several free slots): up to want claims
-- in one call, each as above with its own lease and fencing token, in the
-- order claim_next picks them; returns the list of claims, shorter than
-- want when claim_next found no more: as with a single claim's nil, that
-- marks the worker idle, except a drained worker (its mark is removed)
-- and a claim_next that gave up after 16 stale ids (no mark).
-- With only (a job id, after want): only ready items of that split job,
-- and only while it is the job claim_next would pick (priority, aging,
-- FIFO): a worker running one of its items takes more of them at once
-- (docs/SPLIT.md "Several items at once"); anything else gives nothing,
-- and no idle mark. With only = id/item: that one ready item of the job,
-- under the same rule (not ready: nothing).
-- With free (0..want, after only, which may be ''): the claims beyond the
-- first free are beyond the worker's slots (prefetch); claim_next finding
-- nothing there does not mark it idle.
local ms = now_ms()
if ARGV[5] == nil then
  promote_due(ms)
  return claim_next(ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ms)
end
local worker, lease, aging, want = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if not (lease and aging and want) or worker == '' or want < 1 or want > 64 or want ~= math.floor(want) then
  return redis.error_reply('claim: bad arguments')
end
if ARGV[6] and ARGV[6] ~= '' then
  ONLY_JOB = ARGV[6]
  local j, it = string.match(ARGV[6], '^([^/]+)/(.+)$')
  if j then ONLY_JOB, ONLY_ITEM = j, it end
end
local free = tonumber(ARGV[7] or want)
if not free or free < 0 then return redis.error_reply('claim: bad arguments') end
begin_batch(want)   -- counters, index moves, pops and tokens once per call (flush_batch)
promote_due(ms)
local out = {}
for _ = 1, want do
  IDLE_OK = #out < free
  local nxt = claim_next(worker, lease, aging, ms)
  if not nxt then break end
  out[#out + 1] = nxt
end
flush_batch()
return out
