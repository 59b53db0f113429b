"""The Lua scripts of the Redis counter store (security/counter_stores.py). Each
runs atomically on the server: an admission reads every window of an attempt and
takes its holds in one step, so that attempts through different processes can
never together pass a limit; and each is one round trip.

Failures are kept exactly as limits' moving window keeps them (a list of
timestamps, newest first, trimmed to the window's amount; see limits'
acquire_moving_window.lua), and holds as limits' counters, so that limits' own
strategies read the same state."""

# KEYS: per window its failures (limits' list) and its holds in this bucket and
# the previous one. ARGV: now, a hold counter's lifetime, then per window its
# amount and period. Returns {"0"} when admitted (a hold taken in each window),
# else the seconds to wait, as the text of a float (Redis would truncate a
# number), followed by the 0-based positions of the windows that were full.
ADMIT = """
local now = tonumber(ARGV[1])
local wait = 0
local answer = {'0'}
for i = 0, #KEYS / 3 - 1 do
  local amount = tonumber(ARGV[3 + 2 * i])
  local period = tonumber(ARGV[4 + 2 * i])
  local stamps = redis.call('lrange', KEYS[3 * i + 1], 0, amount - 1)
  local failures = 0
  for _, stamp in ipairs(stamps) do
    if tonumber(stamp) > now - period then failures = failures + 1 else break end
  end
  local held = math.max(0, tonumber(redis.call('get', KEYS[3 * i + 2]) or '0'))
    + math.max(0, tonumber(redis.call('get', KEYS[3 * i + 3]) or '0'))
  if failures + held >= amount then
    local w = 1
    if failures >= amount then w = tonumber(stamps[amount]) + period - now end
    if w > wait then wait = w end
    answer[#answer + 1] = i
  end
end
if wait > 0 then
  answer[1] = tostring(wait)
  return answer
end
for i = 0, #KEYS / 3 - 1 do
  if redis.call('incr', KEYS[3 * i + 2]) == 1 then
    redis.call('expire', KEYS[3 * i + 2], ARGV[2])
  end
end
return answer
"""

# KEYS: per window its failures and its holds in the attempt's bucket. ARGV: now,
# outcome, whether to give the hold back ("1"), then per window amount and period.
# A failure is pushed as limits' acquire_moving_window.lua does, when there is room.
SETTLE = """
local now = tonumber(ARGV[1])
for i = 0, #KEYS / 2 - 1 do
  local failures = KEYS[2 * i + 1]
  if ARGV[2] == 'failed' then
    local amount = tonumber(ARGV[4 + 2 * i])
    local period = tonumber(ARGV[5 + 2 * i])
    local entry = redis.call('lindex', failures, amount - 1)
    if not entry or tonumber(entry) < now - period then
      redis.call('lpush', failures, ARGV[1])
      redis.call('ltrim', failures, 0, amount - 1)
      redis.call('expire', failures, period)
    end
  elseif ARGV[2] == 'succeeded' and i == 0 then
    redis.call('del', failures)
  end
  if ARGV[3] == '1' then
    local held = tonumber(redis.call('get', KEYS[2 * i + 2]) or '0')
    if held > 1 then
      redis.call('decr', KEYS[2 * i + 2])
    else
      redis.call('del', KEYS[2 * i + 2])
    end
  end
end
return 0
"""
