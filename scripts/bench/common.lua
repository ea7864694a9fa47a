--[[ scripts/bench/common.lua: what the benchmark drivers (bench.lua, bench_dist.lua) share:
their command line, summary statistics, and running a child process that prints JSON lines.

  local common = dofile(ROOT .. "/scripts/bench/common.lua")   -- or require with the path set
  local cli = common.command_line(arg, "bench.lua", {["--workload"] = 1, ["--micro"] = 0})
  cli.exe, cli.script        the interpreter and this script, for re-running it in a child
  cli.mode, cli.mode_arg     the last --flag given ("driver" without one) and its value
  cli.opts                   key=value settings as strings; cli.num(k, d), cli.bool(k, d)
]]
local ai = require "aiart"

local M = {}

-- flags: "--name" -> the number of values it takes (0 or 1). An unknown argument ends the
-- script with status 2, as a shell tool does.
function M.command_line(arg, name, flags)
  local cli = {exe = "./aiart-lua", script = arg and arg[0] or name, mode = "driver", opts = {}}
  local i = -1 -- the interpreter is the most negative index of arg
  while arg and arg[i] do cli.exe = arg[i]; i = i - 1 end
  i = 1
  while arg and arg[i] do
    local a = arg[i]
    local k, v = a:match("^([%w_]+)=(.*)$")
    if k then
      cli.opts[k] = v
    elseif flags[a] then
      cli.mode = a:sub(3)
      if flags[a] == 1 then cli.mode_arg = arg[i + 1]; i = i + 1 end
    else
      io.stderr:write(name .. ": unknown argument '" .. a .. "'\n")
      os.exit(2)
    end
    i = i + 1
  end
  function cli.num(k, default) return cli.opts[k] and tonumber(cli.opts[k]) or default end
  function cli.bool(k, default)
    local v = cli.opts[k]
    if v == nil or v == "auto" then return default end
    return v == "true" or v == "1" or v == "yes"
  end
  return cli
end

-- Seconds from a monotonic clock (os.clock is CPU time, summed over threads).
M.now = ai.clock

function M.median(xs)
  local s = {}
  for i, v in ipairs(xs) do s[i] = v end
  table.sort(s)
  local n = #s
  if n == 0 then return 0 / 0 end
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

function M.stats(xs)
  local sum, lo, hi = 0, math.huge, -math.huge
  for _, v in ipairs(xs) do sum = sum + v; lo = math.min(lo, v); hi = math.max(hi, v) end
  local s = {}
  for i, v in ipairs(xs) do s[i] = v end
  table.sort(s)
  local p90 = s[math.max(1, math.ceil(#s * 0.9))] or 0
  return {median = M.median(xs), mean = #xs > 0 and sum / #xs or 0, min = lo, max = hi, p90 = p90}
end

function M.sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- /proc/loadavg's first three fields, or "?".
function M.loadavg()
  local f = io.open("/proc/loadavg")
  if not f then return "?" end
  local s = f:read("l")
  f:close()
  return s and s:match("^(%S+ %S+ %S+)") or "?"
end

-- Runs cmd and returns the decoded JSON lines it printed (those starting with "{"), its other
-- output lines and whether it succeeded.
function M.run_json(cmd)
  local h = io.popen(cmd .. " 2>&1")
  local recs, other = {}, {}
  for l in h:lines() do
    local ok, r = false, nil
    if l:match("^%s*{") then ok, r = pcall(ai.json.decode, l) end
    if ok and type(r) == "table" then recs[#recs + 1] = r else other[#other + 1] = l end
  end
  local ok = h:close()
  return recs, other, ok
end

return M
