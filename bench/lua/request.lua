-- The request every connection sends, from the environment (bench/wrk.py sets it).
--   BENCH_METHOD, BENCH_BODY, BENCH_HEADERS ("Name: value" lines) may hold:
--     {line}  the next line of BENCH_LINES_FILE, round robin (tokens, credentials)
--     {rand}  a random integer in [0, BENCH_RAND_MAX) (which seeded user logs in)
--     {seq}   BENCH_PREFIX .. a counter (unique e-mails for registration)
--   BENCH_QUEUE_PATTERN: {line} pops a queue instead, and each 2xx body must yield
--     the next value through this Lua pattern (refresh-token rotation: a token is
--     used once, and the one issued in its place goes to the back of the queue).
--   BENCH_EXPECT: a plain substring every 2xx body must contain.
--   BENCH_DELAY_MS: a connection's pause between a response and its next request
--     (pacing, closed loop).
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local function env(name)
  local value = os.getenv(name)
  if value == "" then return nil end
  return value
end

bad, empty = 0, 0
local method = env("BENCH_METHOD") or "GET"
local body_template = env("BENCH_BODY")
local header_templates = {}
for name, value in string.gmatch(env("BENCH_HEADERS") or "", "([^:\n]+):%s*([^\n]*)") do
  header_templates[name] = value
end
local lines = {}
if env("BENCH_LINES_FILE") then
  for line in io.lines(env("BENCH_LINES_FILE")) do
    if line ~= "" then lines[#lines + 1] = line end
  end
end
local queue_pattern = env("BENCH_QUEUE_PATTERN")
local queue_first, queue_last = 1, #lines
local rand_max = tonumber(env("BENCH_RAND_MAX") or "0")
local prefix = env("BENCH_PREFIX") or ""
local expect = env("BENCH_EXPECT")
local delay_ms = tonumber(env("BENCH_DELAY_MS") or "0")
local index, seq = 0, 0

local function next_line()
  if queue_pattern then
    if queue_first > queue_last then
      empty = empty + 1
      return ""
    end
    local value = lines[queue_first]
    lines[queue_first] = nil
    queue_first = queue_first + 1
    return value
  end
  if #lines == 0 then return "" end
  index = index % #lines + 1
  return lines[index]
end

local values = setmetatable({}, {__index = function(_, key)
  if key == "line" then return next_line() end
  if key == "rand" then return tostring(math.random(0, rand_max - 1)) end
  if key == "seq" then
    seq = seq + 1
    return prefix .. seq
  end
end})

local function fill(template)
  -- Every placeholder is looked up anew: two {line}s in one request take two lines.
  return (string.gsub(template, "{(%a+)}", values))
end

local dynamic = string.find((body_template or "") .. (env("BENCH_HEADERS") or ""), "{%a+}")
wrk.method = method
wrk.body = body_template
for name, value in pairs(header_templates) do
  wrk.headers[name] = value
end

local function build()
  local headers = {}
  for name, value in pairs(header_templates) do
    headers[name] = fill(value)
  end
  return wrk.format(method, nil, headers, body_template and fill(body_template) or nil)
end

local templates = (body_template or "") .. (env("BENCH_HEADERS") or "")
local only_lines = not queue_pattern and #lines > 0
  and not string.find(string.gsub(templates, "{line}", ""), "{%a+}")
local prebuilt = {}

function init(args)
  math.randomseed(os.time())
  if dynamic and only_lines then
    -- Every request is known in advance: build them once, so wrk spends no CPU per
    -- request on formatting (it shares the two cores with the server).
    for i = 1, #lines do prebuilt[i] = build() end
    index = 0
  end
end

if dynamic then
  -- Static requests are left to wrk's own prebuilt one: defining request() costs
  -- throughput on the fastest targets (the ceiling).
  function request()
    if only_lines then
      index = index % #prebuilt + 1
      return prebuilt[index]
    end
    return build()
  end
end

if queue_pattern or expect then
  function response(status, headers, body)
    if status < 200 or status > 299 then
      if status < 400 then bad = bad + 1 end -- wrk itself counts status > 399
      return
    end
    if expect and not string.find(body, expect, 1, true) then bad = bad + 1 end
    if queue_pattern then
      local value = string.match(body, queue_pattern)
      if value then
        queue_last = queue_last + 1
        lines[queue_last] = value
      else
        bad = bad + 1
      end
    end
  end
end

if delay_ms > 0 then
  function delay()
    -- wrk takes whole milliseconds: dither so the mean pause is delay_ms.
    local whole = math.floor(delay_ms)
    if math.random() < delay_ms - whole then whole = whole + 1 end
    return whole
  end
end
