-- publish: playable while encoding (docs/PLAYABLE.md). One worker at a
-- time writes a split job's early (EVENT) playlists; the job hash keeps the
-- publish lease (pub_until_ms, pub_gen), the segments published
-- (pub_segments), and when the title first became playable (playable_ms,
-- playable_url).
-- KEYS[1] = {ss}:job:<id>
-- ARGV[2] = id, ARGV[3] = mode:
--  take  ARGV: item name, item token, record JSON, lease ms
--        A chunk or the audio item whose files are all stored (fenced by
--        its token, running) leaves its record in its hash (`record`) for
--        publishers. If the job is running, its finalize item still
--        waiting, and no publish lease runs: takes the lease and returns
--        {1, gen, plan, records {name: record} of the chunks and audio,
--        pub_segments, texts}; texts = 1: the audio's record is final and
--        names subtitles no published master lists yet (pub_texts), so the
--        holder publishes even without a segment more. Else marks
--        pub_dirty (the lease holder publishes again) and returns {0}.
--  done  ARGV: gen, segments listed, playlist URL, texts published (0|1)
--        The lease holder (gen) published `segments` (and, texts 1, a
--        master with the subtitles: pub_texts): the first time, sets
--        playable_ms/playable_url and appends job.playable. If more was
--        stored meanwhile (pub_dirty), or the subtitles are still to be
--        published and this lease was not given for them, and finalize
--        still waits: a new lease, as take's reply; else frees the lease
--        and returns {0}.
--  check ARGV: gen, margin ms
--        Before each store: returns the ms left on the lease when `gen`
--        still holds it with at least `margin` ms left and the job may
--        still publish (running, finalize waiting); else 0, and the holder
--        stores nothing more (a stalled holder whose lease ran out, or one
--        that a newer lease or finalize overtook).
--  final A job is about to write its final (VOD) playlists: returns
--        {ms until a running publish lease ends (0: none), playable_ms (0:
--        not yet), created_ms, now ms}.
local jk, id, mode = KEYS[1], ARGV[2], ARGV[3]
local ms = now_ms()

local function records()
  local names = cjson.decode(redis.call('HGET', jk, 'items') or '[]')
  local parts = {}
  for _, n in ipairs(names) do
    if item_kind(n) == 'chunk' or n == 'audio' then
      local r = redis.call('HMGET', item_key(id, n), 'state', 'result', 'record')
      local rec = (r[1] == 'done' and r[2]) or r[3]
      if rec then parts[#parts + 1] = cjson.encode(n) .. ':' .. rec end
    end
  end
  return '{' .. table.concat(parts, ',') .. '}'
end

local function may_publish()
  local st = redis.call('HGET', jk, 'state')
  local fin = redis.call('HGET', item_key(id, 'finalize'), 'state')
  return st == 'running' and fin == 'waiting'
end

-- The audio item's record is final (not `partial`) and names subtitle
-- texts that no published master lists yet (pub_texts).
local function texts_pending()
  if redis.call('HGET', jk, 'pub_texts') == '1' then return false end
  local r = redis.call('HMGET', item_key(id, 'audio'), 'state', 'result', 'record')
  local ok, rec = pcall(cjson.decode, (r[1] == 'done' and r[2]) or r[3] or '')
  return ok and type(rec) == 'table' and rec.partial ~= true and type(rec.texts) == 'table' and
         #rec.texts > 0
end

local function lease(lease_ms)
  local gen = redis.call('HINCRBY', jk, 'pub_gen', 1)
  local texts = texts_pending() and 1 or 0
  redis.call('HSET', jk, 'pub_until_ms', ms + lease_ms, 'pub_dirty', 0, 'pub_lease', lease_ms,
             'pub_force', texts)
  return {1, gen, redis.call('HGET', jk, 'plan') or 'null', records(),
          tonumber(redis.call('HGET', jk, 'pub_segments') or '0'), texts}
end

if mode == 'take' then
  local ik = item_key(id, ARGV[4])
  local ih = redis.call('HMGET', ik, 'token', 'state')
  if ih[1] ~= ARGV[5] or ih[2] ~= 'running' then return {0} end
  redis.call('HSET', ik, 'record', ARGV[6])
  if not may_publish() then return {0} end
  if tonumber(redis.call('HGET', jk, 'pub_until_ms') or '0') > ms then
    redis.call('HSET', jk, 'pub_dirty', 1)
    return {0}
  end
  return lease(tonumber(ARGV[7]) or 20000)
elseif mode == 'done' then
  local h = redis.call('HMGET', jk, 'pub_gen', 'pub_dirty', 'pub_lease', 'playable_ms', 'pub_force',
                       'pub_segments')
  if h[1] ~= ARGV[4] then return {0} end   -- our lease ran out; another holds it
  local n = tonumber(ARGV[5]) or 0
  if n > 0 then
    redis.call('HSET', jk, 'pub_segments', n)
    if not h[4] then mark_playable(id, ARGV[6], n, ms) end
  end
  if ARGV[7] == '1' then redis.call('HSET', jk, 'pub_texts', 1) end
  -- more was stored meanwhile, or the audio's final record brought texts
  -- that the published master lacks (one forced try per lease that did
  -- not have one: a failing store does not loop)
  local texts = h[5] ~= '1' and (n > 0 or tonumber(h[6] or '0') > 0) and texts_pending()
  if (h[2] == '1' or texts) and may_publish() then return lease(tonumber(h[3]) or 20000) end
  redis.call('HSET', jk, 'pub_until_ms', 0)
  return {0}
elseif mode == 'check' then
  local h = redis.call('HMGET', jk, 'pub_gen', 'pub_until_ms')
  local left = (tonumber(h[2] or '0') or 0) - ms
  if h[1] ~= ARGV[4] or left < (tonumber(ARGV[5]) or 0) or not may_publish() then return 0 end
  return left
elseif mode == 'final' then
  local h = redis.call('HMGET', jk, 'pub_until_ms', 'playable_ms', 'created_ms')
  local left = (tonumber(h[1] or '0') or 0) - ms
  return {left > 0 and left or 0, tonumber(h[2] or '0') or 0, tonumber(h[3] or '0') or 0, ms}
end
return redis.error_reply('publish: unknown mode ' .. tostring(mode))
