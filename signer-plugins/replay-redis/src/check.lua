-- sealrpc replay store: check and record one (principal, id), atomically.
-- The same steps as rpc-core's in-process ledger under its lock, and the same quota
-- (rpc-core/src/security/replay/quota.rs): prune, restart rule, lookup, holdings,
-- decision, eviction of the largest guest's oldest id, insert.
--
-- KEYS: 1 own zset (id -> ts), 2 control zset (id..principal -> ts), 3 guests zset (same),
--       4 gmax (guest -> newest ts), 5 gcount (guest -> ids held; may run high, corrected
--       lazily), 6 own watermark, 7 since (when this store's memory began)
-- ARGV: 1 key base "{prefix}", 2 principal, 3 id (16 bytes), 4 ts, 5 now, 6 skew,
--       7 capacity, 8 control reserve, 9 per-guest quota, 10 '1' for a guest
-- Returns 'ok', 'replay', 'full' or 'before_start'.
local base = ARGV[1]
local principal = ARGV[2]
local id = ARGV[3]
local ts = tonumber(ARGV[4])
local now = tonumber(ARGV[5])
local skew = tonumber(ARGV[6])
local capacity = tonumber(ARGV[7])
local reserve = tonumber(ARGV[8])
local per_guest = tonumber(ARGV[9])
local guest = ARGV[10] == '1'
local own, control_z, guests_z = KEYS[1], KEYS[2], KEYS[3]
local gmax, gcount, own_wm, since_key = KEYS[4], KEYS[5], KEYS[6], KEYS[7]

local function n(x) return string.format('%.0f', x) end
local function extend(key, at)
  local cur = redis.call('PEXPIRETIME', key)
  if cur ~= -2 and cur < at then redis.call('PEXPIREAT', key, n(at)) end
end

-- Restart rule: a store whose memory was lost (a Redis restart without persistence, a
-- flush) cannot know what it saw before; refuse what was stamped before it began.
local since = redis.call('GET', since_key)
if not since then
  redis.call('SET', since_key, n(now))
  since = now
else
  since = tonumber(since)
end
if now >= since and ts < since then return 'before_start' end

-- Prune: ids stamped before the window can no longer pass the time check.
local oldest = now - skew
if oldest < 0 then oldest = 0 end
local below = '(' .. n(oldest)
redis.call('ZREMRANGEBYSCORE', control_z, '-inf', below)
redis.call('ZREMRANGEBYSCORE', guests_z, '-inf', below)
redis.call('ZREMRANGEBYSCORE', gmax, '-inf', below)
redis.call('ZREMRANGEBYSCORE', own, '-inf', below)

-- Lookup, and the watermark an eviction left.
if redis.call('ZSCORE', own, id) then return 'replay' end
local w = redis.call('GET', own_wm)
if w then
  w = tonumber(w)
  if w >= oldest and ts <= w then return 'full' end
end

-- Holdings and the decision (quota.rs).
local own_n = redis.call('ZCARD', own)
local control = redis.call('ZCARD', control_z)
local guests = redis.call('ZCARD', guests_z)
local evict = false
if not guest then
  if control + guests >= capacity then return 'full' end
else
  local share = math.max(capacity - reserve, 0)
  local room = math.min(share, math.max(capacity - control, 0))
  if own_n >= per_guest then return 'full' end
  if guests >= room then
    local asking = redis.call('ZCARD', gmax)
    if own_n == 0 then asking = asking + 1 end
    if asking < 1 then asking = 1 end
    if own_n < math.floor(room / asking) then evict = true else return 'full' end
  end
end

-- The guest holding the most ids (ties: the greatest name) gives up its oldest one; its
-- watermark rises to that id's ts. Stale counts are corrected on the way (bounded).
if evict then
  local done = false
  for _ = 1, 2048 do
    local top = redis.call('ZREVRANGE', gcount, 0, 0, 'WITHSCORES')
    if #top == 0 then break end
    local victim, claimed = top[1], tonumber(top[2])
    local vkey = base .. ':p:' .. victim
    redis.call('ZREMRANGEBYSCORE', vkey, '-inf', below)
    local actual = redis.call('ZCARD', vkey)
    if actual == claimed and actual > 0 then
      if victim == principal then break end
      local first = redis.call('ZRANGE', vkey, 0, 0, 'WITHSCORES')
      local vid, vts = first[1], tonumber(first[2])
      redis.call('ZREM', vkey, vid)
      redis.call('ZREM', guests_z, vid .. victim)
      local vwm = base .. ':w:' .. victim
      local prev = redis.call('GET', vwm)
      if prev and tonumber(prev) > vts then vts = tonumber(prev) end
      redis.call('SET', vwm, n(vts), 'PXAT', n(vts + skew + 1))
      if actual == 1 then
        redis.call('ZREM', gcount, victim)
        redis.call('ZREM', gmax, victim)
      else
        redis.call('ZADD', gcount, actual - 1, victim)
      end
      done = true
      break
    end
    if actual == 0 then
      redis.call('ZREM', gcount, victim)
    else
      redis.call('ZADD', gcount, actual, victim)
    end
  end
  if not done then return 'full' end
end

-- Insert: remembered until ts + skew.
local keep = ts + skew + 1
redis.call('ZADD', own, ts, id)
local newest = tonumber(redis.call('ZRANGE', own, -1, -1, 'WITHSCORES')[2])
redis.call('PEXPIREAT', own, n(newest + skew + 1))
if guest then
  redis.call('ZADD', guests_z, ts, id .. principal)
  extend(guests_z, keep)
  redis.call('ZADD', gmax, 'GT', ts, principal)
  extend(gmax, keep)
  redis.call('ZADD', gcount, own_n + 1, principal)
  extend(gcount, keep)
else
  redis.call('ZADD', control_z, ts, id .. principal)
  extend(control_z, keep)
end
return 'ok'
