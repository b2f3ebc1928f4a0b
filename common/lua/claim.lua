-- claim: take the next job for a worker, with a lease and a fencing token.
-- KEYS[1] = {ss}:processing
-- ARGV: prefix, worker_id, lease_ms, aging_ms
-- Promotes due retries, then claim_next (_lib.lua): highest effective
-- priority first (one level gained per aging_ms waited), FIFO within one.
-- Returns {id, token, attempt, spec, jobs still queued} or nil when nothing
-- is queued.
local ms = now_ms()
promote_due(ms)
return claim_next(ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ms)
