-- orphans: claims the Redis side holds for a worker that the worker itself
-- does not know about.
-- KEYS[1] = {ss}:processing
-- ARGV: prefix, worker_id, mode, token1, token2, ... (the tokens it runs)
-- mode 'release': the worker lost a claim's answer (the connection dropped
--   after Redis ran the claim); it never started the job, so the job goes
--   back to the head of its queue, the attempt not counted; several go
--   back in the order they were claimed (fencing token order), so the
--   queue keeps its FIFO order. A worker also runs it after a claim call
--   that ended in an error: the script's writes before the error stay.
-- mode 'expire': the worker restarted under the same id after a crash; its
--   old claims may have crashed it, so their leases end now and the reaper
--   counts the attempt (lease_expired) as for any dead worker.
-- A split job's work items (processing members <id>/<name>) are handled
-- the same way, per item: expire ends the item's lease now (the reaper
-- runs it again as lease_expired), release puts it back at the front of
-- the job's ready items, uncounted (a cancelling job's items are
-- cancelled instead, except its `delete` item, which must still run).
-- Returns the number of claims handled.
local wid, mode = ARGV[2], ARGV[3]
if mode ~= 'release' and mode ~= 'expire' then
  return redis.error_reply('orphans: mode must be release or expire')
end
local known = {}
for i = 4, #ARGV do known[ARGV[i]] = true end
local ms = now_ms()
local n = 0
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local back = {}   -- released jobs: {token, queue, id}
for _, id in ipairs(ids) do
  local slash = string.find(id, '/', 1, true)
  if slash then
    -- a split job's work item (<id>/<name>): the same, per item
    local jid, name = string.sub(id, 1, slash - 1), string.sub(id, slash + 1)
    local ik, jk = item_key(jid, name), P .. 'job:' .. jid
    local ih = redis.call('HMGET', ik, 'worker', 'token', 'state')
    local jh = redis.call('HMGET', jk, 'state', 'priority')
    if ih[1] == wid and ih[2] and ih[2] ~= '' and not known[ih[2]] and ih[3] == 'running' then
      n = n + 1
      if mode == 'expire' then
        redis.call('ZADD', KEYS[1], ms, id)
      else
        redis.call('ZREM', KEYS[1], id)
        redis.call('HSET', ik, 'token', '', 'lease_ms', 0)
        redis.call('HINCRBY', jk, 'items_running', -1)
        if jh[1] == 'running' then
          -- not counted: the next claim runs this attempt's number again
          local attempt = redis.call('HINCRBY', ik, 'attempts', -1) + 1
          item_ready(jid, name, jh[2], true)
          stat('released')
          emit(jid, 'job.retrying', cjson.encode({reason = 'the claim answer of item ' .. name ..
            ' was lost; released unstarted', attempt = attempt, item = name}), ms)
        elseif name == 'delete' then
          -- a cancelled job's last item (split_cancel_done) must still run:
          -- it removes what the done items stored
          redis.call('HINCRBY', ik, 'attempts', -1)
          item_ready(jid, name, jh[2], true)
          stat('released')
        else
          redis.call('HSET', ik, 'state', 'cancelled')
          split_cancel_done(jid, ms)
        end
      end
    end
  else
  local jk = P .. 'job:' .. id
  local h = redis.call('HMGET', jk, 'worker', 'token', 'state', 'priority')
  if h[1] == wid and h[2] and h[2] ~= '' and not known[h[2]] and
     (h[3] == 'running' or h[3] == 'cancelling') then
    n = n + 1
    if mode == 'expire' then
      redis.call('ZADD', KEYS[1], ms, id)
    elseif h[3] == 'cancelling' then
      redis.call('ZREM', KEYS[1], id)
      redis.call('HSET', jk, 'token', '', 'lease_ms', 0, 'finished_ms', ms, 'stage', 'cancelled')
      set_state(id, 'cancelling', 'cancelled', ms)
      stat('cancelled')
      emit(id, 'job.cancelled', cjson.encode({reason = 'cancelled before its worker started it'}), ms)
    else
      redis.call('ZREM', KEYS[1], id)
      redis.call('HSET', jk, 'token', '', 'lease_ms', 0, 'stage', 'queued', 'progress', 0)
      -- the attempt is not counted: the next claim runs this number again
      local attempt = redis.call('HINCRBY', jk, 'attempts', -1) + 1
      back[#back + 1] = {tonumber(h[2]) or 0, P .. 'q:' .. (h[4] or 'normal'), id}
      set_state(id, 'running', 'queued', ms)
      stat('released')
      emit(id, 'job.retrying', cjson.encode({reason = 'the claim answer was lost; released unstarted',
                                             attempt = attempt}), ms)
      notify_work(id, ms)
    end
  end
  end
end
-- back to the head of their queues in the order they were claimed (a
-- batch shares one lease deadline, so ZRANGE gives id order): the head is
-- the list's tail, so the last claimed (highest token) goes in first
table.sort(back, function(a, b) return a[1] > b[1] end)
for _, b in ipairs(back) do redis.call('RPUSH', b[2], b[3]) end
return n
